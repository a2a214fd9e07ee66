"""The paper broker: a simulated MT5-like account that keeps its own books.

Its state lives in its OWN SQLite file, apart from the engine's ledger, as a
real broker's would: a crash of the engine leaves the broker's truth intact,
so crash recovery and reconciliation are exercised for real. Several
processes (and several accounts) may share one state file: WAL mode, a 10 s
busy timeout and `BEGIN IMMEDIATE` around every read-modify-write, so each
request is one serialized, durable transaction.

Prices come from a Feed and fills from `scalper.core.fills`, the model the
backtester uses, so a replay through this broker and a backtest agree:
bar prices are mids; a buy fills at the ask (mid + half spread), a sell at
the bid; SL/TP are checked against each closed bar by `fills.bar_exit`
when `sync()` is called. Return codes are MT5's.

Faults for tests and drills (FaultConfig, or SCALPER_PAPER_FAULTS — see
`faults_from_env`) make it refuse, lose an answer, crash or be unreachable.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from scalper.brokers.base import (DONE, RETCODE_NAMES, UNCERTAIN_CODES, AccountInfo, BrokerDeal,
                                  BrokerOrder, BrokerPosition, OrderRequest, OrderResult, Quote, Side,
                                  code_name)
from scalper.clock import Clock
from scalper.config import FaultConfig
from scalper.core.bars import BAR_SECONDS
from scalper.core.fills import bar_exit, entry_price, profit
from scalper.core.stops import stops_valid
from scalper.errors import BrokerUnavailable
from scalper.faults import crash_point
from scalper.feeds.base import Feed
from scalper.ledger.store import synchronous_mode
from scalper.symbols import SymbolSpec
from scalper.vocab import TradeRetcode

FAULTS_ENV = "SCALPER_PAPER_FAULTS"
SCHEMA_VERSION = 1
FIRST_TICKET = 5_000_001
BUSY_TIMEOUT_S = 10.0

# The codes this broker answers with (MT5's, defined once in scalper.vocab).
TIMEOUT = TradeRetcode.TIMEOUT
INVALID_VOLUME = TradeRetcode.INVALID_VOLUME
INVALID_STOPS = TradeRetcode.INVALID_STOPS
NO_MONEY = TradeRetcode.NO_MONEY
NO_QUOTES = TradeRetcode.PRICE_OFF
NO_CHANGES = TradeRetcode.NO_CHANGES
POSITION_CLOSED = TradeRetcode.POSITION_CLOSED

# The server's comment for each code it answers (MT5's wording where known).
_MESSAGES = {
    TradeRetcode.REQUOTE: "Requote",
    TradeRetcode.REJECT: "Request rejected",
    DONE: "Request executed",
    TradeRetcode.ERROR: "Request processing error",
    TIMEOUT: "Request timed out",
    INVALID_VOLUME: "Invalid volume",
    INVALID_STOPS: "Invalid stops",
    TradeRetcode.MARKET_CLOSED: "Market closed",
    NO_MONEY: "No money",
    TradeRetcode.PRICE_CHANGED: "Prices changed",
    NO_QUOTES: "No quotes",
    TradeRetcode.TOO_MANY_REQUESTS: "Too frequent requests",
    NO_CHANGES: "No changes",
    TradeRetcode.CONNECTION: "No connection with the trade server",
    POSITION_CLOSED: "Position doesn't exist",
}

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


class PaperBroker:
    """One paper account, kept in a state file that other accounts and processes may share."""

    name = "paper"

    def __init__(self, state_path: Path, account: str, feed: Feed, clock: Clock,
                 specs: Callable[[str], SymbolSpec], initial_balance: float = 10_000.0,
                 currency: str = "USD", faults: FaultConfig | None = None, leverage: int = 100):
        self.account = account
        self.state_path = Path(state_path)
        self._feed = feed
        self._clock = clock
        self._specs = specs
        self._initial_balance = initial_balance
        self._currency = currency
        self._leverage = leverage
        self._faults = faults_from_env(faults)
        # Faults are consumed by this object, never stored: a new process starts afresh.
        self._scripted_codes = deque(self._faults.retcodes)
        self._lose_next_answer = self._faults.lost_answer
        self._conn: sqlite3.Connection | None = None

    # --- connection ---------------------------------------------------------
    def connect(self) -> None:
        if self._faults.unreachable:
            raise BrokerUnavailable("paper broker unreachable (injected fault: unreachable)")
        if self._conn is not None:
            return
        try:
            self._conn = _open_state(self.state_path)
            with self._transaction() as db:
                db.execute("INSERT OR IGNORE INTO accounts (account, balance, currency) VALUES (?, ?, ?)",
                           (self.account, self._initial_balance, self._currency))
        except sqlite3.Error as exc:
            self.close()
            raise BrokerUnavailable(f"paper broker state file {self.state_path}: {exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- reading ------------------------------------------------------------
    def account_info(self) -> AccountInfo:
        return self._account_info(self._clock.now())

    def symbol_spec(self, symbol: str) -> SymbolSpec:
        return self._specs(symbol)

    def quote(self, symbol: str) -> Quote:
        now = self._clock.now()
        quote = self._quote_at(symbol, now)
        if quote is None:
            raise BrokerUnavailable(f"paper broker: no price for {symbol} at {now:.0f} (the feed has no bars yet)")
        return quote

    def positions(self, magic: int | None = None) -> list[BrokerPosition]:
        return self._valued(self._position_rows(magic), self._clock.now())

    def deals(self, since: float, until: float | None = None, position: int | None = None) -> list[BrokerDeal]:
        sql = "SELECT * FROM deals WHERE account = ? AND time >= ?"
        args: list = [self.account, since]
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

    # --- trading ------------------------------------------------------------
    def send_order(self, request: OrderRequest) -> OrderResult:
        """Open a position at market, faults first: a scripted code answers without executing
        (10012/10031 execute, then answer), crash_at kills the process before the fill
        transaction or right after its commit, lost_answer hides the first answer."""
        now = self._clock.now()
        crash_point("during_send")
        scripted = self._scripted_codes.popleft() if self._scripted_codes else None
        if scripted is not None and scripted not in UNCERTAIN_CODES:
            return OrderResult(scripted, _message(scripted), time=now)
        if self._faults.crash_at == "before_fill":
            _die()
        with self._transaction() as db:
            result = self._open(db, request, now)
        if result.ok:
            crash_point("after_fill")
            if self._faults.crash_at == "after_fill":
                _die()
        # A lost answer: the order stands at the broker, the caller only hears "timed out".
        if scripted is not None:
            return OrderResult(scripted, _message(scripted))
        if self._lose_next_answer:
            self._lose_next_answer = False
            return OrderResult(TIMEOUT, _message(TIMEOUT))
        return result

    def close_position(self, ticket: int, *, comment: str = "", magic: int = 0) -> OrderResult:
        """Close a whole position at market. Scripted codes answer closes too (a broker refuses
        a close when the market is closed); 10012/10031 close, then answer."""
        now = self._clock.now()
        scripted = self._scripted_codes.popleft() if self._scripted_codes else None
        if scripted is not None and scripted not in UNCERTAIN_CODES:
            return OrderResult(scripted, _message(scripted), time=now)
        result = self._close_now(ticket, comment, magic, now)
        if scripted is not None and result.ok:
            return OrderResult(scripted, _message(scripted))
        return result

    def _close_now(self, ticket: int, comment: str, magic: int, now: float) -> OrderResult:
        with self._transaction() as db:
            pos = self._position_row(ticket)
            if pos is None:
                return OrderResult(POSITION_CLOSED, _message(POSITION_CLOSED), time=now)
            quote = self._quote_at(pos["symbol"], now)
            if quote is None:
                return OrderResult(NO_QUOTES, _message(NO_QUOTES), time=now)
            price = quote.bid if pos["side"] == "buy" else quote.ask
            order, deal = self._close(db, pos, price, now, reason="expert", comment=comment, magic=magic)
        return OrderResult(DONE, _message(DONE), ticket=order, position_ticket=ticket, deal_ticket=deal,
                           price=price, volume=pos["volume"], time=now)

    def modify_stops(self, ticket: int, sl: float | None, tp: float | None) -> OrderResult:
        now = self._clock.now()
        with self._transaction() as db:
            pos = self._position_row(ticket)
            if pos is None:
                return OrderResult(POSITION_CLOSED, _message(POSITION_CLOSED), time=now)
            spec = self._specs(pos["symbol"])
            if _same_level(pos["sl"], sl, spec) and _same_level(pos["tp"], tp, spec):
                return OrderResult(NO_CHANGES, _message(NO_CHANGES), position_ticket=ticket, time=now)
            quote = self._quote_at(pos["symbol"], now)
            if quote is None:
                return OrderResult(NO_QUOTES, _message(NO_QUOTES), time=now)
            if not stops_valid(pos["side"], sl, tp, bid=quote.bid, ask=quote.ask,
                               min_distance=spec.stops_level * spec.point):
                return OrderResult(INVALID_STOPS, _message(INVALID_STOPS), position_ticket=ticket, time=now)
            db.execute("UPDATE positions SET sl = ?, tp = ? WHERE ticket = ?", (sl, tp, ticket))
        return OrderResult(DONE, _message(DONE), position_ticket=ticket, time=now)

    def sync(self) -> None:
        """Close the positions whose SL or TP a closed bar has reached since they were last checked."""
        now = self._clock.now()
        with self._transaction() as db:
            for pos in self._position_rows():
                self._check_stops(db, pos, now)

    # --- internals ----------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("PaperBroker is not connected: call connect() first")
        return self._conn

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return _transaction(self._db())

    def _open(self, db: sqlite3.Connection, request: OrderRequest, now: float) -> OrderResult:
        """Validate in MT5's order, then fill: one order, one IN deal, one position."""
        spec = self._specs(request.symbol)
        if not _volume_valid(request.volume, spec):
            return self._reject(db, request, INVALID_VOLUME, now)
        quote = self._quote_at(request.symbol, now)
        if quote is None:
            return self._reject(db, request, NO_QUOTES, now)
        if not stops_valid(request.side, request.sl, request.tp, bid=quote.bid, ask=quote.ask,
                           min_distance=spec.stops_level * spec.point):
            return self._reject(db, request, INVALID_STOPS, now)
        price = quote.ask if request.side == "buy" else quote.bid
        if _margin(price, request.volume, spec, self._leverage) > self._account_info(now).margin_free:
            return self._reject(db, request, NO_MONEY, now)

        ticket = _next_ticket(db)
        self._insert_order(db, ticket=ticket, client_order_id=request.client_order_id, magic=request.magic,
                           symbol=request.symbol, side=request.side, volume=request.volume, price=price,
                           sl=request.sl, tp=request.tp, state="filled", code=DONE, time=now,
                           position_ticket=ticket)
        deal = self._insert_deal(db, order=ticket, position=ticket, symbol=request.symbol, side=request.side,
                                 entry="in", volume=request.volume, price=price, pnl=0.0, reason="expert",
                                 magic=request.magic, comment=request.client_order_id, time=now)
        db.execute(
            "INSERT INTO positions (ticket, account, symbol, side, volume, price_open, sl, tp, magic, comment,"
            " time_open) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ticket, self.account, request.symbol, request.side, request.volume, price, request.sl,
             request.tp, request.magic, request.client_order_id, now))
        return OrderResult(DONE, _message(DONE), ticket=ticket, position_ticket=ticket, deal_ticket=deal,
                           price=price, volume=request.volume, time=now)

    def _reject(self, db: sqlite3.Connection, request: OrderRequest, code: int, now: float) -> OrderResult:
        # Kept in history so that reconciliation can tell "refused" from "never arrived".
        self._insert_order(db, ticket=_next_ticket(db), client_order_id=request.client_order_id,
                           magic=request.magic, symbol=request.symbol, side=request.side,
                           volume=request.volume, price=None, sl=request.sl, tp=request.tp,
                           state="rejected", code=code, time=now, position_ticket=None)
        return OrderResult(code, _message(code), time=now)

    def _check_stops(self, db: sqlite3.Connection, pos: sqlite3.Row, now: float) -> None:
        # The bar the position opened in counts too: its later part may reach a level.
        if pos["checked_until"] is None:
            start = _minute_of(pos["time_open"])
        else:
            start = pos["checked_until"] + BAR_SECONDS
        bars = self._feed.bars_between(pos["symbol"], start, now)
        for i in range(len(bars)):
            hit = bar_exit(pos["side"], pos["sl"], pos["tp"], bars.open[i], bars.high[i], bars.low[i])
            if hit is not None:
                price, reason = float(hit[0]), hit[1]
                digits = self._specs(pos["symbol"]).digits
                # The exit time within the bar is unknown: take its start, but never before the fill.
                when = max(float(bars.time[i]), pos["time_open"])
                self._close(db, pos, price, when, reason=reason, comment=f"[{reason} {price:.{digits}f}]",
                            magic=pos["magic"])
                return
        if len(bars):
            db.execute("UPDATE positions SET checked_until = ? WHERE ticket = ?",
                       (int(bars.time[-1]), pos["ticket"]))

    def _close(self, db: sqlite3.Connection, pos: sqlite3.Row, price: float, when: float, *,
               reason: str, comment: str, magic: int) -> tuple[int, int]:
        """Close a whole position at `price`: closing order, OUT deal, balance. → (order, deal) tickets."""
        spec = self._specs(pos["symbol"])
        # Profit is booked as if the symbol's profit currency were the account's.
        pnl = profit(pos["side"], pos["price_open"], price, pos["volume"], spec.contract_size)
        side = _opposite(pos["side"])
        order = _next_ticket(db)
        self._insert_order(db, ticket=order, client_order_id=comment, magic=magic, symbol=pos["symbol"],
                           side=side, volume=pos["volume"], price=price, sl=None, tp=None, state="filled",
                           code=DONE, time=when, position_ticket=pos["ticket"])
        deal = self._insert_deal(db, order=order, position=pos["ticket"], symbol=pos["symbol"], side=side,
                                 entry="out", volume=pos["volume"], price=price, pnl=pnl, reason=reason,
                                 magic=magic, comment=comment, time=when)
        db.execute("UPDATE accounts SET balance = balance + ? WHERE account = ?", (pnl, self.account))
        db.execute("DELETE FROM positions WHERE ticket = ?", (pos["ticket"],))
        return order, deal

    def _insert_order(self, db: sqlite3.Connection, *, ticket: int, client_order_id: str, magic: int,
                      symbol: str, side: Side, volume: float, price: float | None, sl: float | None,
                      tp: float | None, state: str, code: int, time: float,
                      position_ticket: int | None) -> None:
        db.execute(
            "INSERT INTO orders (ticket, account, client_order_id, magic, symbol, side, volume, price, sl, tp,"
            " state, code, message, time, position_ticket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ticket, self.account, client_order_id, magic, symbol, side, volume, price, sl, tp, state, code,
             _message(code), time, position_ticket))

    def _insert_deal(self, db: sqlite3.Connection, *, order: int, position: int, symbol: str, side: Side,
                     entry: str, volume: float, price: float, pnl: float, reason: str, magic: int,
                     comment: str, time: float) -> int:
        ticket = _next_ticket(db)
        db.execute(
            "INSERT INTO deals (ticket, order_ticket, position_id, account, symbol, side, entry, volume, price,"
            " profit, reason, magic, comment, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ticket, order, position, self.account, symbol, side, entry, volume, price, pnl, reason, magic,
             comment, time))
        return ticket

    def _position_row(self, ticket: int) -> sqlite3.Row | None:
        return self._db().execute("SELECT * FROM positions WHERE ticket = ? AND account = ?",
                                  (ticket, self.account)).fetchone()

    def _position_rows(self, magic: int | None = None) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM positions WHERE account = ?", [self.account]
        if magic is not None:
            sql += " AND magic = ?"
            args.append(magic)
        return self._db().execute(sql + " ORDER BY ticket", args).fetchall()

    def _valued(self, rows: list[sqlite3.Row], now: float) -> list[BrokerPosition]:
        """Positions marked at the mid price (None, and no floating P&L, while the feed has no price)."""
        mids: dict[str, float | None] = {}
        out = []
        for r in rows:
            if r["symbol"] not in mids:
                mids[r["symbol"]] = self._feed.price_at(r["symbol"], now)
            mid = mids[r["symbol"]]
            floating = 0.0 if mid is None else profit(r["side"], r["price_open"], mid, r["volume"],
                                                      self._specs(r["symbol"]).contract_size)
            out.append(BrokerPosition(
                ticket=r["ticket"], symbol=r["symbol"], side=r["side"], volume=r["volume"],
                price_open=r["price_open"], sl=r["sl"], tp=r["tp"], magic=r["magic"], comment=r["comment"],
                time_open=r["time_open"], price_current=mid, profit=floating))
        return out

    def _account_info(self, now: float) -> AccountInfo:
        balance, currency = self._db().execute(
            "SELECT balance, currency FROM accounts WHERE account = ?", (self.account,)).fetchone()
        open_positions = self._valued(self._position_rows(), now)
        equity = balance + sum(p.profit for p in open_positions)
        used = sum(_margin(p.price_open, p.volume, self._specs(p.symbol), self._leverage) for p in open_positions)
        return AccountInfo(self.account, balance, equity, currency, margin_free=equity - used)

    def _quote_at(self, symbol: str, now: float) -> Quote | None:
        mid = self._feed.price_at(symbol, now)
        if mid is None:
            return None
        spec = self._specs(symbol)
        spread = self._spread_points(symbol, now, spec)
        return Quote(symbol, bid=entry_price("sell", mid, spread, spec.point),
                     ask=entry_price("buy", mid, spread, spec.point), time=now)

    def _spread_points(self, symbol: str, now: float, spec: SymbolSpec) -> float:
        # The feed shows no forming bar, so the newest closed bar's spread is the latest known.
        last = self._feed.closed_bars(symbol, 1, now)
        if len(last) and not math.isnan(last.spread[-1]):
            return float(last.spread[-1])
        return spec.spread_points


