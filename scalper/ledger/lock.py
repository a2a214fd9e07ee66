"""The run lock: one pass per ledger (per terminal host, on PostgreSQL) at a time.

On an SQLite ledger: an OS advisory lock on `<ledger>.lock` (flock on POSIX, a byte-range lock
on Windows): the kernel releases it when the holder dies, however it dies, so a stale lock never
blocks. The holder writes its pid and what it is (run-once, kill-switch, ...) into the file for
the message the loser prints.

On a PostgreSQL ledger (fleet mode, several machines): a session advisory lock
(pg_try_advisory_lock) on a key derived from the terminal host's name, held by a connection of
its own for as long as the lock is. The server releases it when that connection ends, however
the holder dies (a SIGKILL closes the socket; a vanished machine is detected by TCP keepalives),
so again nothing stale. The connection's application_name says who holds it, read back from
pg_stat_activity for the loser's message.

Plain stdlib (and psycopg, already loaded for a PostgreSQL ledger) rather than a lock library:
`run-once` starts every 45 s and the library's import alone cost ~50 ms of a 0.5 s budget.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from scalper.errors import LedgerError, LockHeld
from scalper.fleet.hosts import LOCAL
from scalper.ledger.paths import check_ledger_path
from scalper.ledger.postgres import LedgerUrl

if TYPE_CHECKING:
    from scalper.ledger import postgres

# the terminal host of an account without `host:` (and of a plain run-once), named once in fleet.hosts
DEFAULT_HOST = LOCAL

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


def leaves_lock_file(ledger: Path | LedgerUrl) -> bool:
    """Would taking the lock create a file that is not there yet (a dry run must not)?"""
    return not isinstance(ledger, LedgerUrl) and not lock_path(Path(ledger)).exists()


@contextmanager
def run_lock(ledger: Path | LedgerUrl, *, holder: str = "run-once", host: str = DEFAULT_HOST,
             scope: str | None = None, wait_s: float = 0.0, poll_s: float = 0.05) -> Iterator[None]:
    """Hold the lock, waiting up to `wait_s`; LockHeld (exit 75) naming the holder if it stays taken.

    `holder` says what takes it (shown to whoever is refused). On PostgreSQL the lock is per
    terminal `host` (a pass on one host never waits for another's), or per `scope` for a lock
    that is not a pass's (alert delivery)."""
    if isinstance(ledger, LedgerUrl):
        with _advisory_lock(ledger, scope or f"pass:{host}", holder=holder, wait_s=wait_s, poll_s=poll_s):
            yield
        return
    with _file_lock(Path(ledger), holder=holder, wait_s=wait_s, poll_s=poll_s):
        yield


@contextmanager
def _file_lock(ledger_path: Path, *, holder: str, wait_s: float, poll_s: float) -> Iterator[None]:
    check_ledger_path(ledger_path, deep=False)   # a wrong path: refuse before creating the lock beside it
    path = lock_path(ledger_path)
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
                raise LockHeld(_refusal(ledger_path, *_file_holder(fd)))
            time.sleep(poll_s)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} {holder}\n".encode(), 0) if hasattr(os, "pwrite") else None
        except OSError:
            pass  # the pid is only for the message
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def _refusal(where: object, holder: str | None, detail: str | None, scope: str = "") -> str:
    who = f"another {holder}" if holder else "another scalper command"
    return f"{who} holds the lock{scope} on {where}{f' ({detail})' if detail else ''}; nothing done"


def _file_holder(fd: int) -> tuple[str | None, str | None]:
    """(what holds it, 'pid N') from the lock file; a file from before holders were recorded
    says only its pid, and only run-once wrote it then."""
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip() if hasattr(os, "pread") else ""
    except OSError:
        text = ""
    m = re.fullmatch(r"pid (\d+)(?: (.+))?", text)
    if not m:
        return None, text or None
    return (m.group(2) or "run-once"), f"pid {m.group(1)}"


# --- PostgreSQL ------------------------------------------------------------------------------------
_LABEL = "scalper lock: "   # application_name of a lock's connection: "scalper lock: <holder> | pid N on <machine>"


@contextmanager
def _advisory_lock(ledger: LedgerUrl, name: str, *, holder: str, wait_s: float, poll_s: float) -> Iterator[None]:
    from scalper.ledger import postgres

    key = postgres.advisory_key(f"scalper.lock:{name}")
    label = f"{_LABEL}{holder} | pid {os.getpid()} on {socket.gethostname()}"
    try:
        conn = postgres.connect(ledger, application=label)
        postgres.server_keepalives(conn)   # a holder whose machine vanishes: the lock freed within ~1 min
    except sqlite3.Error as exc:
        raise LedgerError(str(exc)) from None
    try:
        deadline = time.monotonic() + wait_s
        while not (conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone() or (False,))[0]:
            if time.monotonic() >= deadline:
                who, detail = _advisory_holder(conn, key)
                scope = f" for host {name.removeprefix('pass:')}" if name.startswith("pass:") else f" ({name})"
                raise LockHeld(_refusal(ledger, who, detail, scope))
            time.sleep(poll_s)
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):   # the connection is gone: so is the lock
                conn.execute("SELECT pg_advisory_unlock(?)", (key,))
    except sqlite3.Error as exc:
        raise LedgerError(str(exc)) from None
    finally:
        conn.close()


def _advisory_holder(conn: postgres.PgConnection, key: int) -> tuple[str | None, str | None]:
    """Who holds the advisory lock `key`: its connection's label, from pg_stat_activity."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(
        "SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ? AND l.objid = ? AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",   # keys are per database
        (unsigned >> 32, unsigned & 0xFFFFFFFF)).fetchone()
    if row is None:
        return None, None
    app = row[0] or ""
    if not app.startswith(_LABEL):
        return None, app or None
    holder, _, detail = app.removeprefix(_LABEL).partition(" | ")
    return holder or None, detail or None
