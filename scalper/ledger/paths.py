"""Is this path one a ledger can be at? Checked before anything is created beside it
(the run lock, the -wal file, a backup), so a wrong `--ledger` writes nothing."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from scalper.errors import NotALedger, quote

SQLITE_MAGIC = b"SQLite format 3\x00"   # the first 16 bytes of every SQLite database file
PATH_FIX = "point --ledger (or `ledger:` in bots.yaml) at a file inside a folder"
FILE_FIX = ("point --ledger (or `ledger:` in bots.yaml) at the ledger, or at a new file to start one; if this file "
            "was the ledger, restore it from a backup (*.bak beside it)")


def check_ledger_path(path: str | os.PathLike, *, deep: bool = True) -> Path:
    """`path`, or NotALedger when it lies under a file, or is an existing file that is not an
    SQLite database, or (`deep`) an SQLite database of something else. A missing file and an
    empty one (a new ledger) pass. Commands check deep once, where they resolve the path
    (wiring.ledger_path); the lock and the opener check again cheaply (under 0.1 ms)."""
    path = Path(path)
    for parent in path.parents:
        try:
            mode = parent.stat().st_mode
        except FileNotFoundError:
            continue
        except OSError:
            break   # no access: opening will say so
        if not stat.S_ISDIR(mode):
            raise NotALedger(f"the ledger path {path} is under {parent}, which is a file, not a folder",
                             where="ledger", fix=PATH_FIX)
        break
    try:
        st = path.stat()
    except OSError:
        return path
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return path   # a folder or a device is refused where the file is opened; empty: a new ledger
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError:
        return path   # unreadable: opening will say why
    if head != SQLITE_MAGIC:
        raise NotALedger(f"{path} is not a scalper ledger: it is not an SQLite database (it begins "
                         f"{quote(head.decode('latin-1'), 16)}); it was left untouched", where="ledger",
                         fix=FILE_FIX)
    if not deep:
        return path
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return path   # opening for real will explain
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
            refuse_foreign(conn, path)
    except sqlite3.Error:
        pass          # damaged: opening for real will explain
    finally:
        conn.close()
    return path


def refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """A database with tables but no schema version is something else (the paper broker's
    state, a copy of another database): never build a ledger inside it."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    if "meta" in tables:
        # Another process created the ledger since the version was read (a fleet's hosts open a new
        # shared ledger at once; each read is a snapshot of its own): the migration reads it again
        # under the write lock, and refuses a `meta` without a schema version there.
        return
    if tables:
        raise NotALedger(f"{path} is an SQLite database but not a scalper ledger (it has the tables "
                         f"{', '.join(tables[:5])}{', …' if len(tables) > 5 else ''} and no schema version); it "
                         "was left untouched", where="ledger", fix=FILE_FIX)
