"""Run the real `scalper` executable the way a trader does: in a terminal (a
pseudo-terminal for stdin, stdout and stderr) or piped, and capture what shows."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import SYNCHRONOUS_ENV

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-B]|\r")


@dataclass
class Seen:
    code: int
    raw: str          # bytes as the terminal received them (escape codes included)
    text: str         # what a person reads: escape codes and carriage returns removed
    err: str = ""     # piped runs only: stderr apart

    @property
    def out(self) -> str:
        """stdout (piped runs); in a terminal, everything shown."""
        return self.text


def _env(columns: int, lines: int, extra: dict | None) -> dict:
    # a clean scalper environment, but the suite's durability switch (tests/conftest.py): these
    # tests are about what a terminal shows, not about surviving a power cut
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_") or k == SYNCHRONOUS_ENV}
    env.update(COLUMNS=str(columns), LINES=str(lines), TERM="xterm-256color", PYTHONUNBUFFERED="1")
    env.pop("NO_COLOR", None)
    env.update(extra or {})
    return env


def _command(args) -> list[str]:
    return [sys.executable, "-m", "scalper", *map(str, args)]


def in_terminal(*args, cwd=None, columns: int = 100, lines: int = 40, env: dict | None = None,
                timeout: float = 120.0, typed: str | None = None) -> Seen:
    """`scalper ARGS` with stdin, stdout and stderr on one pseudo-terminal of the given size;
    `typed` is what the person types (sent at once: the terminal holds it until read)."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    proc = subprocess.Popen(_command(args), stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                            env=_env(columns, lines, env), close_fds=True, start_new_session=True)
    os.close(slave)
    if typed:
        os.write(master, typed.encode())
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"scalper {' '.join(map(str, args))} ran over {timeout} s in a terminal")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:   # EIO: every writer closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                # drained what was buffered: the process is gone and nothing more is readable
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    break
        code = proc.wait(timeout=timeout)
    finally:
        os.close(master)
    raw = b"".join(chunks).decode("utf-8", "replace")
    return Seen(code, raw, ANSI.sub("", raw))


def piped(*args, cwd=None, columns: int | None = None, env: dict | None = None, stdout_to=None,
          timeout: float = 120.0) -> Seen:
    """`scalper ARGS` with stdout and stderr on pipes (as in `scalper … | less`, cron)."""
    e = _env(columns or 80, 24, env)
    if columns is None:
        e.pop("COLUMNS", None)
        e.pop("LINES", None)
    p = subprocess.run(_command(args), cwd=cwd, env=e, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    return Seen(p.returncode, p.stdout, p.stdout, p.stderr)
