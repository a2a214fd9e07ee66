"""The ledger: everything the engine decided and did, in one SQLite file.

Written so that nothing is lost or duplicated:
- WAL mode, synchronous=FULL (tests may lower it: SYNCHRONOUS_ENV), every write inside an explicit `BEGIN IMMEDIATE`
  transaction (see `tx`), so a crash leaves either all of a step or none of it;
- unique keys do the de-duplication (a signal's dedupe key, an order's client
  id and (signal, account)), so a retry finds the row instead of adding one;
- every timestamp is UTC ISO 8601 ('...Z').

And so that a bad environment fails cleanly (LedgerError, exit 1, nothing half
written): a read-only file or folder is detected when the ledger is opened (a
write probe that is rolled back), a full disk fails the transaction that hit it
(SQLite rolls it back), a damaged file or a file that is not a ledger is named
as such, and a ledger written by a newer scalper is refused. An older schema
is migrated forward on open, in one transaction, after a backup copy.

The file, its -wal/-shm and its backups are created owner-only (0600).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from scalper.clock import iso
from scalper.errors import LedgerError
from scalper.ledger.paths import check_ledger_path, refuse_foreign
from scalper.ledger.postgres import ENGINE, LedgerUrl
from scalper.ledger.schema import SCHEMA_VERSION, SchemaError, current_version, migration_sql

OPEN_ORDER_STATES = ("new", "sent")

# Tests and drills only: cap the ledger's size in pages (SQLite's max_page_count), so a
# "disk full" happens for real at a chosen point. Unset in production.
MAX_PAGES_ENV = "SCALPER_LEDGER_MAX_PAGES"

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


def _explain(exc: BaseException, path: Path) -> str:
    """One line: which file, what is wrong, what to do. Never a traceback."""
    text = str(exc)
    if getattr(exc, "explained", False):   # the PostgreSQL adapter's errors say it all, masked
        return text
    low = text.lower()
    if isinstance(exc, OSError):
        code = exc.errno
        text = exc.strerror or text
        if code in (errno.EACCES, errno.EPERM, errno.EROFS):
            return (f"the ledger {path} cannot be written ({text}); make the file and its folder writable "
                    "by the user running scalper")
        if code in (errno.ENOSPC, errno.EDQUOT):
            return f"the disk holding the ledger {path} is full ({text}); free space and rerun"
        return f"the ledger {path} cannot be opened ({text})"
    if "readonly" in low or "read-only" in low:
        return f"the ledger {path} is read-only ({text}); make the file and its folder writable"
    if "disk is full" in low or "database or disk is full" in low:
        return f"the disk holding the ledger {path} is full ({text}); free space and rerun"
    if "not a database" in low or "malformed" in low:
        return f"the ledger {path} is damaged ({text}); restore it from a backup (*.bak beside it)"
    if "disk i/o error" in low:
        return f"the disk holding the ledger {path} failed to read or write ({text}); check the disk and rerun"
    if "locked" in low or "busy" in low:
        return f"the ledger {path} is busy: another process holds a write lock ({text}); rerun in a moment"
    if "unable to open" in low:
        return f"cannot open the ledger {path} ({text}); check the path and its folder's permissions"
    return f"ledger {path}: {text}"


class Ledger:
    def __init__(self, path: "str | os.PathLike | LedgerUrl", *, readonly: bool = False,
                 _conn: sqlite3.Connection | None = None):
        # A file path, or a PostgreSQL database (postgres.LedgerUrl: str() is its masked display form)
        self.path: Any = path if isinstance(path, LedgerUrl) else Path(path)
        self.engine = ENGINE if isinstance(path, LedgerUrl) and _conn is None else "sqlite"
        self.readonly = readonly
        self._snapshot = _conn is not None   # an in-memory copy: never write beside the ledger
        self.last_backup: Path | None = None  # the copy made before the last migration
        self.conn: sqlite3.Connection | None = None
        try:
            self.conn = _conn or self._connect()
            if not readonly:
                self._migrate()
                if not self._snapshot and self.engine == "sqlite":
                    self._probe_writable()   # PostgreSQL refuses a write it may not do: no probe needed
        except (sqlite3.Error, OSError) as exc:
            self.close()
            raise LedgerError(_explain(exc, self.path)) from None
        except SchemaError as exc:
            self.close()
            raise LedgerError(f"the ledger {self.path} {exc}") from None
        except BaseException:
            self.close()
            raise

    @classmethod
    def snapshot(cls, path: "str | os.PathLike | LedgerUrl") -> "Ledger":
        """An in-memory copy to work on and throw away (--dry-run): the file is never written."""
        mem = sqlite3.connect(":memory:", isolation_level=None)
        if isinstance(path, LedgerUrl):
            from scalper.ledger.copy import copy_ledger

            snapshot = cls(path, _conn=mem)   # the schema, in memory
            if path.exists():                 # else a new database: an empty ledger to try things on
                with cls(path, readonly=True) as source:
                    copy_ledger(source.conn, mem)
            return snapshot
        p = check_ledger_path(path)
        if p.exists():
            src = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
            try:
                src.backup(mem)
            except sqlite3.Error as exc:
                raise LedgerError(_explain(exc, p)) from None
            finally:
                src.close()
        return cls(p, _conn=mem)

    # --- connection ---------------------------------------------------------
    def _connect(self) -> Any:
        if isinstance(self.path, LedgerUrl):
            return self._connect_postgres()
        check_ledger_path(self.path, deep=False)   # the schema check in _migrate tells a foreign database
        if self.readonly:
            if not self.path.exists():
                raise LedgerError(f"no ledger at {self.path} yet; run `scalper run-once` first")
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                   timeout=10)
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_file():
            raise LedgerError(f"the ledger {self.path} is not a file; point `ledger:` (or --ledger) at a file")
        # The ledger holds account numbers and P&L: owner-only, including -wal/-shm
        # (SQLite gives those the main file's mode).
        old_umask = os.umask(0o077)
        try:
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={synchronous_mode()}")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=10000")
                max_pages = os.environ.get(MAX_PAGES_ENV)
                if max_pages:
                    conn.execute(f"PRAGMA max_page_count={int(max_pages)}")
            except BaseException:
                conn.close()
                raise
        finally:
            os.umask(old_umask)
        return conn

    def _connect_postgres(self) -> Any:
        from scalper.ledger import postgres

        conn = postgres.connect(self.path, readonly=self.readonly, application=_application_name())
        if self.readonly and "meta" not in conn.table_names():
            conn.close()
            raise LedgerError(f"no ledger in {self.path} yet; run `scalper run-once` first")
        return conn

    def _probe_writable(self) -> None:
        """SQLite opens a file it may not write read-only without a word, and BEGIN
        IMMEDIATE succeeds on it: only a real write tells. Rolled back: nothing changes."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        finally:
            try:
                c.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def close(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work. Errors roll back and surface as LedgerError."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise LedgerError(_explain(exc, self.path)) from None
        try:
            yield self.conn
        except BaseException as exc:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(exc, sqlite3.Error):
                raise LedgerError(_explain(exc, self.path)) from None
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise LedgerError(_explain(exc, self.path)) from None

    # --- schema -------------------------------------------------------------
    def _migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION: create it in a new file; in an older
        ledger, back the file up first, then apply every later migration in ONE
        transaction (all or nothing). A newer ledger is refused, untouched."""
        version = current_version(self.conn)
        _refuse_newer(version, self.path)
        if version == SCHEMA_VERSION:
            return
        if version == 0:
            if self.engine == "sqlite":
                refuse_foreign(self.conn, self.path)
            else:
                from scalper.ledger.postgres import refuse_foreign as refuse_foreign_database

                refuse_foreign_database(self.conn)
        if version > 0 and not self._snapshot and self.engine == "sqlite":
            # PostgreSQL runs the migration's DDL inside the one transaction: a failure leaves it untouched
            self.last_backup = self.backup(f"v{version}")
        with self.tx() as c:
            # Another process may have migrated while we copied: decide again under the write lock.
            version = current_version(c)
            _refuse_newer(version, self.path)
            if version == SCHEMA_VERSION:
                return
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _split_sql(migration_sql(v, self.engine)):
                    c.execute(statement)
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                      (str(SCHEMA_VERSION),))
            if version == 0:
                c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('created_at', ?)", (iso(time.time()),))
            else:
                self.audit(c, time.time(), "migration", f"ledger schema migrated from v{version} to "
                           f"v{SCHEMA_VERSION}; backup: {self.last_backup}")

    def backup(self, label: str) -> Path:
        """A consistent copy next to the ledger (SQLite's online backup), owner-only.

        Written under a temporary name and renamed, so a `.bak` file is always whole;
        never overwrites an earlier backup."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        dest = self.path.with_name(f"{self.path.name}.{label}.{stamp}.bak")
        n = 1
        while dest.exists():
            n += 1
            dest = self.path.with_name(f"{self.path.name}.{label}.{stamp}-{n}.bak")
        tmp = dest.with_name(dest.name + ".tmp")
        old_umask = os.umask(0o077)
        try:
            target = sqlite3.connect(tmp)
            try:
                self.conn.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")   # a single self-contained file
            finally:
                target.close()
            os.chmod(tmp, 0o600)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, dest)
        except (sqlite3.Error, OSError) as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise LedgerError(f"could not back up the ledger to {dest} ({exc}); nothing was changed — "
                              "free space or fix permissions and rerun") from None
        finally:
            os.umask(old_umask)
        return dest

    def schema_version(self) -> int:
        try:
            return current_version(self.conn)
        except sqlite3.Error as exc:
            raise LedgerError(_explain(exc, self.path)) from None
        except SchemaError as exc:
            raise LedgerError(f"the ledger {self.path} {exc}") from None

    def integrity_check(self) -> str:
        """'ok', or SQLite's first complaint (PostgreSQL checks its pages itself: 'ok' once reachable)."""
        if self.engine != "sqlite":
            self.schema_version()
            return "ok"
        try:
            return self.conn.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.Error as exc:
            raise LedgerError(_explain(exc, self.path)) from None

    # --- generic helpers ----------------------------------------------------
    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        try:
            cur = self.conn.execute(sql, params)
            cols = [d[0] for d in cur.description or ()]
            return [dict(zip(cols, row)) for row in cur.fetchall()]
        except sqlite3.Error as exc:
            raise LedgerError(_explain(exc, self.path)) from None

    def one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def insert(self, c: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cur = c.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(row.values()))
        return int(cur.lastrowid)

    def update(self, c: sqlite3.Connection, table: str, row_id: int, fields: dict[str, Any]) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        c.execute(f"UPDATE {table} SET {sets} WHERE id = ?", (*fields.values(), row_id))

    def audit(self, c: sqlite3.Connection, now: float, kind: str, message: str, *, run_id: str | None = None,
              bot: str | None = None, account_id: int | None = None, data: dict | None = None) -> None:
        self.insert(c, "audit", {"at": iso(now), "run_id": run_id, "kind": kind, "bot": bot,
                                 "account_id": account_id, "message": message,
                                 "data": json.dumps(data, sort_keys=True) if data else None})

    def update_run(self, c: sqlite3.Connection, run_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        c.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    # --- engine state -------------------------------------------------------
    def paused(self) -> tuple[bool, str | None]:
        row = self.one("SELECT value, reason FROM engine_state WHERE key = 'paused'")
        if row and row["value"] == "1":
            return True, row["reason"]
        return False, None

    def set_paused(self, c: sqlite3.Connection, paused: bool, reason: str | None, now: float) -> None:
        c.execute("INSERT OR REPLACE INTO engine_state (key, value, reason, updated_at) VALUES ('paused', ?, ?, ?)",
                  ("1" if paused else "0", reason, iso(now)))

    def state(self, key: str) -> str | None:
        """A value the engine keeps between runs (engine_state), or None."""
        row = self.one("SELECT value FROM engine_state WHERE key = ?", (key,))
        return row["value"] if row else None

    def set_state(self, c: sqlite3.Connection, key: str, value: str, now: float, reason: str | None = None) -> None:
        c.execute("INSERT OR REPLACE INTO engine_state (key, value, reason, updated_at) VALUES (?, ?, ?, ?)",
                  (key, value, reason, iso(now)))

    def kill_switch(self, bot: str) -> dict[str, Any] | None:
        row = self.one("SELECT * FROM kill_switches WHERE bot = ?", (bot,))
        return row if row and row["engaged"] else None

    def set_kill_switch(self, c: sqlite3.Connection, bot: str, engaged: bool, *, source: str,
                        reason: str, now: float) -> None:
        c.execute("INSERT OR REPLACE INTO kill_switches (bot, engaged, source, reason, changed_at) "
                  "VALUES (?, ?, ?, ?, ?)", (bot, 1 if engaged else 0, source, reason, iso(now)))

    # --- reads the engine needs ---------------------------------------------
    def open_positions(self, account_ids: list[int] | None = None) -> list[dict[str, Any]]:
        if account_ids is None:
            return self.query("SELECT * FROM positions WHERE status = 'open' ORDER BY id")
        marks = ",".join("?" for _ in account_ids)
        return self.query(f"SELECT * FROM positions WHERE status = 'open' AND account_id IN ({marks}) ORDER BY id",
                          tuple(account_ids))

    def orders_in_flight(self, account_ids: list[int] | None = None) -> list[dict[str, Any]]:
        """Opening orders not yet settled (new/sent): they count as exposure."""
        rows = self.query("SELECT * FROM orders WHERE status IN ('new', 'sent') ORDER BY id")
        if account_ids is not None:
            rows = [r for r in rows if r["account_id"] in account_ids]
        return rows

    def realized_since(self, account_id: int, since_iso: str) -> float:
        row = self.one("SELECT COALESCE(SUM(profit), 0) AS p FROM positions WHERE account_id = ? "
                       "AND status = 'closed' AND closed_at >= ?", (account_id, since_iso))
        return float(row["p"]) if row else 0.0


def ledger_exists(where: "str | os.PathLike | LedgerUrl") -> bool:
    """Is there a ledger at `where` yet (a file; on PostgreSQL, a schema version in the database)?"""
    return where.exists() if isinstance(where, LedgerUrl) else Path(where).exists()


def _application_name() -> str:
    """How the connection shows in pg_stat_activity: which command, which machine, which pid."""
    import socket
    import sys

    command = os.path.basename(sys.argv[0]) + (f" {sys.argv[1]}" if len(sys.argv) > 1 else "")
    return f"scalper ({command}) on {socket.gethostname()} pid {os.getpid()}"


def _refuse_newer(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise LedgerError(f"the ledger {path} has schema version {version}, newer than this scalper knows "
                          f"({SCHEMA_VERSION}); it was left untouched — upgrade scalper, or point --ledger at "
                          "another file")


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script, run one by one inside our transaction
    (sqlite3's executescript would commit first)."""
    out, buf = [], []
    for line in script.splitlines():
        code = line.split("--", 1)[0]
        buf.append(code)
        if code.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip()
            if stmt.strip(";").strip():
                out.append(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return out
