"""The ledger's schema and its migrations.

SCHEMA_VERSION is stored in `meta`. Opening an older ledger copies it to a
backup first, then applies each later migration in one transaction (see
Ledger._migrate). A migration is a plain SQL script; it must only add (tables,
columns with defaults, indexes, constraints every stored row meets), so a backup
restored by hand is always usable. SQLite adds a constraint to a table only by
rebuilding it (new table, copy, drop, rename): such a migration is listed in
REBUILDS, and runs with foreign keys off, checked before it commits.

The scripts are written once, in SQLite's dialect, for both engines: the PostgreSQL connection
rewrites each statement (postgres.ddl maps the types; a rebuild's DROP TABLE cascades to the
foreign keys the rebuilt tables recreate), and ENGINE_DDL holds what a rewrite cannot say.
Both engines record the same SCHEMA_VERSION in `meta`.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from scalper.vocab import (
    CloseCause,
    CloseState,
    FillEntry,
    OrderKind,
    OrderStatus,
    PositionStatus,
    RunStatus,
    Side,
)

SCHEMA_VERSION = 6


class SchemaError(Exception):
    """The ledger's schema record is unreadable (the message completes "the ledger PATH ...")."""

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,           -- wall clock, UTC
    as_of TEXT NOT NULL,                -- the engine clock (differs under --now)
    finished_at TEXT,
    duration_s REAL,
    status TEXT NOT NULL,               -- running | ok | paused | error | unavailable | interrupted
    pid INTEGER,
    dry_run INTEGER NOT NULL DEFAULT 0,
    summary TEXT
);

CREATE TABLE signals (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,    -- bot|strategy|symbol|bar time|direction
    run_id TEXT,
    bot TEXT NOT NULL,
    strategy TEXT NOT NULL,
    symbol TEXT NOT NULL,
    bar_time TEXT NOT NULL,
    bar_ts INTEGER NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('buy', 'sell')),
    entry REAL NOT NULL, sl REAL NOT NULL, tp REAL NOT NULL, score REAL NOT NULL,
    params TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX signals_bot_time ON signals (bot, bar_ts);

CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,
    signal_id INTEGER NOT NULL UNIQUE REFERENCES signals (id),
    run_id TEXT,
    bot TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('open', 'reject')),
    reason TEXT NOT NULL,
    detail TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    signal_id INTEGER REFERENCES signals (id),
    account_id INTEGER NOT NULL,
    bot TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'open',  -- open | close
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    volume REAL NOT NULL,
    sl REAL, tp REAL,
    magic INTEGER NOT NULL,
    position_ticket INTEGER,
    status TEXT NOT NULL,               -- new | sent | filled | rejected | error | failed | canceled
    attempts INTEGER NOT NULL DEFAULT 0,
    broker_ticket INTEGER,
    fill_price REAL, filled_volume REAL,
    code INTEGER, message TEXT,
    run_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (signal_id, account_id, kind)
);
CREATE INDEX orders_status ON orders (status);

CREATE TABLE fills (
    id INTEGER PRIMARY KEY,
    order_id INTEGER REFERENCES orders (id),
    account_id INTEGER NOT NULL,
    deal_ticket INTEGER NOT NULL,
    position_ticket INTEGER,
    side TEXT NOT NULL,
    entry TEXT NOT NULL,                -- in | out
    price REAL NOT NULL, volume REAL NOT NULL,
    profit REAL NOT NULL DEFAULT 0,
    reason TEXT,
    time TEXT NOT NULL,
    UNIQUE (account_id, deal_ticket)
);

CREATE TABLE positions (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    ticket INTEGER NOT NULL,
    order_id INTEGER REFERENCES orders (id),
    signal_id INTEGER REFERENCES signals (id),
    bot TEXT,
    strategy TEXT,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    volume REAL NOT NULL,
    price_open REAL NOT NULL,
    sl REAL, tp REAL, initial_sl REAL,
    magic INTEGER,
    opened_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    closed_at TEXT, close_price REAL, close_reason TEXT,
    profit REAL,                        -- realized, account currency
    last_price REAL, unrealized REAL,
    adopted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, ticket)
);
CREATE INDEX positions_open ON positions (status, account_id);

CREATE TABLE pnl_daily (
    day TEXT NOT NULL, bot TEXT NOT NULL, account_id INTEGER NOT NULL,
    realized REAL NOT NULL, trades INTEGER NOT NULL, wins INTEGER NOT NULL, losses INTEGER NOT NULL,
    PRIMARY KEY (day, bot, account_id)
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    run_id TEXT,
    kind TEXT NOT NULL,
    bot TEXT,
    account_id INTEGER,
    message TEXT NOT NULL,
    data TEXT
);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE engine_state (key TEXT PRIMARY KEY, value TEXT, reason TEXT, updated_at TEXT NOT NULL);

