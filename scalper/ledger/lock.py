"""The run lock: one run-once per ledger at a time.

An OS-level advisory lock (flock) on `<ledger>.lock`: the kernel releases it
when the holding process dies, however it dies, so a stale lock never blocks.
The file records the holder's pid and start time for the message.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from scalper.errors import LockHeld


def lock_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".lock")


@contextmanager
def run_lock(ledger_path: Path, *, wait_s: float = 0.0):
    path = lock_path(ledger_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=wait_s, mode=0o600)
    info = path.with_name(path.name + ".owner")
    try:
        lock.acquire()
    except Timeout:
        holder = ""
        try:
            holder = " (" + info.read_text().strip() + ")"
        except OSError:
            pass
        raise LockHeld(f"another run-once holds the lock on {ledger_path}{holder}; nothing done") from None
    try:
        try:
            info.write_text(f"pid {os.getpid()}")
        except OSError:
            pass
        yield
    finally:
        lock.release()
