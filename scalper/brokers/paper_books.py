"""The paper broker's books: its own SQLite state file, apart from the engine's ledger, as a
real broker's server would keep them. A crash of the engine leaves the broker's truth intact,
so crash recovery and reconciliation are exercised for real.

Several processes (and several accounts) may share one state file: the shared SQLite
plumbing (`scalper.ledger.sqlite`: WAL, busy timeout, owner-only files) and one `BEGIN
IMMEDIATE` transaction around every request, so each request is one serialized, durable
unit. This module is storage only: what to fill, at what price, is the broker's
(`scalper.brokers.paper`, which drives the simulated exchange `scalper.core.sim`).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalper.brokers.base import BrokerDeal, BrokerOrder, BrokerPosition, Side
from scalper.ledger import sqlite
from scalper.vocab import FillEntry, OrderStatus

SCHEMA_VERSION = 1
FIRST_TICKET = 5_000_001

_SCHEMA = f"""
-- one ticket sequence for orders and deals, as on an MT5 server
CREATE TABLE tickets (last INTEGER NOT NULL);
INSERT INTO tickets VALUES ({FIRST_TICKET - 1});

CREATE TABLE accounts (
    account  TEXT PRIMARY KEY,
    balance  REAL NOT NULL,
    currency TEXT NOT NULL
);

CREATE TABLE orders (
    ticket          INTEGER PRIMARY KEY,
    account         TEXT NOT NULL REFERENCES accounts (account),
    client_order_id TEXT NOT NULL,              -- the order comment, as in MT5
    magic           INTEGER NOT NULL,
    symbol          TEXT NOT NULL,
    side            TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    volume          REAL NOT NULL,
    price           REAL,                       -- fill price, NULL when rejected
    sl              REAL,
    tp              REAL,
    state           TEXT NOT NULL CHECK (state IN ('filled', 'rejected')),
    code            INTEGER NOT NULL,
    message         TEXT NOT NULL,
    time            REAL NOT NULL,
    position_ticket INTEGER
);
CREATE INDEX orders_by_client_id ON orders (account, client_order_id, magic);

CREATE TABLE positions (                        -- open positions only
    ticket        INTEGER PRIMARY KEY,          -- = ticket of the opening order
    account       TEXT NOT NULL REFERENCES accounts (account),
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    volume        REAL NOT NULL,
    price_open    REAL NOT NULL,
    sl            REAL,
    tp            REAL,
    magic         INTEGER NOT NULL,
    comment       TEXT NOT NULL,
    time_open     REAL NOT NULL,
    checked_until INTEGER                       -- open time of the last bar checked for SL/TP
);
CREATE INDEX positions_by_account ON positions (account);

CREATE TABLE deals (
    ticket       INTEGER PRIMARY KEY,
    order_ticket INTEGER NOT NULL,
    position_id  INTEGER NOT NULL,
    account      TEXT NOT NULL REFERENCES accounts (account),
    symbol       TEXT NOT NULL,
    side         TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    entry        TEXT NOT NULL CHECK (entry IN ('in', 'out')),
    volume       REAL NOT NULL,
    price        REAL NOT NULL,
    profit       REAL NOT NULL,
    reason       TEXT NOT NULL,
    magic        INTEGER NOT NULL,
    comment      TEXT NOT NULL,
    time         REAL NOT NULL
);
CREATE INDEX deals_by_time ON deals (account, time);
CREATE INDEX deals_by_order ON deals (order_ticket);

