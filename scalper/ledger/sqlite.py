"""The SQLite plumbing the ledger and the paper broker's books share: how a state file is
opened (WAL journal, durability, busy timeout, owner-only files) and how a read-modify-write
is made one serialized transaction. Each keeps its own schema and statements."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 10.0   # how long a writer waits for another process's write lock

# Tests only: how hard SQLite syncs the ledger and the paper broker's books to disk
# (PRAGMA synchronous). Unset in production, where it is FULL: a committed step survives
# a power cut. The test suite sets OFF (tests/conftest.py), because fsync is most of its
# wall time. Unknown values mean FULL: a typo costs speed, never safety.
SYNCHRONOUS_ENV = "SCALPER_SQLITE_SYNCHRONOUS"
_SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def synchronous_mode() -> str:
    """The PRAGMA synchronous value to use: FULL unless a test asked otherwise."""
    value = os.environ.get(SYNCHRONOUS_ENV, "").strip().upper()
    return value if value in _SYNCHRONOUS_MODES else "FULL"


@contextmanager
def owner_only() -> Iterator[None]:
    """Files created inside (a database, and its -wal and -shm, which SQLite creates lazily
    with the main file's mode) are readable by their owner only: they hold account books."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def connect(path: Path | str, *, foreign_keys: bool = False) -> sqlite3.Connection:
    """A read-write connection: autocommit (transactions are explicit: `transaction`), WAL
    journal, `synchronous_mode()`, a busy timeout of BUSY_TIMEOUT_S. Closed again if any
    of that fails."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        _use_wal(db)
        db.execute(f"PRAGMA synchronous = {synchronous_mode()}")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        db.close()
        raise
    return db


def connect_readonly(path: Path | str) -> sqlite3.Connection:
    """A connection that can only read (it never creates the file), autocommit, busy timeout."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def _use_wal(db: sqlite3.Connection) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite answers
    # "database is locked" at once (no busy handler) when another process is
    # switching it at the same instant: retry for as long as a busy wait would.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic, serialized unit of work: all of it is committed, or none (an error inside,
    or at the commit, rolls back and propagates). IMMEDIATE takes the write lock up front, so
    what is read inside cannot change before it is written, whichever process races."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass   # the error that brought us here says more
        raise
