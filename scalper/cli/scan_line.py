"""`scalper scan` without the command-line framework.

typer, its click and the app's ~30 commands cost ~45 ms of a scan's start (~10% of a cached
370,000-bar scan). A plain scan command line — the options below, spelt `--opt VALUE` or
`--opt=VALUE`, each at most once, `--lookback` a plain whole number from 15 — is read here,
as scalper.cli.run_once reads run-once; any other line goes to the typer app, which reads,
explains or refuses it as before. The typer command (scalper.cli.commands.scan) calls `run`
below: one body.
"""

from __future__ import annotations

import os
import re
from typing import Any

from scalper.cli.run_once import _ENV, _GLOBAL_VALUES, _options

# option spelling -> parameter of `run`; typer's declarations in commands.py are the reference
_VALUES = {"--data": "data", "--symbol": "symbol", "--bot": "bot", "--strategies": "strategies", "--from": "since",
           "--to": "until", "--out": "out", "--lookback": "lookback", "--config": "config", "-c": "config"}
_FLAGS = {"--skip-bad-rows": "skip_bad_rows", "--json": "as_json"}
COMMAND = "scan"
MIN_LOOKBACK = 15   # typer's min= on --lookback


def parse(args: list[str]) -> dict[str, Any] | None:
    """The keyword arguments of `run` for a plain scan command line, or None when typer must
    read the line. Global --config/--ledger go into the environment, as the app's callback does."""
    i, given = _options(args, 0, _GLOBAL_VALUES, stop=COMMAND, repeatable=())
    if given is None or i >= len(args) or args[i] != COMMAND:
        return None
    end, options = _options(args, i + 1, _VALUES, flags=_FLAGS, repeatable=())
    if options is None or end != len(args) or "data" not in options:
        return None
    lookback = options.get("lookback")
    if lookback is not None:   # anything but plain digits from 15 up: typer converts or refuses it
        if not re.fullmatch(r"[0-9]+", lookback) or int(lookback) < MIN_LOOKBACK:
            return None
        lookback = int(lookback)
    for name, value in given.items():   # the app callback: `if config: os.environ[...] = config`
        if value:
            os.environ[_ENV[name]] = value
    kwargs: dict[str, Any] = {name: options.get(name) for name in
                              ("data", "symbol", "bot", "strategies", "since", "until", "out")}
    kwargs.update(lookback=lookback, skip_bad_rows="skip_bad_rows" in options, as_json="as_json" in options,
                  config=options["config"] if "config" in options else (os.environ.get(_ENV["config"]) or None))
    return kwargs


def run(*, data: str, symbol: str | None, bot: str | None, strategies: str | None, since: str | None,
        until: str | None, out: str | None, lookback: int | None, skip_bad_rows: bool, config: str | None,
        as_json: bool) -> int:
    """The scan, its summary printed (JSON or text) → the exit code."""
    from scalper.cli.output import emit_json, out_console
    from scalper.cli.progress import progress as progress_bar
    from scalper.services.scan import run_scan

    with progress_bar(None, "scanning", lazy=True) as progress:   # stderr, only in a terminal
        result = run_scan(data=data, symbol=symbol, bot=bot, strategies=strategies, since=since, until=until,
                          out=out, lookback=lookback, skip_bad_rows=skip_bad_rows, config=config,
                          progress=progress if progress.enabled else None)
    if as_json:
        emit_json(result)
    else:
        from scalper.cli import render

        render.scan_summary(out_console(False), result)
    return 0
