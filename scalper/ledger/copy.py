"""Copying a ledger between engines, verified row by row: `scalper ledger migrate` (SQLite →
PostgreSQL) and the in-memory snapshot a --dry-run works on (PostgreSQL → SQLite).

Both sides speak the sqlite3 interface (postgres.PgConnection adapts PostgreSQL), so one copy
serves every direction. Ids are copied as they are (orders and audit rows keep their numbers, the
alert cursors stay valid), the `runs` table keeps its insertion order (SQLite's rowid), and a
PostgreSQL target's identity sequences are moved past the copied ids. The digest of a table is a
SHA-256 over its rows in a canonical form (sorted; numbers and text written one way whatever the
engine), so the same rows give the same digest on both engines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scalper.ledger.schema import table_names

# Parents before children (the foreign keys), then the rest; unknown tables last, by name.
TABLE_ORDER = ("meta", "runs", "signals", "decisions", "orders", "fills", "positions", "pnl_daily", "audit",
               "engine_state", "kill_switches", "notify_outbox", "notify_state")
BATCH = 2000
# SQLite's implicit row number, a real column on PostgreSQL for the tables that use it (postgres.ddl)
ROWID = "rowid"


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int
    digest: str          # of the source's rows; the target's matched it (or `copy_ledger` raised)


class CopyMismatch(Exception):
    """The target does not hold what the source holds, after the copy (a table named, counts and digests)."""


def ledger_tables(conn: Any) -> list[str]:
    names = {t for t in table_names(conn) if not t.startswith("sqlite_")}
    return [t for t in TABLE_ORDER if t in names] + sorted(names - set(TABLE_ORDER))


def columns(conn: Any, table: str) -> list[str]:
    cur = conn.execute(f"SELECT * FROM {table} LIMIT 0")
    return [d[0] for d in cur.description or ()]


def _engine(conn: Any) -> str:
    return getattr(conn, "engine", "sqlite")


def _has_rowid_column(conn: Any, table: str) -> bool:
    """Does `table` carry SQLite's rowid as its own column (PostgreSQL, tables without an integer id)?"""
    if _engine(conn) == "sqlite":
        return False
    return ROWID in conn.catalog.columns(table)


def _copies_rowid(source: Any, target: Any, table: str) -> bool:
    """Is the table's row order to be carried over as `rowid`: when a PostgreSQL side keeps it as
    a column (SQLite gives every table a rowid, so the other side, whichever, has one)."""
    return _has_rowid_column(source, table) or _has_rowid_column(target, table)


def select_rows(conn: Any, table: str, cols: list[str]) -> Iterable[tuple]:
    cur = conn.execute(f"SELECT {', '.join(cols)} FROM {table}")
    while True:
        batch = cur.fetchmany(BATCH) if hasattr(cur, "fetchmany") else cur.fetchall()
        if not batch:
            return
        yield from batch
        if not hasattr(cur, "fetchmany"):
            return


def _canonical(value: Any) -> str:
    if value is None:
        return "N"
    if isinstance(value, bool):
        return f"i{int(value)}"
    if isinstance(value, int):
        return f"i{value}"
    if isinstance(value, float):
        return f"i{int(value)}" if value.is_integer() and abs(value) < 2 ** 63 else f"f{value!r}"
    if isinstance(value, bytes):
        return "b" + value.hex()
    return "t" + str(value)


def table_digest(conn: Any, table: str, cols: list[str]) -> tuple[int, str]:
    """(row count, digest) of `cols` of `table`: a sorted list of canonical rows, hashed."""
    lines = sorted("\x1f".join(_canonical(v) for v in row) for row in select_rows(conn, table, cols))
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\x1e")
    return len(lines), h.hexdigest()


def is_empty(conn: Any) -> list[tuple[str, int]]:
    """Tables holding rows (besides `meta`, which every ledger has): empty list when empty."""
    out = []
    for t in ledger_tables(conn):
        if t == "meta":
            continue
        n = conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        if n:
            out.append((t, int(n)))
    return out


def copy_ledger(source: Any, target: Any, *, check: bool = True) -> list[TableCopy]:
    """Copy every row of `source` into `target` (a ledger of the same schema version, holding no
    rows but `meta`, which is replaced), in ONE transaction on the target, then verify each
    table's count and digest. Raises CopyMismatch (after rolling back) when they differ.
    `check=False` skips the digests and returns [] (a throw-away copy: the dry run's snapshot)."""
    tables = ledger_tables(source)
    missing = [t for t in tables if t not in set(ledger_tables(target))]
    if missing:
        raise CopyMismatch(f"the target has no table {missing[0]}: its schema differs from the source's")
    target.execute("BEGIN IMMEDIATE")
    try:
        plan: list[tuple[str, list[str], list[str]]] = []
        for table in tables:
            shared = [c for c in columns(source, table) if c in set(columns(target, table))]
            src_cols, dst_cols = list(shared), list(shared)
            if _copies_rowid(source, target, table):
                src_cols.append(ROWID)   # keep the insertion order SQLite's rowid (or our column) records
                dst_cols.append(ROWID)
            plan.append((table, src_cols, dst_cols))
        for table, _, _ in reversed(plan):
            target.execute(f"DELETE FROM {table}")
        for table, src_cols, dst_cols in plan:
            sql = f"INSERT INTO {table} ({', '.join(dst_cols)}) VALUES ({', '.join('?' for _ in dst_cols)})"
            batch: list[tuple] = []
            for row in select_rows(source, table, src_cols):
                batch.append(tuple(row))
                if len(batch) >= BATCH:
                    target.executemany(sql, batch)
                    batch = []
            if batch:
                target.executemany(sql, batch)
        if _engine(target) != "sqlite":
            for table, _, _ in plan:
                for col in target.catalog.identity_columns(table):
                    target.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "
                                   f"COALESCE(MAX({col}), 0) + 1, false) FROM {table}")
        results = []
        for table, src_cols, _ in plan:
            if not check:
                continue
            shared = [c for c in src_cols if c != ROWID]
            n_src, d_src = table_digest(source, table, shared)
            n_dst, d_dst = table_digest(target, table, shared)
            if (n_src, d_src) != (n_dst, d_dst):
                raise CopyMismatch(f"table {table}: the source has {n_src} rows (digest {d_src[:12]}), the target "
                                   f"{n_dst} (digest {d_dst[:12]}) after the copy; nothing was kept")
            results.append(TableCopy(table, n_src, d_src))
    except BaseException:
        target.execute("ROLLBACK")
        raise
    target.execute("COMMIT")
    return results


def verify(source: Any, target: Any) -> list[tuple[str, int, int, bool]]:
    """(table, source rows, target rows, same digest) for every table of the source: a re-check
    that reads both sides again, after the copy committed."""
    out = []
    for table in ledger_tables(source):
        shared = [c for c in columns(source, table) if c in set(columns(target, table))]
        n_src, d_src = table_digest(source, table, shared)
        n_dst, d_dst = table_digest(target, table, shared)
        out.append((table, n_src, n_dst, d_src == d_dst))
    return out