CREATE TABLE kill_switches (
    bot TEXT PRIMARY KEY,
    engaged INTEGER NOT NULL,
    source TEXT,                        -- manual | unrealized_loss | daily_loss
    reason TEXT,
    changed_at TEXT NOT NULL
);
"""

# v2: every run reads each bot's realized P&L of the day (risk and kill-switch) and
# the report groups decisions by run: index both instead of scanning whole tables.
_V2 = """
CREATE INDEX IF NOT EXISTS positions_bot_closed ON positions (bot, status, closed_at);
CREATE INDEX IF NOT EXISTS decisions_run ON decisions (run_id);
"""


def _v3_notify_outbox() -> str:
    """v3: alerts. The outbox holds one row per (target, event): pending until delivered,
    then sent, or dropped after too many tries. notify_state keeps the cursors of what has
    been turned into events already and the stall-watch state."""
    return """
CREATE TABLE IF NOT EXISTS notify_outbox (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,               -- the target's name in bots.yaml (never its URL)
    event_key TEXT NOT NULL,            -- what happened, e.g. fill:12, close:88, stale:<run id>
    event TEXT NOT NULL,                -- fills | closes | kill_switch | errors | stale | daily_summary
    bot TEXT,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dropped')),
    tries INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TEXT,
    UNIQUE (target, event_key)
);
CREATE INDEX IF NOT EXISTS notify_outbox_pending ON notify_outbox (status, target, id);
CREATE TABLE IF NOT EXISTS notify_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
"""


def _v4_position_closing_state() -> str:
    """v4: a position gone at the broker whose closing deal the history does not show yet is
    closed with close_state 'closing' (P&L pending) and completed by a later pass."""
    return """
ALTER TABLE positions ADD COLUMN close_state TEXT;   -- NULL | closing
CREATE INDEX IF NOT EXISTS positions_closing ON positions (close_state, account_id);
"""


def _one_of(column: str, words: type[Enum], *, nullable: bool = False) -> str:
    """A CHECK that `column` holds one of the vocabulary's words (scalper.vocab)."""
    listed = ", ".join(f"'{w.value}'" for w in words)
    test = f"{column} IN ({listed})"
    return f"CHECK ({column} IS NULL OR {test})" if nullable else f"CHECK ({test})"


def _v5_status_checks() -> str:
    """v5: every status column holds a word of the vocabulary (a typo in code is refused by the
    ledger, not stored); orders.reason records why scalper sent a close order. runs, orders,
    positions and fills are rebuilt with their CHECKs, rows kept as they are."""
    return f"""
CREATE TABLE runs_v5 (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    as_of TEXT NOT NULL,
    finished_at TEXT,
    duration_s REAL,
    status TEXT NOT NULL {_one_of("status", RunStatus)},
    pid INTEGER,
    dry_run INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1)),
    summary TEXT
);
INSERT INTO runs_v5 (id, started_at, as_of, finished_at, duration_s, status, pid, dry_run, summary)
    SELECT id, started_at, as_of, finished_at, duration_s, status, pid, dry_run, summary FROM runs ORDER BY rowid;
DROP TABLE runs;
ALTER TABLE runs_v5 RENAME TO runs;

CREATE TABLE orders_v5 (
    id INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    signal_id INTEGER REFERENCES signals (id),
    account_id INTEGER NOT NULL,
    bot TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'open' {_one_of("kind", OrderKind)},
    symbol TEXT NOT NULL,
    side TEXT NOT NULL {_one_of("side", Side)},
    volume REAL NOT NULL,
    sl REAL, tp REAL,
    magic INTEGER NOT NULL,
    position_ticket INTEGER,
    status TEXT NOT NULL {_one_of("status", OrderStatus)},
    attempts INTEGER NOT NULL DEFAULT 0,
    broker_ticket INTEGER,
    fill_price REAL, filled_volume REAL,
    code INTEGER, message TEXT,
    run_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    reason TEXT {_one_of("reason", CloseCause, nullable=True)},   -- why a close order was sent
    UNIQUE (signal_id, account_id, kind)
);
INSERT INTO orders_v5 (id, client_order_id, signal_id, account_id, bot, kind, symbol, side, volume, sl, tp, magic,
                       position_ticket, status, attempts, broker_ticket, fill_price, filled_volume, code, message,
                       run_id, created_at, updated_at)
    SELECT id, client_order_id, signal_id, account_id, bot, kind, symbol, side, volume, sl, tp, magic,
           position_ticket, status, attempts, broker_ticket, fill_price, filled_volume, code, message,
           run_id, created_at, updated_at FROM orders ORDER BY id;
DROP TABLE orders;
ALTER TABLE orders_v5 RENAME TO orders;
CREATE INDEX orders_status ON orders (status);

CREATE TABLE positions_v5 (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    ticket INTEGER NOT NULL,
    order_id INTEGER REFERENCES orders (id),
    signal_id INTEGER REFERENCES signals (id),
    bot TEXT,
    strategy TEXT,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL {_one_of("side", Side)},
    volume REAL NOT NULL,
    price_open REAL NOT NULL,
    sl REAL, tp REAL, initial_sl REAL,
    magic INTEGER,
    opened_at TEXT NOT NULL,
    status TEXT NOT NULL {_one_of("status", PositionStatus)},
    closed_at TEXT, close_price REAL, close_reason TEXT,
    profit REAL,
    last_price REAL, unrealized REAL,
    adopted INTEGER NOT NULL DEFAULT 0,
    close_state TEXT {_one_of("close_state", CloseState, nullable=True)},
    UNIQUE (account_id, ticket),
    CHECK (close_state IS NULL OR status = '{PositionStatus.CLOSED.value}')
);
INSERT INTO positions_v5 (id, account_id, ticket, order_id, signal_id, bot, strategy, symbol, side, volume, price_open,
                          sl, tp, initial_sl, magic, opened_at, status, closed_at, close_price, close_reason, profit,
                          last_price, unrealized, adopted, close_state)
    SELECT id, account_id, ticket, order_id, signal_id, bot, strategy, symbol, side, volume, price_open,
           sl, tp, initial_sl, magic, opened_at, status, closed_at, close_price, close_reason, profit,
           last_price, unrealized, adopted, close_state FROM positions ORDER BY id;
DROP TABLE positions;
ALTER TABLE positions_v5 RENAME TO positions;
CREATE INDEX positions_open ON positions (status, account_id);
CREATE INDEX positions_bot_closed ON positions (bot, status, closed_at);
CREATE INDEX positions_closing ON positions (close_state, account_id);

CREATE TABLE fills_v5 (
    id INTEGER PRIMARY KEY,
    order_id INTEGER REFERENCES orders (id),
    account_id INTEGER NOT NULL,
    deal_ticket INTEGER NOT NULL,
    position_ticket INTEGER,
    side TEXT NOT NULL {_one_of("side", Side)},
    entry TEXT NOT NULL {_one_of("entry", FillEntry)},
    price REAL NOT NULL, volume REAL NOT NULL,
    profit REAL NOT NULL DEFAULT 0,
    reason TEXT,
    time TEXT NOT NULL,
    UNIQUE (account_id, deal_ticket)
);
INSERT INTO fills_v5 (id, order_id, account_id, deal_ticket, position_ticket, side, entry, price, volume, profit,
                      reason, time)
    SELECT id, order_id, account_id, deal_ticket, position_ticket, side, entry, price, volume, profit, reason, time
    FROM fills ORDER BY id;
DROP TABLE fills;
ALTER TABLE fills_v5 RENAME TO fills;
"""



