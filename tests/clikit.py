"""Run the real CLI in-process (fast) and capture what a user would see."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from scalper.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def cli(capsys: pytest.CaptureFixture, *args: str) -> Result:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)