PRAGMA user_version = {SCHEMA_VERSION}
"""


@dataclass(frozen=True)
class BookedPosition(BrokerPosition):
    """An open position as the books hold it: the broker's fields (valued at the latest price only
    when reported), and how far its bars were checked for SL/TP."""

    checked_until: int | None = None    # open time of the last bar checked for SL/TP (None: none yet)


@dataclass(frozen=True, slots=True)
class OrderEntry:
    """An order as the books record it (a fill, a refusal, or a closing order)."""

    client_order_id: str
    magic: int
    symbol: str
    side: Side
    volume: float
    price: float | None
    sl: float | None
    tp: float | None
    state: OrderStatus           # FILLED | REJECTED
    code: int
    message: str
    time: float
    position_ticket: int | None = None


class PaperBooks:
    """One account's view of a state file that other accounts and processes may share."""

    def __init__(self, path: Path, account: str):
        self.path = Path(path)
        self.account = account
        self._conn: sqlite3.Connection | None = None

    # --- connection ---------------------------------------------------------
    def open(self, initial_balance: float, currency: str) -> None:
        """Open (creating the file, its schema and the account when new). Raises sqlite3.Error."""
        if self._conn is not None:
            return
        self._conn = open_state(self.path)
        try:
            with self.transaction() as db:
                db.execute("INSERT OR IGNORE INTO accounts (account, balance, currency) VALUES (?, ?, ?)",
                           (self.account, initial_balance, currency))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One request: every write of it, or none (see `scalper.ledger.sqlite.transaction`)."""
        return sqlite.transaction(self._db())

    # --- reading ------------------------------------------------------------
    def balance(self) -> tuple[float, str]:
        balance, currency = self._db().execute(
            "SELECT balance, currency FROM accounts WHERE account = ?", (self.account,)).fetchone()
        return balance, currency

    def position(self, ticket: int) -> BookedPosition | None:
        row = self._db().execute("SELECT * FROM positions WHERE ticket = ? AND account = ?",
                                 (ticket, self.account)).fetchone()
        return None if row is None else _position(row)

    def positions(self, magic: int | None = None) -> list[BookedPosition]:
        sql = "SELECT * FROM positions WHERE account = ?"
        args: list[Any] = [self.account]
        if magic is not None:
            sql += " AND magic = ?"
            args.append(magic)
        return [_position(r) for r in self._db().execute(sql + " ORDER BY ticket", args)]

    def deals(self, since: float, until: float | None = None, position: int | None = None) -> list[BrokerDeal]:
        sql = "SELECT * FROM deals WHERE account = ? AND time >= ?"
        args: list[Any] = [self.account, since]
        if until is not None:
            sql += " AND time <= ?"
            args.append(until)
        if position is not None:
            sql += " AND position_id = ?"
            args.append(position)
        return [_deal(r) for r in self._db().execute(sql + " ORDER BY time, ticket", args)]

    def find_order(self, client_order_id: str, magic: int, since: float) -> BrokerOrder | None:
        db = self._db()
        # A refused attempt and a later fill may share the client id: the fill is the answer.
        row = db.execute(
            "SELECT * FROM orders WHERE account = ? AND client_order_id = ? AND magic = ? AND time >= ?"
            " ORDER BY state = 'filled' DESC, ticket DESC LIMIT 1",
            (self.account, client_order_id, magic, since)).fetchone()
        if row is None:
            return None
        deals = db.execute("SELECT * FROM deals WHERE order_ticket = ? ORDER BY ticket", (row["ticket"],))
        return BrokerOrder(
            ticket=row["ticket"], client_order_id=row["client_order_id"], magic=row["magic"],
            symbol=row["symbol"], side=row["side"], state=row["state"], volume=row["volume"],
            price=row["price"], position_ticket=row["position_ticket"], time=row["time"],
            deals=tuple(_deal(d) for d in deals))

    # --- writing (inside a transaction) ---------------------------------------------
    def record_order(self, order: OrderEntry, ticket: int | None = None) -> int:
        """Book an order (under `ticket`, else the next one) → its ticket."""
        ticket = self.next_ticket() if ticket is None else ticket
        self._db().execute(
            "INSERT INTO orders (ticket, account, client_order_id, magic, symbol, side, volume, price, sl, tp,"
            " state, code, message, time, position_ticket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ticket, self.account, order.client_order_id, order.magic, order.symbol, order.side, order.volume,
             order.price, order.sl, order.tp, order.state, order.code, order.message, order.time,
             order.position_ticket))
        return ticket

    def record_deal(self, *, order: int, position: int, symbol: str, side: Side, entry: FillEntry, volume: float,
                    price: float, pnl: float, reason: str, magic: int, comment: str, time: float) -> int:
        """Book a deal → its ticket."""
        ticket = self.next_ticket()
        self._db().execute(
            "INSERT INTO deals (ticket, order_ticket, position_id, account, symbol, side, entry, volume, price,"
            " profit, reason, magic, comment, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ticket, order, position, self.account, symbol, side, entry, volume, price, pnl, reason, magic,
             comment, time))
        return ticket

    def add_position(self, position: BookedPosition) -> None:
        p = position
        self._db().execute(
            "INSERT INTO positions (ticket, account, symbol, side, volume, price_open, sl, tp, magic, comment,"
            " time_open) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (p.ticket, self.account, p.symbol, p.side, p.volume, p.price_open, p.sl, p.tp, p.magic, p.comment,
             p.time_open))

    def remove_position(self, ticket: int, pnl: float) -> None:
        """The position is closed: its P&L goes to the balance."""
        db = self._db()
        db.execute("UPDATE accounts SET balance = balance + ? WHERE account = ?", (pnl, self.account))
        db.execute("DELETE FROM positions WHERE ticket = ?", (ticket,))

    def set_stops(self, ticket: int, sl: float | None, tp: float | None) -> None:
        self._db().execute("UPDATE positions SET sl = ?, tp = ? WHERE ticket = ?", (sl, tp, ticket))

    def mark_checked(self, ticket: int, until: int) -> None:
        self._db().execute("UPDATE positions SET checked_until = ? WHERE ticket = ?", (until, ticket))

    def next_ticket(self) -> int:
        return self._db().execute("UPDATE tickets SET last = last + 1 RETURNING last").fetchone()[0]

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("PaperBroker is not connected: call connect() first")
        return self._conn


def open_state(path: Path) -> sqlite3.Connection:
    """A connection to a state file, created with its schema when new (two processes may
    create it at once); a file of another schema version raises sqlite3.DatabaseError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # SQLite creates the -wal and -shm files lazily: the umask stays tight while the first access happens.
    with sqlite.owner_only():
        db = sqlite.connect(path)
        try:
            db.row_factory = sqlite3.Row
            with sqlite.transaction(db):
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    for statement in _SCHEMA.split(";\n"):
                        db.execute(statement)
                elif version != SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(f"schema version {version}, this scalper knows {SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
    return db


def read_accounts(state_path: Path) -> dict[str, tuple[float, str]]:
    """account → (balance, currency) from a paper state file, read-only (for `scalper status`);
    {} when the file does not exist yet or cannot be read."""
    if not Path(state_path).exists():
        return {}
    try:
        db = sqlite.connect_readonly(state_path)
        try:
            return {str(a): (b, c) for a, b, c in db.execute("SELECT account, balance, currency FROM accounts")}
        finally:
            db.close()
    except sqlite3.Error:
        return {}


def _position(r: sqlite3.Row) -> BookedPosition:
    return BookedPosition(ticket=r["ticket"], symbol=r["symbol"], side=r["side"], volume=r["volume"],
                          price_open=r["price_open"], sl=r["sl"], tp=r["tp"], magic=r["magic"],
                          comment=r["comment"], time_open=r["time_open"], checked_until=r["checked_until"])


def _deal(r: sqlite3.Row) -> BrokerDeal:
    return BrokerDeal(ticket=r["ticket"], order=r["order_ticket"], position_id=r["position_id"],
                      symbol=r["symbol"], side=r["side"], entry=r["entry"], volume=r["volume"],
                      price=r["price"], profit=r["profit"], time=r["time"], reason=r["reason"],
                      magic=r["magic"], comment=r["comment"])