# --- faults -------------------------------------------------------------------
def faults_from_env(base: FaultConfig | None = None) -> FaultConfig:
    """`base` with the keys given in SCALPER_PAPER_FAULTS laid over it.

    Format: `key=value` pairs separated by `;`, e.g.
    `retcodes=10004,10004;lost_answer=1;crash_at=after_fill;unreachable=1`.
    Keys: retcodes (comma-separated MT5 codes, empty for none), crash_at
    (before_fill | after_fill | none), unreachable and lost_answer (1/0,
    true/false, yes/no, on/off). Raises ValueError on anything else.
    """
    base = base or FaultConfig()
    text = os.environ.get(FAULTS_ENV, "")
    if not text.strip():
        return base
    return base.model_copy(update=_parse_faults(text))


def _parse_faults(text: str) -> dict:
    def bad(why: str) -> ValueError:
        return ValueError(f"{FAULTS_ENV}={text!r}: {why} "
                          "(expected e.g. 'retcodes=10004,10004;lost_answer=1;crash_at=after_fill;unreachable=1')")

    flags = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    values: dict = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, raw = (s.strip() for s in part.partition("="))
        if not sep:
            raise bad(f"{part!r} is not key=value")
        if key in values:
            raise bad(f"{key} is given twice")
        if key == "retcodes":
            codes = [c.strip() for c in raw.split(",")] if raw else []
            if not all(c.isdigit() and int(c) in RETCODE_NAMES for c in codes):
                raise bad(f"retcodes must be MT5 trade return codes (10004 … 10046), got {raw!r}")
            values[key] = [int(c) for c in codes]
        elif key == "crash_at":
            if raw.lower() not in ("before_fill", "after_fill", "none", ""):
                raise bad(f"crash_at must be before_fill, after_fill or none, got {raw!r}")
            values[key] = raw.lower() if raw.lower() in ("before_fill", "after_fill") else None
        elif key in ("unreachable", "lost_answer"):
            if raw.lower() not in flags:
                raise bad(f"{key} must be 1 or 0, got {raw!r}")
            values[key] = flags[raw.lower()]
        else:
            raise bad(f"unknown key {key!r}; known: retcodes, crash_at, unreachable, lost_answer")
    return values


