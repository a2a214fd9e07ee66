"""The paper broker: a simulated MT5-like account that keeps its own books.

Prices come from a Feed; every rule of pricing, filling, exits and margin is the
simulated exchange's (`scalper.core.sim`), which the backtester drives too, so a
replay through this broker and a backtest agree by construction: bar prices are
mids; a buy fills at the ask, a sell at the bid; SL/TP are checked against each
closed bar when `sync()` is called, and a book whose equity has fallen to zero is
stopped out then; an order the free margin cannot hold is refused (NO_MONEY).
Return codes are MT5's.

Its books live in their OWN SQLite file (`scalper.brokers.paper_books`), apart from
the engine's ledger, as a real broker's would; every request is one transaction there.
Faults for tests and drills (`scalper.brokers.paper_faults`) make it refuse, lose an
answer, crash or be unreachable.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scalper.brokers.base import (
    DONE,
    UNCERTAIN_CODES,
    AccountInfo,
    BrokerDeal,
    BrokerOrder,
    BrokerPosition,
    OrderRequest,
    OrderResult,
    Quote,
    code_name,
)
from scalper.brokers.paper_books import BookedPosition, OrderEntry, PaperBooks, read_accounts
from scalper.brokers.paper_faults import FAULTS_ENV, die, faults_from_env
from scalper.clock import Clock
from scalper.core import sim
from scalper.core.bars import BAR_SECONDS
from scalper.core.rules import DEFAULT_BALANCE
from scalper.core.stops import stops_valid
from scalper.errors import BrokerUnavailable
from scalper.faults import crash_point
from scalper.feeds.base import Feed
from scalper.symbols import SymbolSpec
from scalper.vocab import CloseReason, FillEntry, OrderStatus, TradeRetcode
from scalper.vocab import Side as Word  # the vocabulary's side (brokers.base.Side is its protocol word)

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import FaultConfig

__all__ = ["FAULTS_ENV", "PaperBroker", "faults_from_env", "read_accounts"]

# The codes this broker answers with (MT5's, defined once in scalper.vocab).
TIMEOUT = TradeRetcode.TIMEOUT
INVALID_VOLUME = TradeRetcode.INVALID_VOLUME
INVALID_STOPS = TradeRetcode.INVALID_STOPS
NO_MONEY = TradeRetcode.NO_MONEY
NO_QUOTES = TradeRetcode.PRICE_OFF
NO_CHANGES = TradeRetcode.NO_CHANGES
POSITION_CLOSED = TradeRetcode.POSITION_CLOSED

# The server's comment for each code it answers (MT5's wording where known).
_MESSAGES: dict[int, str] = {
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


class PaperBroker:
    """One paper account, kept in a state file that other accounts and processes may share."""

    name = "paper"
    history_may_lag = False     # one state file: a fill is in its history in the same transaction

    def __init__(self, state_path: Path, account: str, feed: Feed, clock: Clock,
                 specs: Callable[[str], SymbolSpec], initial_balance: float = DEFAULT_BALANCE,
                 currency: str = "USD", faults: FaultConfig | None = None,
                 leverage: float = sim.DEFAULT_LEVERAGE):
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
        self._books = PaperBooks(self.state_path, account)

    # --- connection ---------------------------------------------------------
    def connect(self) -> None:
        if self._faults.unreachable:
            raise BrokerUnavailable("paper broker unreachable (injected fault: unreachable)")
        try:
            self._books.open(self._initial_balance, self._currency)
        except sqlite3.Error as exc:
            raise BrokerUnavailable(f"paper broker state file {self.state_path}: {exc}") from exc

    def close(self) -> None:
        self._books.close()

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
        return self._valued(self._books.positions(magic), self._clock.now())

    def deals(self, since: float, until: float | None = None, position: int | None = None) -> list[BrokerDeal]:
        return self._books.deals(since, until, position)

    def find_order(self, client_order_id: str, magic: int, since: float) -> BrokerOrder | None:
        return self._books.find_order(client_order_id, magic, since)

    # --- trading ------------------------------------------------------------
    def send_order(self, request: OrderRequest) -> OrderResult:
        """Open a position at market, faults first: a scripted code answers without executing
        (10012/10031 execute, then answer), crash_at kills the process before the fill
        transaction or right after its commit, answer_delay_s holds every answer back after
        the fill, lost_answer hides the first answer."""
        now = self._clock.now()
        crash_point("during_send")
        scripted = self._scripted_codes.popleft() if self._scripted_codes else None
        if scripted is not None and scripted not in UNCERTAIN_CODES:
            return OrderResult(scripted, _message(scripted), time=now)
        if self._faults.crash_at == "before_fill":
            die()
        with self._books.transaction():
            result = self._open(request, now)
        if result.ok:
            crash_point("after_fill")
            if self._faults.crash_at == "after_fill":
                die()
        if self._faults.answer_delay_s:
            # A late answer: the order stands at the broker, the caller hears of it only now.
            time.sleep(self._faults.answer_delay_s)
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
        with self._books.transaction():
            pos = self._books.position(ticket)
            if pos is None:
                return OrderResult(POSITION_CLOSED, _message(POSITION_CLOSED), time=now)
            quote = self._quote_at(pos.symbol, now)
            if quote is None:
                return OrderResult(NO_QUOTES, _message(NO_QUOTES), time=now)
            price = sim.close_price(pos.side, quote.bid, quote.ask)
            order, deal = self._close(pos, price, now, reason=CloseReason.EXPERT, comment=comment, magic=magic)
        return OrderResult(DONE, _message(DONE), ticket=order, position_ticket=ticket, deal_ticket=deal,
                           price=price, volume=pos.volume, time=now)

    def modify_stops(self, ticket: int, sl: float | None, tp: float | None) -> OrderResult:
        now = self._clock.now()
        with self._books.transaction():
            pos = self._books.position(ticket)
            if pos is None:
                return OrderResult(POSITION_CLOSED, _message(POSITION_CLOSED), time=now)
            spec = self._specs(pos.symbol)
            if sim.same_level(pos.sl, sl, spec.point) and sim.same_level(pos.tp, tp, spec.point):
                return OrderResult(NO_CHANGES, _message(NO_CHANGES), position_ticket=ticket, time=now)
            quote = self._quote_at(pos.symbol, now)
            if quote is None:
                return OrderResult(NO_QUOTES, _message(NO_QUOTES), time=now)
            if not stops_valid(pos.side, sl, tp, bid=quote.bid, ask=quote.ask,
                               min_distance=spec.stops_level * spec.point):
                return OrderResult(INVALID_STOPS, _message(INVALID_STOPS), position_ticket=ticket, time=now)
            self._books.set_stops(ticket, sl, tp)
        return OrderResult(DONE, _message(DONE), position_ticket=ticket, time=now)

    def sync(self) -> None:
        """Close the positions whose SL or TP a closed bar has reached since they were last
        checked; then, when the equity is zero or below, stop out the rest at the quote."""
        now = self._clock.now()
        with self._books.transaction():
            for pos in self._books.positions():
                self._check_stops(pos, now)
            equity = self._equity_and_free_margin(now)[0]   # with no position left: the balance
            if sim.stopped_out(equity):
                self._stop_out(now, equity)

    # --- internals ----------------------------------------------------------
    def _open(self, request: OrderRequest, now: float) -> OrderResult:
        """Validate in MT5's order, then fill: one order, one IN deal, one position."""
        spec = self._specs(request.symbol)
        if not _volume_valid(request.volume, spec):
            return self._reject(request, INVALID_VOLUME, now)
        quote = self._quote_at(request.symbol, now)
        if quote is None:
            return self._reject(request, NO_QUOTES, now)
        if not stops_valid(request.side, request.sl, request.tp, bid=quote.bid, ask=quote.ask,
                           min_distance=spec.stops_level * spec.point):
            return self._reject(request, INVALID_STOPS, now)
        price = sim.fill_price(request.side, quote.bid, quote.ask)
        needed = sim.margin(price, request.volume, spec.contract_size, self._leverage)
        if sim.no_money(needed, self._equity_and_free_margin(now)[1]):
            return self._reject(request, NO_MONEY, now)

        ticket = self._books.next_ticket()
        self._books.record_order(self._order(request, OrderStatus.FILLED, DONE, now, price=price,
                                             position_ticket=ticket), ticket)
        deal = self._books.record_deal(order=ticket, position=ticket, symbol=request.symbol, side=request.side,
                                       entry=FillEntry.IN, volume=request.volume, price=price, pnl=0.0,
                                       reason=CloseReason.EXPERT, magic=request.magic,
                                       comment=request.client_order_id, time=now)
        self._books.add_position(BookedPosition(
            ticket=ticket, symbol=request.symbol, side=request.side, volume=request.volume, price_open=price,
            sl=request.sl, tp=request.tp, magic=request.magic, comment=request.client_order_id, time_open=now,
            checked_until=None))
        return OrderResult(DONE, _message(DONE), ticket=ticket, position_ticket=ticket, deal_ticket=deal,
                           price=price, volume=request.volume, time=now)

    def _reject(self, request: OrderRequest, code: int, now: float) -> OrderResult:
        # Kept in history so that reconciliation can tell "refused" from "never arrived".
        self._books.record_order(self._order(request, OrderStatus.REJECTED, code, now))
        return OrderResult(code, _message(code), time=now)

    @staticmethod
    def _order(request: OrderRequest, state: OrderStatus, code: int, now: float, *, price: float | None = None,
               position_ticket: int | None = None) -> OrderEntry:
        return OrderEntry(client_order_id=request.client_order_id, magic=request.magic, symbol=request.symbol,
                          side=request.side, volume=request.volume, price=price, sl=request.sl, tp=request.tp,
                          state=state, code=code, message=_message(code), time=now,
                          position_ticket=position_ticket)

    def _check_stops(self, pos: BookedPosition, now: float) -> None:
        # The bar the position opened in counts too: its later part may reach a level.
        if pos.checked_until is None:
            start = int(pos.time_open // BAR_SECONDS) * BAR_SECONDS
        else:
            start = pos.checked_until + BAR_SECONDS
        bars = self._feed.bars_between(pos.symbol, start, now)
        hit = sim.first_exit(pos.side, pos.sl, pos.tp, bars, pos.time_open)
        if hit is not None:
            digits = self._specs(pos.symbol).digits
            self._close(pos, hit.price, hit.time, reason=hit.reason, comment=f"[{hit.reason} {hit.price:.{digits}f}]",
                        magic=pos.magic)
        elif len(bars):
            self._books.mark_checked(pos.ticket, int(bars.time[-1]))

    def _stop_out(self, now: float, equity: float) -> None:
        """Close every position at the quote, as a broker's stop-out does (deal reason "so")."""
        for pos in self._books.positions():
            quote = self._quote_at(pos.symbol, now)
            if quote is None:
                continue   # no price, no stop-out for it: valued at nothing, it holds no loss either
            price = sim.close_price(pos.side, quote.bid, quote.ask)
            self._close(pos, price, now, reason=CloseReason.SO, comment=f"[so {equity:.2f}]", magic=pos.magic)

    def _close(self, pos: BookedPosition, price: float, when: float, *, reason: str, comment: str,
               magic: int) -> tuple[int, int]:
        """Close a whole position at `price`: closing order, OUT deal, balance. → (order, deal) tickets."""
        spec = self._specs(pos.symbol)
        pnl = sim.profit(pos.side, pos.price_open, price, pos.volume, spec.contract_size)
        side = Word(pos.side).opposite.word   # the closing deal's
        order = self._books.record_order(OrderEntry(
            client_order_id=comment, magic=magic, symbol=pos.symbol, side=side, volume=pos.volume, price=price,
            sl=None, tp=None, state=OrderStatus.FILLED, code=DONE, message=_message(DONE), time=when,
            position_ticket=pos.ticket))
        deal = self._books.record_deal(order=order, position=pos.ticket, symbol=pos.symbol, side=side,
                                       entry=FillEntry.OUT, volume=pos.volume, price=price, pnl=pnl, reason=reason,
                                       magic=magic, comment=comment, time=when)
        self._books.remove_position(pos.ticket, pnl)
        return order, deal

    def _valued(self, booked: list[BookedPosition], now: float) -> list[BrokerPosition]:
        """Positions marked at the latest (mid) price (None, and no floating P&L, while the feed has no price)."""
        mids: dict[str, float | None] = {}
        out = []
        for p in booked:
            if p.symbol not in mids:
                mids[p.symbol] = self._feed.price_at(p.symbol, now)
            mid = mids[p.symbol]
            floating = 0.0 if mid is None else sim.profit(p.side, p.price_open, mid, p.volume,
                                                          self._specs(p.symbol).contract_size)
            out.append(BrokerPosition(
                ticket=p.ticket, symbol=p.symbol, side=p.side, volume=p.volume, price_open=p.price_open, sl=p.sl,
                tp=p.tp, magic=p.magic, comment=p.comment, time_open=p.time_open, price_current=mid,
                profit=floating))
        return out

    def _account_info(self, now: float) -> AccountInfo:
        balance, currency = self._books.balance()
        equity, free = self._equity_and_free_margin(now, balance)
        return AccountInfo(self.account, balance, equity, currency, margin_free=free)

    def _equity_and_free_margin(self, now: float, balance: float | None = None) -> tuple[float, float]:
        """The open positions valued at the latest price, in ticket order (as the backtest's book)."""
        if balance is None:
            balance = self._books.balance()[0]
        open_positions = self._valued(self._books.positions(), now)
        equity = sim.equity(balance, (p.profit for p in open_positions))
        held = sum(sim.margin(p.price_open, p.volume, self._specs(p.symbol).contract_size, self._leverage)
                   for p in open_positions)
        return equity, sim.free_margin(equity, held)

    def _quote_at(self, symbol: str, now: float) -> Quote | None:
        mid = self._feed.price_at(symbol, now)
        if mid is None:
            return None
        spec = self._specs(symbol)
        # The feed shows no forming bar, so the newest closed bar's spread is the latest known.
        spread = sim.spread_points(self._feed.closed_bars(symbol, 1, now), spec.spread_points)
        bid, ask = sim.quote(mid, spread, spec.point)
        return Quote(symbol, bid=bid, ask=ask, time=now)


def _message(code: int) -> str:
    return _MESSAGES.get(code, code_name(code))


def _volume_valid(volume: float, spec: SymbolSpec) -> bool:
    tolerance = 1e-9
    if not spec.volume_min - tolerance <= volume <= spec.volume_max + tolerance:
        return False
    steps = volume / spec.volume_step
    return math.isclose(steps, round(steps), rel_tol=tolerance, abs_tol=tolerance)
