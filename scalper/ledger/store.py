"""The ledger: everything the engine decided and did, in one SQLite file.

Written so that nothing is lost or duplicated:
- WAL mode, synchronous=FULL, every write inside an explicit `BEGIN IMMEDIATE`
  transaction (see `tx`), so a crash leaves either all of a step or none of it;
- unique keys do the de-duplication (a signal's dedupe key, an order's client
  id and (signal, account)), so a retry finds the row instead of adding one;
- every timestamp is UTC ISO 8601 ('...Z').
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from scalper.clock import iso
from scalper.errors import LedgerError
from scalper.ledger.schema import MIGRATIONS, SCHEMA_VERSION, current_version

OPEN_ORDER_STATES = ("new", "sent")


def _explain(exc: sqlite3.Error, path: Path) -> str:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return f"the ledger {path} is read-only ({text}); make the file and its folder writable"
    if "disk is full" in text or "database or disk is full" in text:
        return f"the disk holding {path} is full ({text}); free space and rerun"
    if "not a database" in text or "malformed" in text:
        return f"the ledger {path} is damaged ({text}); restore it from a backup"
    if "unable to open" in text:
        return f"cannot open the ledger {path} ({text}); check the path and permissions"
    return f"ledger {path}: {text}"


class Ledger:
    def __init__(self, path: str | os.PathLike, *, readonly: bool = False,
                 _conn: sqlite3.Connection | None = None):
        self.path = Path(path)
        self.readonly = readonly
        try:
            self.conn = _conn or self._connect()
            if not readonly:
                self._migrate()
        except sqlite3.Error as exc:
            raise LedgerError(_explain(exc, self.path)) from None

    @classmethod
    def snapshot(cls, path: str | os.PathLike) -> "Ledger":
        """An in-memory copy to work on and throw away (--dry-run): the file is never written."""
        mem = sqlite3.connect(":memory:", isolation_level=None)
        p = Path(path)
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
    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.exists():
                raise LedgerError(f"no ledger at {self.path} yet; run `scalper run-once` first")
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                   timeout=10)
            return conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The ledger holds account numbers and P&L: owner-only, including -wal/-shm.
        old_umask = os.umask(0o077)
        try:
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            os.umask(old_umask)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def close(self) -> None:
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
        version = current_version(self.conn)
        if version > SCHEMA_VERSION:
            raise LedgerError(f"the ledger {self.path} has schema version {version}, newer than this "
                              f"scalper knows ({SCHEMA_VERSION}); upgrade scalper")
        if version == SCHEMA_VERSION:
            return
        if version > 0:
            self.backup(f"v{version}")
        with self.tx() as c:
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _split_sql(MIGRATIONS[v]):
                    c.execute(statement)
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                      (str(SCHEMA_VERSION),))
            if version == 0:
                c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('created_at', ?)", (iso(time.time()),))

    def backup(self, label: str) -> Path:
        """A consistent copy next to the ledger (SQLite's online backup)."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        dest = self.path.with_name(f"{self.path.name}.{label}.{stamp}.bak")
        target = sqlite3.connect(dest)
        try:
            self.conn.backup(target)
        finally:
            target.close()
        os.chmod(dest, 0o600)
        return dest

    def schema_version(self) -> int:
        return current_version(self.conn)

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

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