def _die() -> None:
    """Die at once, as a power cut would: no cleanup, no rollback, no answer."""
    os.kill(os.getpid(), signal.SIGKILL)


# --- helpers ------------------------------------------------------------------
def _open_state(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The file holds an account's books: owner-only. SQLite creates the -wal and
    # -shm files lazily, so the umask stays tight while the first access happens.
    old_umask = os.umask(0o077)
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            _use_wal(db)
            # a committed fill must survive a power cut: FULL, unless a test lowered it
            db.execute(f"PRAGMA synchronous = {synchronous_mode()}")
            with _transaction(db):                     # two processes may create the file at once
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    for statement in _SCHEMA.split(";\n"):
                        db.execute(statement)
                elif version != SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(f"schema version {version}, this scalper knows {SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
    finally:
        os.umask(old_umask)
    return db


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
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    # IMMEDIATE takes the write lock up front: what we read (balance, positions)
    # cannot change under us before we write, whichever process we race.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _next_ticket(db: sqlite3.Connection) -> int:
    return db.execute("UPDATE tickets SET last = last + 1 RETURNING last").fetchone()[0]


def _message(code: int) -> str:
    return _MESSAGES.get(code, code_name(code))


def _opposite(side: Side) -> Side:
    return "sell" if side == "buy" else "buy"


def _minute_of(ts: float) -> int:
    return int(ts // BAR_SECONDS) * BAR_SECONDS


def _volume_valid(volume: float, spec: SymbolSpec) -> bool:
    tolerance = 1e-9
    if not spec.volume_min - tolerance <= volume <= spec.volume_max + tolerance:
        return False
    steps = volume / spec.volume_step
    return math.isclose(steps, round(steps), rel_tol=tolerance, abs_tol=tolerance)


def _same_level(current: float | None, new: float | None, spec: SymbolSpec) -> bool:
    if current is None or new is None:
        return current is None and new is None
    return abs(current - new) < spec.point / 2


def _margin(price: float, volume: float, spec: SymbolSpec, leverage: int) -> float:
    return price * volume * spec.contract_size / leverage


def _deal(r: sqlite3.Row) -> BrokerDeal:
    return BrokerDeal(ticket=r["ticket"], order=r["order_ticket"], position_id=r["position_id"],
                      symbol=r["symbol"], side=r["side"], entry=r["entry"], volume=r["volume"],
                      price=r["price"], profit=r["profit"], time=r["time"], reason=r["reason"],
                      magic=r["magic"], comment=r["comment"])


def read_accounts(state_path: Path) -> dict[str, tuple[float, str]]:
    """account → (balance, currency) from a paper state file, read-only (for `scalper status`);
    {} when the file does not exist yet or cannot be read."""
    if not Path(state_path).exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{Path(state_path).resolve()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            return {str(a): (b, c) for a, b, c in db.execute("SELECT account, balance, currency FROM accounts")}
        finally:
            db.close()
    except sqlite3.Error:
        return {}