def _v6_run_host() -> str:
    """v6: each run names its terminal host. A pass marks as interrupted only the runs of its own
    host left `running` (under that host's lock); on a fleet's shared ledger the other hosts'
    passes are live, not dead."""
    return """
ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT 'local';
CREATE INDEX IF NOT EXISTS runs_running ON runs (status, host);
"""


# MIGRATIONS[v] brings a ledger from version v-1 to v. Version 1 is the base.
MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _v3_notify_outbox(), 4: _v4_position_closing_state(),
                              5: _v5_status_checks(), 6: _v6_run_host()}
# Migrations that rebuild tables: run with foreign keys off (see Ledger._migrate).
REBUILDS = frozenset({5})


# Engine-specific statements appended to a migration: {engine: {version: script}}. The rewrite in
# postgres.ddl covers the scripts' types; what it cannot say (here: identities after a rebuild's
# copy) goes here, rather than forking a script.
ENGINE_DDL: dict[str, dict[int, str]] = {
    "sqlite": {},
    # v5 copies rows with their ids into rebuilt tables: move each identity past them
    "postgresql": {5: "\n".join(
        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 0) + 1, false) "
        f"FROM {table};" for table, column in (("runs", "rowid"), ("orders", "id"), ("positions", "id"),
                                               ("fills", "id")))},
}


def migration_sql(version: int, engine: str) -> str:
    """The script that brings a ledger on `engine` from version-1 to version."""
    # PostgreSQL's connection rewrites each statement's types on the way (postgres.ddl)
    return MIGRATIONS[version] + ENGINE_DDL.get(engine, {}).get(version, "")


def table_names(conn: Any) -> set[str]:
    """The ledger database's tables, on either engine."""
    if hasattr(conn, "table_names"):
        return set(conn.table_names())
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()}


def current_version(conn: Any) -> int:
    """0 for a new (empty) file or database; raises SchemaError when the record is unreadable."""
    if "meta" not in table_names(conn):
        return 0
    v = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if v is None:
        raise SchemaError("has a `meta` table without a schema_version; it is damaged or not a scalper ledger "
                          "— restore it from a backup (*.bak beside it)")
    try:
        version = int(v[0])
    except (TypeError, ValueError):
        raise SchemaError(f"records schema version {v[0]!r}, which is not a number; restore it from a backup "
                          "(*.bak beside it)") from None
    if version < 1:
        raise SchemaError(f"records schema version {version}; restore it from a backup (*.bak beside it)")
    return version
