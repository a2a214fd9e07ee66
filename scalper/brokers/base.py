"""The broker edge: one small protocol, one module per broker.

A `Broker` is a connection to ONE trading account. Return codes follow
MetaTrader 5's TRADE_RETCODE_* numbers for every broker (the paper broker
included), so classification, retries and reports are written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from scalper.symbols import SymbolSpec
from scalper.vocab import TradeRetcode

Side = Literal["buy", "sell"]
OrderState = Literal["filled", "rejected", "canceled", "placed"]   # a BrokerOrder's, as the broker reports it

# --- return codes (MT5 TRADE_RETCODE_*, defined in scalper.vocab) -----------
DONE = TradeRetcode.DONE
PLACED = TradeRetcode.PLACED
DONE_PARTIAL = TradeRetcode.DONE_PARTIAL

RETCODE_NAMES: dict[int, str] = {int(code): code.name for code in TradeRetcode}
# Plain ints (what brokers answer with), named from the vocabulary.
SUCCESS_CODES = frozenset(int(c) for c in (DONE, PLACED, DONE_PARTIAL))
# Safe to resend with a fresh quote: the request certainly did not execute.
TRANSIENT_CODES = frozenset(int(c) for c in (
    TradeRetcode.REQUOTE, TradeRetcode.ERROR, TradeRetcode.PRICE_CHANGED, TradeRetcode.PRICE_OFF,
    TradeRetcode.ORDER_CHANGED, TradeRetcode.TOO_MANY_REQUESTS, TradeRetcode.LOCKED, TradeRetcode.FROZEN))
# Outcome unknown: the order may have executed. Look for it before any resend.
UNCERTAIN_CODES = frozenset(int(c) for c in (TradeRetcode.TIMEOUT, TradeRetcode.CONNECTION))


def code_name(code: int | None) -> str:
    if code is None:
        return "UNKNOWN"
    return RETCODE_NAMES.get(code, str(code))


def classify(code: int) -> Literal["success", "transient", "uncertain", "final"]:
    if code in SUCCESS_CODES:
        return "success"
    if code in TRANSIENT_CODES:
        return "transient"
    if code in UNCERTAIN_CODES:
        return "uncertain"
    return "final"


# --- plain data crossing the edge -------------------------------------------
@dataclass(frozen=True)
class AccountInfo:
    account: str
    balance: float
    equity: float
    currency: str = "USD"
    margin_free: float | None = None


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid: float
    ask: float
    time: float                 # UTC epoch seconds of the quote

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True)
class OrderRequest:
    """A market order to open a position. `client_order_id` travels with it
    (MT5: the order comment) so the order can be found again after a crash."""

    client_order_id: str        # ASCII, <= 27 characters
    symbol: str
    side: Side
    volume: float
    sl: float | None = None
    tp: float | None = None
    magic: int = 0


@dataclass(frozen=True)
class OrderResult:
    code: int                   # MT5 retcode (10009 = done) or the broker's own error code
    message: str
    ticket: int | None = None   # broker order ticket
    position_ticket: int | None = None
    deal_ticket: int | None = None
    price: float | None = None
    volume: float | None = None
    time: float | None = None   # UTC epoch seconds of the fill

    @property
    def ok(self) -> bool:
        return self.code in SUCCESS_CODES

    @property
    def kind(self) -> str:
        return classify(self.code)


@dataclass(frozen=True)
class BrokerPosition:
    ticket: int
    symbol: str
    side: Side
    volume: float
    price_open: float
    sl: float | None
    tp: float | None
    magic: int
    comment: str
    time_open: float            # UTC epoch seconds
    price_current: float | None = None
    profit: float = 0.0         # floating P&L, account currency
    swap: float = 0.0


@dataclass(frozen=True)
class BrokerDeal:
    ticket: int
    order: int
    position_id: int
    symbol: str
    side: Side                  # side of the deal itself (closing a buy is a sell deal)
    entry: Literal["in", "out"]
    volume: float
    price: float
    profit: float               # realized, account currency (0 on "in" deals)
    time: float                 # UTC epoch seconds
    reason: str = "expert"      # expert | client | sl | tp | so
    magic: int = 0
    comment: str = ""
    commission: float = 0.0
    swap: float = 0.0


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker remembers it (live or in history), found by client id."""

    ticket: int
    client_order_id: str
    magic: int
    symbol: str
    side: Side
    state: OrderState
    volume: float
    price: float | None
    position_ticket: int | None
    time: float
    deals: tuple[BrokerDeal, ...] = field(default_factory=tuple)


class Broker(Protocol):
    """One trading account at one broker."""

    name: str                   # "paper", "mt5", ...
    account: str                # the account's name in bots.yaml
    # May a fill be missing from positions and history for a while? Then an order not found
    # after an interrupted send is in doubt, not proven unsent.
    history_may_lag: bool

    def connect(self) -> None:
        """Reach the broker; raise scalper.errors.BrokerUnavailable when it cannot."""

    def close(self) -> None: ...

    def account_info(self) -> AccountInfo: ...

    def symbol_spec(self, symbol: str) -> SymbolSpec: ...

    def quote(self, symbol: str) -> Quote: ...

    def send_order(self, request: OrderRequest) -> OrderResult:
        """Open a position at market. Never raises for a trade-side refusal: the
        refusal comes back as an OrderResult with its code. Raises
        BrokerUnavailable only when the broker cannot be reached at all."""

    def close_position(self, ticket: int, *, comment: str = "", magic: int = 0) -> OrderResult: ...

    def modify_stops(self, ticket: int, sl: float | None, tp: float | None) -> OrderResult: ...

    def positions(self, magic: int | None = None) -> list[BrokerPosition]: ...

    def deals(self, since: float, until: float | None = None, position: int | None = None) -> list[BrokerDeal]: ...

    def find_order(self, client_order_id: str, magic: int, since: float) -> BrokerOrder | None:
        """The order sent with this client id, from live orders, positions and history."""

    def sync(self) -> None:
        """Bring the broker's world up to the clock (paper: SL/TP crossings). MT5: no-op."""
