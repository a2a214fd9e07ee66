"""The ledger: everything the engine decided and did, in one SQLite file.

Written so that nothing is lost or duplicated:
- WAL mode, synchronous=FULL (tests may lower it: `sqlite.SYNCHRONOUS_ENV`), every write inside an explicit
  `BEGIN IMMEDIATE` transaction (see `tx`), so a crash leaves either all of a step or none of it;
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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from scalper.clock import iso
from scalper.errors import LedgerError
from scalper.ledger import sqlite
from scalper.ledger.orders import Orders
from scalper.ledger.paths import check_ledger_path, refuse_foreign
from scalper.ledger.positions import Positions
from scalper.ledger.postgres import ENGINE, LedgerUrl, PgConnection
from scalper.ledger.reports import Reports
from scalper.ledger.rows import R, fetch
from scalper.ledger.runs import Runs
from scalper.ledger.schema import (
    REBUILDS,
    SCHEMA_VERSION,
    SchemaError,
    current_version,
    migration_sql,
)
from scalper.ledger.signals import Signals
from scalper.ledger.switches import KillSwitches

# Tests and drills only: cap the ledger's size in pages (SQLite's max_page_count), so a
# "disk full" happens for real at a chosen point. Unset in production.
MAX_PAGES_ENV = "SCALPER_LEDGER_MAX_PAGES"


def _explain(exc: BaseException, path: Path | LedgerUrl) -> str:
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
    """The ledger (a file, or a PostgreSQL database) and its named operations, grouped by concern: `runs`,
    `signals` (and their decisions), `orders`, `positions` (fills, daily P&L), `kill_switches`, `reports`. Reads return
    row dataclasses (scalper.ledger.rows); writes take the connection of an open `tx()`, so a
    caller groups the writes of one step into one transaction."""

    def __init__(self, path: str | os.PathLike | LedgerUrl, *, readonly: bool = False,
                 _conn: sqlite3.Connection | None = None):
        self.runs = Runs(self)
        self.signals = Signals(self)
        self.orders = Orders(self)
        self.positions = Positions(self)
        self.kill_switches = KillSwitches(self)
        self.reports = Reports(self)
        # A file path, or a PostgreSQL database (postgres.LedgerUrl: str() is its masked display form)
        self.path: Any = path if isinstance(path, LedgerUrl) else Path(path)
        self.engine = ENGINE if isinstance(path, LedgerUrl) and _conn is None else "sqlite"
        self.readonly = readonly
        self._snapshot = _conn is not None   # an in-memory copy: never write beside the ledger
        self.last_backup: Path | None = None  # the copy made before the last migration
        # Set once the connection opens; __init__ fails (LedgerError) otherwise, so a Ledger always has one.
        # A PostgreSQL ledger's connection is a postgres.PgConnection, which speaks sqlite3.Connection's subset.
        self.conn: sqlite3.Connection
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
    def snapshot(cls, path: str | os.PathLike | LedgerUrl) -> Ledger:
        """An in-memory copy to work on and throw away (--dry-run): the file is never written."""
        mem = sqlite3.connect(":memory:", isolation_level=None)
        if isinstance(path, LedgerUrl):
            from scalper.ledger.copy import copy_ledger

            snapshot = cls(path, _conn=mem)   # the schema, in memory
            if path.exists():                 # else a new database: an empty ledger to try things on
                with cls(path, readonly=True) as source:
                    copy_ledger(source.conn, mem, check=False)   # thrown away: no digest to pay for
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
            return sqlite.connect_readonly(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_file():
            raise LedgerError(f"the ledger {self.path} is not a file; point `ledger:` (or --ledger) at a file")
        # The ledger holds account numbers and P&L: owner-only, including -wal/-shm.
        with sqlite.owner_only():
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            conn = sqlite.connect(self.path, foreign_keys=True)
            try:
                max_pages = os.environ.get(MAX_PAGES_ENV)
                if max_pages:
                    conn.execute(f"PRAGMA max_page_count={int(max_pages)}")
            except BaseException:
                conn.close()
                raise
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
        conn = getattr(self, "conn", None)   # None when __init__ failed before connecting
        if conn is None:
            return
        try:
            conn.close()
        except sqlite3.Error:
            pass

    def __enter__(self) -> Ledger:
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

                refuse_foreign_database(cast(PgConnection, self.conn))   # engine != sqlite: a PgConnection
        if version > 0 and not self._snapshot and self.engine == "sqlite":
            # PostgreSQL runs the migration's DDL inside the one transaction: a failure leaves it untouched
            self.last_backup = self.backup(f"v{version}")
        # A table rebuild drops and renames tables other tables refer to: foreign keys are off
        # for it (SQLite allows the switch outside a transaction only) and checked before commit.
        rebuilds = any(v in REBUILDS for v in range(version + 1, SCHEMA_VERSION + 1))
        if rebuilds:
            self.conn.execute("PRAGMA foreign_keys=OFF")
        try:
            self._apply_migrations(rebuilds)
        finally:
            if rebuilds and not self._snapshot:
                self.conn.execute("PRAGMA foreign_keys=ON")

    def _apply_migrations(self, check_foreign_keys: bool) -> None:
        with self.tx() as c:
            # Another process may have migrated while we copied: decide again under the write lock.
            version = current_version(c)
            _refuse_newer(version, self.path)
            if version == SCHEMA_VERSION:
                return
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _split_sql(migration_sql(v, self.engine)):
                    c.execute(statement)
            if check_foreign_keys and c.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise SchemaError("has rows that refer to missing ones (PRAGMA foreign_key_check); it was left "
                                  "untouched — restore it from a backup (*.bak beside it)")
            _set_meta(c, "schema_version", str(SCHEMA_VERSION))
            if version == 0:
                _set_meta(c, "created_at", iso(time.time()))
            else:
                self.audit(c, time.time(), "migration", f"ledger schema migrated from v{version} to "
                           f"v{SCHEMA_VERSION}; backup: {self.last_backup}")

    def backup(self, label: str) -> Path:
        """A consistent copy next to the ledger (SQLite's online backup), owner-only.

        Written under a temporary name and renamed, so a `.bak` file is always whole;
        never overwrites an earlier backup."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
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

    # --- reads --------------------------------------------------------------------------------
    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        """Rows as dicts: for the ledger's own modules and for tests; code outside
        scalper/ledger asks a named operation instead."""
        try:
            cur = self.conn.execute(sql, params)
            cols = [d[0] for d in cur.description or ()]
            return [dict(zip(cols, row)) for row in cur.fetchall()]
        except sqlite3.Error as exc:
            raise LedgerError(_explain(exc, self.path)) from None

    def one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def rows(self, cls: type[R], sql: str, params: tuple = ()) -> list[R]:
        """Rows of a row dataclass (scalper.ledger.rows)."""
        try:
            return fetch(self.conn, cls, sql, params)
        except sqlite3.Error as exc:
            raise LedgerError(_explain(exc, self.path)) from None

    def row(self, cls: type[R], sql: str, params: tuple = ()) -> R | None:
        found = self.rows(cls, sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: tuple = ()) -> Any:
        """The first column of the first row, or None."""
        try:
            got = self.conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise LedgerError(_explain(exc, self.path)) from None
        return got[0] if got else None

    # --- audit ----------------------------------------------------------------------------------
    def audit(self, c: sqlite3.Connection, now: float, kind: str, message: str, *, run_id: str | None = None,
              bot: str | None = None, account_id: int | None = None, data: dict | None = None) -> None:
        c.execute("INSERT INTO audit (at, run_id, kind, bot, account_id, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (iso(now), run_id, kind, bot, account_id, message,
                   json.dumps(data, sort_keys=True) if data else None))

    # --- engine state -------------------------------------------------------
    def paused(self) -> tuple[bool, str | None]:
        row = self.one("SELECT value, reason FROM engine_state WHERE key = 'paused'")
        if row and row["value"] == "1":
            return True, row["reason"]
        return False, None

    def set_paused(self, c: sqlite3.Connection, paused: bool, reason: str | None, now: float) -> None:
        self.set_state(c, "paused", "1" if paused else "0", now, reason)

    def state(self, key: str) -> str | None:
        """A value the engine keeps between runs (engine_state), or None."""
        return self.scalar("SELECT value FROM engine_state WHERE key = ?", (key,))

    def set_state(self, c: sqlite3.Connection, key: str, value: str, now: float, reason: str | None = None) -> None:
        c.execute("INSERT INTO engine_state (key, value, reason, updated_at) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value, reason = excluded.reason, "
                  "updated_at = excluded.updated_at", (key, value, reason, iso(now)))


def _set_meta(c: sqlite3.Connection, key: str, value: str) -> None:
    c.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
              (key, value))


def ledger_exists(where: str | os.PathLike | LedgerUrl) -> bool:
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
