"""The run lock: one run-once per ledger at a time.

An OS advisory lock on `<ledger>.lock` (flock on POSIX, a byte-range lock on
Windows): the kernel releases it when the holder dies, however it dies, so a
stale lock never blocks. The holder writes its pid into the file for the
message the loser prints.

Plain stdlib rather than a lock library: `run-once` starts every 45 s and the
library's import alone cost ~50 ms of a 0.5 s budget.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from scalper.errors import LedgerError, LockHeld
from scalper.ledger.paths import check_ledger_path

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def lock_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".lock")


@contextmanager
def run_lock(ledger_path: Path, *, wait_s: float = 0.0, poll_s: float = 0.05):
    """Hold the ledger's run lock, waiting up to `wait_s`; LockHeld (exit 75) if it stays taken."""
    check_ledger_path(ledger_path, deep=False)   # a wrong path: refuse before creating the lock beside it
    path = lock_path(Path(ledger_path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LedgerError(f"cannot create the run lock {path}: {exc.strerror}; "
                          "make the ledger's folder writable") from None
    try:
        deadline = time.monotonic() + wait_s
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise LockHeld(f"another run-once holds the lock on {ledger_path}{_holder(fd)}; nothing done")
            time.sleep(poll_s)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0) if hasattr(os, "pwrite") else None
        except OSError:
            pass  # the pid is only for the message
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip() if hasattr(os, "pread") else ""
    except OSError:
        text = ""
    return f" ({text})" if text else ""
