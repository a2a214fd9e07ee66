"""An in-process fake of the `MetaTrader5` package and the terminal behind it.

The contract is docs/mt5-api.md (the shared docs); §12 lists what this fake
reproduces. It is a module-like object: the package's function names, argument
names and positions, constants with the package's values, named tuples with
their fields in the documented order, tuples (never lists) from getters, and
numpy structured arrays of the exact dtype from `copy_rates_*`.

    clock = FixedClock(ts("2025-05-20 10:00:00"))        # anything with .now() -> UTC seconds
    mt5 = FakeMT5(clock, server_offset_h=3)
    mt5.add_account(FakeAccount(login=7, password="pw"))
    mt5.add_symbol(xauusd("XAUUSDm"))
    mt5.set_quote("XAUUSDm", 2345.10, 2345.30)            # a tick, at the clock's instant

The terminal keeps the broker server's wall-clock time (UTC + the offset) in
every time field, as real terminals do. Accounts are hedging accounts.
TerminalInfo, AccountInfo and SymbolInfo carry only the fields the contract
names (in the package's relative order): read them by name. What the fake
deliberately does not model raises NotImplementedError (timeframes other than
M1, MODIFY and CLOSE_BY requests); pending orders are kept but never trigger.

Faults, all switchable by tests: `script_retcodes`, `lose_next_answer`,
`history_lag`, `comment_rule`, `server_offset_h`, symbol suffixes (name a
symbol `XAUUSDm`), `login()` by another program, `initialize_fault`,
`algo_trading = False`, `tradeapi_disabled`, and calls before `initialize()`.
"""

from __future__ import annotations

import fnmatch
import functools
from collections import deque, namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

RATES_DTYPE = np.dtype([("time", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),
                        ("tick_volume", "<u8"), ("spread", "<i4"), ("real_volume", "<u8")])

TerminalInfo = namedtuple("TerminalInfo", "connected trade_allowed tradeapi_disabled build maxbars ping_last "
                                          "company name path")
AccountInfo = namedtuple("AccountInfo", "login trade_mode leverage limit_orders trade_allowed trade_expert "
                                        "margin_mode currency_digits fifo_close balance credit profit equity "
                                        "margin margin_free margin_level name server currency company")
SymbolInfo = namedtuple("SymbolInfo", "select visible time digits spread trade_mode trade_stops_level "
                                      "trade_freeze_level trade_exemode expiration_mode filling_mode order_mode "
                                      "bid ask point trade_tick_value trade_tick_size trade_contract_size "
                                      "volume_min volume_max volume_step volume_limit currency_profit name")
Tick = namedtuple("Tick", "time bid ask last volume time_msc flags volume_real")
TradePosition = namedtuple("TradePosition", "ticket time time_msc time_update time_update_msc type magic "
                                            "identifier reason volume price_open sl tp price_current swap "
                                            "profit symbol comment external_id")
TradeDeal = namedtuple("TradeDeal", "ticket order time time_msc type entry magic position_id reason volume "
                                    "price commission swap profit fee symbol comment external_id")
TradeOrder = namedtuple("TradeOrder", "ticket time_setup time_setup_msc time_done time_done_msc "
                                      "time_expiration type type_time type_filling state magic position_id "
                                      "position_by_id reason volume_initial volume_current price_open sl tp "
                                      "price_current price_stoplimit symbol comment external_id")
TradeRequest = namedtuple("TradeRequest", "action magic order symbol volume price stoplimit sl tp deviation "
                                          "type type_filling type_time expiration comment position position_by")
OrderSendResult = namedtuple("OrderSendResult", "retcode deal order volume price bid ask comment request_id "
                                                "retcode_external request")
OrderCheckResult = namedtuple("OrderCheckResult", "retcode balance equity profit margin margin_free "
                                                  "margin_level comment request")

# How the binding parses each request key (docs §7.1): integers, floats, strings.
_INT_KEYS = {"action", "type", "type_filling", "type_time", "expiration"}
_UNSIGNED_KEYS = {"magic", "deviation", "order", "position", "position_by"}
_FLOAT_KEYS = {"volume", "price", "stoplimit", "sl", "tp"}
_STR_KEYS = {"symbol", "comment"}
_MAX_STRING_UNITS = 29          # UTF-16 code units; 30 or more is refused

_ERROR_TEXT = {
    1: "Success",
    -1: "Terminal: Call failed",
    -2: "Terminal: Invalid params",
    -4: "Terminal: Not found",
    -6: "Terminal: Authorization failed",
    -8: "Auto-Trading using Python API disabled in Terminal",
    -10003: "IPC initialize failed, MetaTrader 5 x64 not found",
    -10004: "No IPC connection",
    -10005: "IPC timeout",
}

# The server's comment for each retcode it answers.
_RETCODE_TEXT = {
    10004: "Requote", 10006: "Request rejected", 10008: "Order placed", 10009: "Request executed",
    10011: "Request processing error", 10012: "Request canceled by timeout", 10013: "Invalid request",
    10014: "Invalid volume", 10015: "Invalid price", 10016: "Invalid stops", 10017: "Trade disabled",
    10018: "Market closed", 10019: "No money", 10020: "Prices changed", 10021: "No prices",
    10022: "Invalid expiration", 10024: "Too many requests", 10025: "No changes",
    10026: "AutoTrading disabled by server", 10027: "AutoTrading disabled by client",
    10028: "Request locked for processing", 10029: "Order or position frozen",
    10030: "Unsupported filling mode", 10031: "No connection with the trade server",
    10036: "Position already closed", 10038: "Invalid close volume",
    10042: "Only long positions are allowed", 10043: "Only short positions are allowed",
    10044: "Only position closing is allowed",
}

FIRST_ORDER_TICKET = 50_000_001   # orders and deals count apart, so mixing them up shows in tests
FIRST_DEAL_TICKET = 30_000_001
TERMINAL_PATH = r"C:\Program Files\MetaTrader 5\terminal64.exe"


@dataclass
class FakeSymbol:
    """One symbol as the server defines it, plus its live quote and M1 history (server time)."""

    name: str
    digits: int
    contract_size: float
    volume_min: float = 0.01
    volume_max: float = 100.0
    volume_step: float = 0.01
    stops_level: int = 0
    freeze_level: int = 0
    tick_size: float | None = None          # None: one point
    filling_mode: int = 1 | 2               # FOK and IOC
    trade_mode: int = 4                     # SYMBOL_TRADE_MODE_FULL
    exemode: int = 2                        # SYMBOL_TRADE_EXECUTION_MARKET
    currency_profit: str = "USD"
    spread_points: int = 20                 # for bars loaded without a spread column
    session_open: bool = True
    select: bool = False                    # in Market Watch
    bid: float = 0.0
    ask: float = 0.0
    tick_msc: int = 0                       # time of the last quote, server ms
    rates: np.ndarray = field(default_factory=lambda: np.zeros(0, RATES_DTYPE))

    @property
    def point(self) -> float:
        return 10.0 ** -self.digits

    @property
    def tick(self) -> float:
        return self.tick_size or self.point

    def points(self, price: float) -> int:
        return round(price / self.point)


def xauusd(name: str = "XAUUSD", **changes) -> FakeSymbol:
    return replace(FakeSymbol(name, digits=2, contract_size=100.0), **changes)


def eurusd(name: str = "EURUSD", **changes) -> FakeSymbol:
    return replace(FakeSymbol(name, digits=5, contract_size=100_000.0, spread_points=12), **changes)


def btcusd(name: str = "BTCUSD", **changes) -> FakeSymbol:
    return replace(FakeSymbol(name, digits=2, contract_size=1.0, spread_points=1500, stops_level=100), **changes)


@dataclass
class _Position:
    ticket: int
    time_msc: int
    type: int
    magic: int
    volume: float
    price_open: float
    sl: float
    tp: float
    symbol: str
    comment: str
    time_update_msc: int = 0


@dataclass
class FakeAccount:
    login: int
    password: str
    server: str = "Fake-Demo"
    balance: float = 10_000.0
    currency: str = "USD"
    leverage: int = 100
    trade_allowed: bool = True              # False for an investor (read-only) login
    trade_expert: bool = True               # False: the broker forbids EAs (10026)
    commission_per_lot: float = 0.0         # charged on every deal, as a negative commission
    name: str = "Test Trader"
    company: str = "Fake Broker Ltd"
    positions: dict[int, _Position] = field(default_factory=dict)
    orders: dict[int, TradeOrder] = field(default_factory=dict)       # pending orders
    # History records with the history-call count from which they are visible (history lag).
    history_orders: list[tuple[int, TradeOrder]] = field(default_factory=list)
    history_deals: list[tuple[int, TradeDeal]] = field(default_factory=list)


class _Refused(Exception):
    """A server-side rule refused the request with `code`."""

    def __init__(self, code: int):
        self.code = code


def _needs_connection(failure=None):
    """Before initialize() and after shutdown() the call fails with (-10004, 'No IPC connection')."""
    def wrap(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            if not self._connected:
                return self._fail(-10004, failure)
            return method(self, *args, **kwargs)
        return call
    return wrap


class FakeMT5:
    # --- constants: the package's values (docs §4, §5, §7, §9, §11) -------------------------
    TIMEFRAME_M1, TIMEFRAME_M5, TIMEFRAME_M15, TIMEFRAME_M30 = 1, 5, 15, 30
    TIMEFRAME_H1, TIMEFRAME_H4, TIMEFRAME_D1, TIMEFRAME_W1, TIMEFRAME_MN1 = 16385, 16388, 16408, 32769, 49153
    TRADE_ACTION_DEAL, TRADE_ACTION_PENDING, TRADE_ACTION_SLTP = 1, 5, 6
    TRADE_ACTION_MODIFY, TRADE_ACTION_REMOVE, TRADE_ACTION_CLOSE_BY = 7, 8, 10
    ORDER_TYPE_BUY, ORDER_TYPE_SELL, ORDER_TYPE_BUY_LIMIT, ORDER_TYPE_SELL_LIMIT = 0, 1, 2, 3
    ORDER_TYPE_BUY_STOP, ORDER_TYPE_SELL_STOP, ORDER_TYPE_BUY_STOP_LIMIT, ORDER_TYPE_SELL_STOP_LIMIT = 4, 5, 6, 7
    ORDER_TYPE_CLOSE_BY = 8
    ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN, ORDER_FILLING_BOC = 0, 1, 2, 3
    ORDER_TIME_GTC, ORDER_TIME_DAY, ORDER_TIME_SPECIFIED, ORDER_TIME_SPECIFIED_DAY = 0, 1, 2, 3
    ORDER_STATE_STARTED, ORDER_STATE_PLACED, ORDER_STATE_CANCELED, ORDER_STATE_PARTIAL = 0, 1, 2, 3
    ORDER_STATE_FILLED, ORDER_STATE_REJECTED, ORDER_STATE_EXPIRED = 4, 5, 6
    ORDER_REASON_CLIENT, ORDER_REASON_MOBILE, ORDER_REASON_WEB, ORDER_REASON_EXPERT = 0, 1, 2, 3
    ORDER_REASON_SL, ORDER_REASON_TP, ORDER_REASON_SO = 4, 5, 6
    POSITION_TYPE_BUY, POSITION_TYPE_SELL = 0, 1
    POSITION_REASON_CLIENT, POSITION_REASON_MOBILE, POSITION_REASON_WEB, POSITION_REASON_EXPERT = 0, 1, 2, 3
    DEAL_TYPE_BUY, DEAL_TYPE_SELL, DEAL_TYPE_BALANCE = 0, 1, 2
    DEAL_ENTRY_IN, DEAL_ENTRY_OUT, DEAL_ENTRY_INOUT, DEAL_ENTRY_OUT_BY = 0, 1, 2, 3
    DEAL_REASON_CLIENT, DEAL_REASON_MOBILE, DEAL_REASON_WEB, DEAL_REASON_EXPERT = 0, 1, 2, 3
    DEAL_REASON_SL, DEAL_REASON_TP, DEAL_REASON_SO = 4, 5, 6
    SYMBOL_TRADE_MODE_DISABLED, SYMBOL_TRADE_MODE_LONGONLY, SYMBOL_TRADE_MODE_SHORTONLY = 0, 1, 2
    SYMBOL_TRADE_MODE_CLOSEONLY, SYMBOL_TRADE_MODE_FULL = 3, 4
    SYMBOL_TRADE_EXECUTION_REQUEST, SYMBOL_TRADE_EXECUTION_INSTANT = 0, 1
    SYMBOL_TRADE_EXECUTION_MARKET, SYMBOL_TRADE_EXECUTION_EXCHANGE = 2, 3
    ACCOUNT_TRADE_MODE_DEMO, ACCOUNT_TRADE_MODE_CONTEST, ACCOUNT_TRADE_MODE_REAL = 0, 1, 2
    ACCOUNT_MARGIN_MODE_RETAIL_NETTING, ACCOUNT_MARGIN_MODE_EXCHANGE, ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 0, 1, 2
    COPY_TICKS_ALL = -1
    TRADE_RETCODE_REQUOTE, TRADE_RETCODE_REJECT, TRADE_RETCODE_CANCEL = 10004, 10006, 10007
    TRADE_RETCODE_PLACED, TRADE_RETCODE_DONE, TRADE_RETCODE_DONE_PARTIAL = 10008, 10009, 10010
    TRADE_RETCODE_ERROR, TRADE_RETCODE_TIMEOUT, TRADE_RETCODE_INVALID = 10011, 10012, 10013
    TRADE_RETCODE_INVALID_VOLUME, TRADE_RETCODE_INVALID_PRICE, TRADE_RETCODE_INVALID_STOPS = 10014, 10015, 10016
    TRADE_RETCODE_TRADE_DISABLED, TRADE_RETCODE_MARKET_CLOSED, TRADE_RETCODE_NO_MONEY = 10017, 10018, 10019
    TRADE_RETCODE_PRICE_CHANGED, TRADE_RETCODE_PRICE_OFF, TRADE_RETCODE_INVALID_EXPIRATION = 10020, 10021, 10022
    TRADE_RETCODE_ORDER_CHANGED, TRADE_RETCODE_TOO_MANY_REQUESTS, TRADE_RETCODE_NO_CHANGES = 10023, 10024, 10025
    TRADE_RETCODE_SERVER_DISABLES_AT, TRADE_RETCODE_CLIENT_DISABLES_AT, TRADE_RETCODE_LOCKED = 10026, 10027, 10028
    TRADE_RETCODE_FROZEN, TRADE_RETCODE_INVALID_FILL, TRADE_RETCODE_CONNECTION = 10029, 10030, 10031
    TRADE_RETCODE_ONLY_REAL, TRADE_RETCODE_LIMIT_ORDERS, TRADE_RETCODE_LIMIT_VOLUME = 10032, 10033, 10034
    TRADE_RETCODE_INVALID_ORDER, TRADE_RETCODE_POSITION_CLOSED = 10035, 10036
    TRADE_RETCODE_INVALID_CLOSE_VOLUME, TRADE_RETCODE_CLOSE_ORDER_EXIST = 10038, 10039
    TRADE_RETCODE_LIMIT_POSITIONS, TRADE_RETCODE_REJECT_CANCEL = 10040, 10041
    TRADE_RETCODE_LONG_ONLY, TRADE_RETCODE_SHORT_ONLY = 10042, 10043
    TRADE_RETCODE_CLOSE_ONLY, TRADE_RETCODE_FIFO_CLOSE, TRADE_RETCODE_HEDGE_PROHIBITED = 10044, 10045, 10046
    RES_S_OK, RES_E_FAIL, RES_E_INVALID_PARAMS, RES_E_NO_MEMORY, RES_E_NOT_FOUND = 1, -1, -2, -3, -4
    RES_E_INVALID_VERSION, RES_E_AUTH_FAILED, RES_E_UNSUPPORTED, RES_E_AUTO_TRADING_DISABLED = -5, -6, -7, -8
    RES_E_INTERNAL_FAIL, RES_E_INTERNAL_FAIL_SEND, RES_E_INTERNAL_FAIL_RECEIVE = -10000, -10001, -10002
    RES_E_INTERNAL_FAIL_INIT, RES_E_INTERNAL_FAIL_CONNECT, RES_E_INTERNAL_FAIL_TIMEOUT = -10003, -10004, -10005

    def __init__(self, clock, *, server_offset_h: float = 0.0):
        self.clock = clock
        self.server_offset_h = server_offset_h
        self.symbols: dict[str, FakeSymbol] = {}
        self.accounts: dict[int, FakeAccount] = {}
        self.account: FakeAccount | None = None  # the account the terminal is logged in to
        # terminal switches and faults
        self.algo_trading = True                 # the "Algo Trading" button
        self.tradeapi_disabled = False           # "disable algorithmic trading via external Python API"
        self.maxbars = 100_000
        self.initialize_fault: int | None = None  # -10003 / -10005 / -6: initialize() fails with it
        self.history_lag = 0                     # new history records hidden from the next K history calls
        self.comment_rule: Callable[[str], str] | None = None  # how the server stores request comments
        self._scripted: deque[int] = deque()
        self._lost_answers: deque[int | None] = deque()
        # state
        self._connected = False
        self._error = (1, _ERROR_TEXT[1])
        self._next_order = FIRST_ORDER_TICKET
        self._next_deal = FIRST_DEAL_TICKET
        self._request_id = 0
        self._history_calls = 0
        self.requests: list[dict] = []           # every dict given to order_send, as given

    # --- test controls ---------------------------------------------------------------------------
    def add_account(self, account: FakeAccount) -> FakeAccount:
        self.accounts[account.login] = account
        if self.account is None:
            self.account = account
        return account

    def add_symbol(self, symbol: FakeSymbol) -> FakeSymbol:
        self.symbols[symbol.name] = symbol
        return symbol

    def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        """A tick at the clock's instant: updates the quote, builds the minute's bar from the bid,
        revalues positions and closes those whose SL or TP the price crossed."""
        s = self.symbols[symbol]
        s.bid, s.ask, s.tick_msc = float(bid), float(ask), self._server_msc()
        self._tick_into_bar(s)
        for account in self.accounts.values():
            for pos in [p for p in account.positions.values() if p.symbol == symbol]:
                self._trigger_stops(account, s, pos)

    def load_bars(self, symbol: str, bars) -> None:
        """M1 history from a scalper Bars (times read as UTC), stored in server time."""
        s = self.symbols[symbol]
        rates = np.zeros(len(bars), RATES_DTYPE)
        rates["time"] = bars.time + self._offset_s()
        for name in ("open", "high", "low", "close"):
            rates[name] = getattr(bars, name)
        rates["tick_volume"] = np.nan_to_num(bars.volume).astype(np.uint64)
        rates["spread"] = np.where(np.isnan(bars.spread), s.spread_points, bars.spread).astype(np.int32)
        s.rates = rates

    def script_retcodes(self, *codes: int) -> None:
        """The next len(codes) order_send calls answer these retcodes without executing anything."""
        self._scripted.extend(codes)

    def lose_next_answer(self, retcode: int | None = 10012) -> None:
        """The next executed deal goes through, but order_send answers `retcode` (10012, 10031) —
        or, with None, returns None with (-10004, 'No IPC connection')."""
        self._lost_answers.append(retcode)

    def server_now(self) -> int:
        return self._server_msc() // 1000

    # --- connection (docs §2) ------------------------------------------------------------------
    def initialize(self, path=None, *, login=None, password=None, server=None, timeout=60000, portable=False):
        if login is not None and not isinstance(login, int):
            return self._fail(-2, False, 'Invalid "login" argument')
        if self.initialize_fault is not None:
            return self._fail(self.initialize_fault, False)
        if path is not None and path != TERMINAL_PATH:
            return self._fail(-10003, False)
        if login is not None:
            account = self._authorize(login, password, server)
            if account is None:
                return self._fail(-6, False)
            self.account = account
        self._connected = True
        return self._ok(True)

    def login(self, login, *, password=None, server=None, timeout=60000):
        if not isinstance(login, int):
            return self._fail(-2, False, 'Invalid "login" argument')
        if not self._connected:
            return self._fail(-10004, False)
        account = self._authorize(login, password, server)
        if account is None:
            return self._fail(-6, False)
        self.account = account
        return self._ok(True)

    def shutdown(self):
        self._connected = False
        return self._ok(None)

    def last_error(self):
        return self._error

    @_needs_connection()
    def version(self):
        return self._ok((500, 4755, "20 Dec 2024"))

    @_needs_connection()
    def terminal_info(self):
        return self._ok(TerminalInfo(connected=True, trade_allowed=self.algo_trading,
                                     tradeapi_disabled=self.tradeapi_disabled, build=4755, maxbars=self.maxbars,
                                     ping_last=25_000, company="Fake Broker Ltd", name="MetaTrader 5",
                                     path=TERMINAL_PATH.rsplit("\\", 1)[0]))

    @_needs_connection()
    def account_info(self):
        a = self.account
        profit = round(sum((self._profit(p) for p in a.positions.values()), 0.0), 2)
        equity = round(a.balance + profit, 2)
        margin = round(sum((self._margin(p.symbol, p.volume, p.price_open) for p in a.positions.values()), 0.0), 2)
        return self._ok(AccountInfo(
            login=a.login, trade_mode=self.ACCOUNT_TRADE_MODE_DEMO, leverage=a.leverage, limit_orders=0,
            trade_allowed=a.trade_allowed, trade_expert=a.trade_expert,
            margin_mode=self.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, currency_digits=2, fifo_close=False,
            balance=round(a.balance, 2), credit=0.0, profit=profit, equity=equity, margin=margin,
            margin_free=round(equity - margin, 2), margin_level=round(equity / margin * 100, 2) if margin else 0.0,
            name=a.name, server=a.server, currency=a.currency, company=a.company))

    # --- symbols and quotes (docs §3) ----------------------------------------------------------
    @_needs_connection()
    def symbols_total(self):
        return self._ok(len(self.symbols))

    @_needs_connection()
    def symbols_get(self, group="*"):
        return self._ok(tuple(self._symbol_info(s) for s in self.symbols.values() if _matches(s.name, group)))

    @_needs_connection()
    def symbol_info(self, symbol):
        s = self.symbols.get(symbol) if isinstance(symbol, str) else None
        if s is None:
            return self._fail(-4)
        return self._ok(self._symbol_info(s))

    @_needs_connection()
    def symbol_info_tick(self, symbol):
        s = self.symbols.get(symbol) if isinstance(symbol, str) else None
        if s is None or not s.select:
            return self._fail(-4)
        return self._ok(Tick(time=s.tick_msc // 1000, bid=s.bid, ask=s.ask, last=0.0, volume=0,
                             time_msc=s.tick_msc, flags=6 if s.tick_msc else 0, volume_real=0.0))

    @_needs_connection(failure=False)
    def symbol_select(self, symbol, enable=True):
        s = self.symbols.get(symbol) if isinstance(symbol, str) else None
        if s is None:
            return self._fail(-4, False)
        if not enable and any(p.symbol == symbol for p in self.account.positions.values()):
            return self._fail(-1, False)  # a symbol with open positions stays in Market Watch
        s.select = bool(enable)
        return self._ok(True)

    # --- bars (docs §4) ------------------------------------------------------------------------
    @_needs_connection()
    def copy_rates_from(self, symbol, timeframe, date_from, count, /):
        rates = self._rates(symbol, timeframe)
        if rates is None:
            return None
        start = _epoch(date_from)
        if start is None or not isinstance(count, int) or count < 0:
            return self._fail(-2, None, "Invalid arguments")
        older = rates[rates["time"] <= start]
        return self._ok(older[len(older) - count:].copy())

    @_needs_connection()
    def copy_rates_from_pos(self, symbol, timeframe, start_pos, count, /):
        rates = self._rates(symbol, timeframe)
        if rates is None:
            return None
        if not isinstance(start_pos, int) or not isinstance(count, int) or start_pos < 0 or count < 0:
            return self._fail(-2, None, "Invalid arguments")
        stop = len(rates) - start_pos        # position 0 is the newest bar: the one still forming
        return self._ok(rates[max(0, stop - count):max(0, stop)].copy())

    @_needs_connection()
    def copy_rates_range(self, symbol, timeframe, date_from, date_to, /):
        rates = self._rates(symbol, timeframe)
        if rates is None:
            return None
        start, end = _epoch(date_from), _epoch(date_to)
        if start is None or end is None:
            return self._fail(-2, None, "Invalid arguments")
        return self._ok(rates[(rates["time"] >= start) & (rates["time"] <= end)].copy())

    # --- orders, positions, history (docs §5) --------------------------------------------------
    @_needs_connection()
    def positions_total(self):
        return self._ok(len(self.account.positions))

    @_needs_connection()
    def positions_get(self, *args, symbol=None, group=None, ticket=None):
        if args:
            return self._fail(-2, None, "Unnamed arguments not allowed")
        rows = [self._trade_position(p) for p in sorted(self.account.positions.values(), key=lambda p: p.ticket)]
        return self._ok(tuple(_filtered(rows, symbol=symbol, group=group, ticket=ticket)))

    @_needs_connection()
    def orders_total(self):
        return self._ok(len(self.account.orders))

    @_needs_connection()
    def orders_get(self, *args, symbol=None, group=None, ticket=None):
        if args:
            return self._fail(-2, None, "Unnamed arguments not allowed")
        rows = [o._replace(price_current=self._market(o.symbol, o.type)) for o in self.account.orders.values()]
        return self._ok(tuple(_filtered(rows, symbol=symbol, group=group, ticket=ticket)))

    @_needs_connection()
    def history_orders_total(self, date_from, date_to):
        found = self._history(self.account.history_orders, date_from, date_to, "time_setup")
        return found if found is None else self._ok(len(found))

    @_needs_connection()
    def history_orders_get(self, date_from=None, date_to=None, *, group=None, ticket=None, position=None):
        if ticket is not None:
            return self._history_by(self.account.history_orders, "ticket", ticket, "time_setup")
        if position is not None:
            return self._history_by(self.account.history_orders, "position_id", position, "time_setup")
        found = self._history(self.account.history_orders, date_from, date_to, "time_setup", group)
        return found if found is None else self._ok(found)

    @_needs_connection()
    def history_deals_total(self, date_from, date_to):
        found = self._history(self.account.history_deals, date_from, date_to, "time")
        return found if found is None else self._ok(len(found))

    @_needs_connection()
    def history_deals_get(self, date_from=None, date_to=None, *, group=None, ticket=None, position=None):
        if ticket is not None:  # the ORDER ticket (DEAL_ORDER), not the deal's own
            return self._history_by(self.account.history_deals, "order", ticket, "time")
        if position is not None:
            return self._history_by(self.account.history_deals, "position_id", position, "time")
        found = self._history(self.account.history_deals, date_from, date_to, "time", group)
        return found if found is None else self._ok(found)

    # --- pre-trade calculations (docs §6) ------------------------------------------------------
    @_needs_connection()
    def order_calc_margin(self, action, symbol, volume, price, /):
        if symbol not in self.symbols:
            return self._fail(-4)
        return self._ok(self._margin(symbol, volume, price))

    @_needs_connection()
    def order_calc_profit(self, action, symbol, volume, price_open, price_close, /):
        s = self.symbols.get(symbol)
        if s is None:
            return self._fail(-4)
        sign = 1 if action == self.ORDER_TYPE_BUY else -1
        return self._ok(round((price_close - price_open) * sign * volume * s.contract_size, 2))

    @_needs_connection()
    def order_check(self, request):
        req = self._parse_request(request)
        if req is None:
            return None
        info = self.account_info()
        try:
            required = self._route(req, execute=False)
        except _Refused as refused:
            code, comment, required = refused.code, _RETCODE_TEXT.get(refused.code, ""), 0.0
        else:
            code, comment = 0, "Done"
        margin = round(info.margin + required, 2)
        return self._ok(OrderCheckResult(code, info.balance, info.equity, info.profit, margin,
                                         round(info.equity - margin, 2),
                                         round(info.equity / margin * 100, 2) if margin else 0.0, comment, req))

    # --- order_send (docs §7) --------------------------------------------------------------------
    @_needs_connection()
    def order_send(self, request):
        self.requests.append(request)
        req = self._parse_request(request)
        if req is None:
            return None
        if self.tradeapi_disabled:
            return self._fail(-8)
        self._request_id += 1
        if self._scripted:
            return self._ok(self._answer(req, self._scripted.popleft()))
        try:
            result = self._route(req, execute=True)
        except _Refused as refused:
            return self._ok(self._answer(req, refused.code))
        if self._lost_answers:
            # The deal stands on the server; only the answer is lost on the way back.
            lost = self._lost_answers.popleft()
            if lost is None:
                return self._fail(-10004)
            return self._ok(self._answer(req, lost))
        return self._ok(result)

    # --- internals: errors ---------------------------------------------------------------------
    def _ok(self, value):
        self._error = (1, _ERROR_TEXT[1])
        return value

    def _fail(self, code: int, value=None, text: str | None = None):
        self._error = (code, text or _ERROR_TEXT.get(code, "Terminal: Call failed"))
        return value

    def _authorize(self, login: int, password, server) -> FakeAccount | None:
        account = self.accounts.get(login)
        if account is None or password not in (None, account.password) or server not in (None, account.server):
            return None
        return account

    # --- internals: time -------------------------------------------------------------------------
    def _offset_s(self) -> int:
        return int(round(self.server_offset_h * 3600))

    def _server_msc(self) -> int:
        return int(round(self.clock.now() * 1000)) + self._offset_s() * 1000

    # --- internals: symbols, bars ------------------------------------------------------------------
    def _symbol_info(self, s: FakeSymbol) -> SymbolInfo:
        return SymbolInfo(
            select=s.select, visible=s.select, time=s.tick_msc // 1000, digits=s.digits,
            spread=s.points(s.ask - s.bid) if s.bid else 0, trade_mode=s.trade_mode,
            trade_stops_level=s.stops_level, trade_freeze_level=s.freeze_level, trade_exemode=s.exemode,
            expiration_mode=15, filling_mode=s.filling_mode, order_mode=127, bid=s.bid, ask=s.ask,
            point=s.point, trade_tick_value=s.tick * s.contract_size, trade_tick_size=s.tick,
            trade_contract_size=s.contract_size, volume_min=s.volume_min, volume_max=s.volume_max,
            volume_step=s.volume_step, volume_limit=0.0, currency_profit=s.currency_profit, name=s.name)

    def _rates(self, symbol, timeframe) -> np.ndarray | None:
        """The bars the terminal shows now: opened at or before the server's now, capped at maxbars."""
        s = self.symbols.get(symbol) if isinstance(symbol, str) else None
        if s is None:
            return self._fail(-4)
        if timeframe != self.TIMEFRAME_M1:
            raise NotImplementedError("the fake terminal keeps M1 bars only")
        visible = s.rates[s.rates["time"] <= self.server_now()]
        return visible[-self.maxbars:]

    def _tick_into_bar(self, s: FakeSymbol) -> None:
        minute = self.server_now() // 60 * 60
        i = int(np.searchsorted(s.rates["time"], minute))
        if i == len(s.rates) or s.rates["time"][i] != minute:
            bar = np.array([(minute, s.bid, s.bid, s.bid, s.bid, 0, 0, 0)], RATES_DTYPE)
            s.rates = np.insert(s.rates, i, bar)
        bar = s.rates[i:i + 1]  # a view: the stored bar changes
        bar["high"] = max(bar["high"][0], s.bid)
        bar["low"] = min(bar["low"][0], s.bid)
        bar["close"] = s.bid
        bar["tick_volume"] += 1
        bar["spread"] = s.points(s.ask - s.bid)

    # --- internals: valuation ----------------------------------------------------------------------
    def _market(self, symbol: str, order_type: int) -> float:
        """The price a position of this type is valued (and closed) at: bid for a buy, ask for a sell."""
        s = self.symbols[symbol]
        return s.bid if order_type % 2 == 0 else s.ask

    def _profit(self, p: _Position, price: float | None = None, volume: float | None = None) -> float:
        s = self.symbols[p.symbol]
        close = self._market(p.symbol, p.type) if price is None else price
        sign = 1 if p.type == self.POSITION_TYPE_BUY else -1
        tick_value = s.tick * s.contract_size     # profit currency = account currency
        ticks = (close - p.price_open) * sign / s.tick
        return round(ticks * tick_value * (p.volume if volume is None else volume), 2)

    def _margin(self, symbol: str, volume: float, price: float) -> float:
        return round(volume * self.symbols[symbol].contract_size * price / self.account.leverage, 2)

    def _trade_position(self, p: _Position) -> TradePosition:
        update = p.time_update_msc or p.time_msc
        return TradePosition(
            ticket=p.ticket, time=p.time_msc // 1000, time_msc=p.time_msc, time_update=update // 1000,
            time_update_msc=update, type=p.type, magic=p.magic, identifier=p.ticket,
            reason=self.POSITION_REASON_EXPERT, volume=p.volume, price_open=p.price_open, sl=p.sl, tp=p.tp,
            price_current=self._market(p.symbol, p.type), swap=0.0, profit=self._profit(p), symbol=p.symbol,
            comment=p.comment, external_id="")

    # --- internals: history --------------------------------------------------------------------------
    def _visible(self, records: list[tuple[int, tuple]]) -> list:
        self._history_calls += 1
        return [r for since, r in records if since <= self._history_calls]

    def _history(self, records, date_from, date_to, time_field: str, group=None):
        start, end = _epoch(date_from), _epoch(date_to)
        if start is None or end is None:
            return self._fail(-2, None, "Invalid arguments")
        rows = [r for r in self._visible(records) if start <= getattr(r, time_field) <= end
                and (group is None or _matches(r.symbol, group))]
        return tuple(sorted(rows, key=lambda r: (getattr(r, time_field), r.ticket)))

    def _history_by(self, records, key: str, value, time_field: str):
        if not isinstance(value, int):
            return self._fail(-2, None, f'Invalid "{key}" argument')
        rows = [r for r in self._visible(records) if getattr(r, key) == value]
        return self._ok(tuple(sorted(rows, key=lambda r: (getattr(r, time_field), r.ticket))))

    def _record(self, records: list, row) -> None:
        records.append((self._history_calls + self.history_lag + 1, row))

    # --- internals: the request parser of the binding (docs §7.1) -------------------------------
    def _parse_request(self, request) -> TradeRequest | None:
        if not isinstance(request, dict):
            return self._fail(-2, None, "Invalid arguments")
        values = {}
        for key in TradeRequest._fields:
            value = request.get(key)
            if key not in request:
                value = "" if key in _STR_KEYS else 0.0 if key in _FLOAT_KEYS else 0
            elif not _valid(key, value):
                return self._fail(-2, None, f'Invalid "{key}" argument')
            values[key] = value
        return TradeRequest(**values)

    # --- internals: trading ----------------------------------------------------------------------------
    def _answer(self, req: TradeRequest, code: int, *, deal: int = 0, order: int = 0, volume: float = 0.0,
                price: float = 0.0) -> OrderSendResult:
        s = self.symbols.get(req.symbol)
        return OrderSendResult(retcode=code, deal=deal, order=order, volume=volume, price=price,
                               bid=s.bid if s else 0.0, ask=s.ask if s else 0.0,
                               comment=_RETCODE_TEXT.get(code, "Request rejected"), request_id=self._request_id,
                               retcode_external=0, request=req)

    def _route(self, req: TradeRequest, *, execute: bool):
        """Check a request against the server's rules in the documented order (docs §12) and, when
        `execute`, carry it out. Refusals raise _Refused. Without `execute`: the margin it needs."""
        if req.action == self.TRADE_ACTION_DEAL:
            return self._deal(req, execute)
        if req.action == self.TRADE_ACTION_SLTP:
            return self._sltp(req, execute)
        if req.action == self.TRADE_ACTION_PENDING:
            return self._pending(req, execute)
        if req.action == self.TRADE_ACTION_REMOVE:
            return self._remove(req, execute)
        if req.action in (self.TRADE_ACTION_MODIFY, self.TRADE_ACTION_CLOSE_BY):
            raise NotImplementedError("the fake terminal does not model MODIFY and CLOSE_BY")
        raise _Refused(10013)

    def _check_automation(self) -> None:
        if not self.algo_trading:
            raise _Refused(10027)
        if not self.account.trade_expert:
            raise _Refused(10026)

    def _symbol_for(self, req: TradeRequest) -> FakeSymbol:
        s = self.symbols.get(req.symbol)
        if s is None:
            raise _Refused(10013)
        return s

    def _check_trade_mode(self, s: FakeSymbol, order_type: int, opening: bool) -> None:
        if s.trade_mode == self.SYMBOL_TRADE_MODE_DISABLED:
            raise _Refused(10017)
        if opening:
            buy = order_type % 2 == 0
            if s.trade_mode == self.SYMBOL_TRADE_MODE_CLOSEONLY:
                raise _Refused(10044)
            if s.trade_mode == self.SYMBOL_TRADE_MODE_LONGONLY and not buy:
                raise _Refused(10042)
            if s.trade_mode == self.SYMBOL_TRADE_MODE_SHORTONLY and buy:
                raise _Refused(10043)
        if not s.session_open:
            raise _Refused(10018)

    def _check_volume(self, s: FakeSymbol, volume: float) -> None:
        steps = volume / s.volume_step
        if not (s.volume_min - 1e-9 <= volume <= s.volume_max + 1e-9) or abs(steps - round(steps)) > 1e-6:
            raise _Refused(10014)

    def _check_filling(self, s: FakeSymbol, filling: int, pending: bool) -> None:
        allowed = {self.ORDER_FILLING_FOK: bool(s.filling_mode & 1), self.ORDER_FILLING_IOC: bool(s.filling_mode & 2),
                   self.ORDER_FILLING_BOC: bool(s.filling_mode & 4),
                   self.ORDER_FILLING_RETURN: pending or s.exemode == self.SYMBOL_TRADE_EXECUTION_EXCHANGE}
        if not allowed.get(filling, False):
            raise _Refused(10030)

    def _check_precision(self, s: FakeSymbol, price: float, code: int) -> None:
        """A price (0 = none) must have the symbol's digits and sit on its tick grid."""
        ticks = price / s.tick
        if price and (abs(price - round(price, s.digits)) > 1e-9 or abs(ticks - round(ticks)) > 1e-6):
            raise _Refused(code)

    def _check_stops(self, s: FakeSymbol, order_type: int, sl: float, tp: float, reference: float) -> None:
        """SL/TP on the right side of `reference`, at least stops_level points away (docs §7.4)."""
        self._check_precision(s, sl, 10016)
        self._check_precision(s, tp, 10016)
        ref, level = s.points(reference), s.stops_level
        if order_type % 2 == 0:
            bad = (sl and not s.points(sl) < ref - level) or (tp and not s.points(tp) > ref + level)
        else:
            bad = (sl and not s.points(sl) > ref + level) or (tp and not s.points(tp) < ref - level)
        if bad:
            raise _Refused(10016)

    def _check_freeze(self, s: FakeSymbol, pos: _Position) -> None:
        market = s.points(self._market(pos.symbol, pos.type))
        for level in (pos.sl, pos.tp):
            if s.freeze_level and level and abs(market - s.points(level)) <= s.freeze_level:
                raise _Refused(10029)

    def _quote_for(self, s: FakeSymbol, req: TradeRequest) -> float:
        """The price a market deal fills at; requotes for instant/request execution (docs §7.4)."""
        if s.bid <= 0 or s.ask <= 0:
            raise _Refused(10021)
        self._check_precision(s, req.price, 10015)
        fill = s.ask if req.type == self.ORDER_TYPE_BUY else s.bid
        if s.exemode in (self.SYMBOL_TRADE_EXECUTION_INSTANT, self.SYMBOL_TRADE_EXECUTION_REQUEST):
            if abs(s.points(req.price) - s.points(fill)) > req.deviation:
                raise _Refused(10004)
        return fill

    def _deal(self, req: TradeRequest, execute: bool):
        self._check_automation()
        s = self._symbol_for(req)
        if req.type not in (self.ORDER_TYPE_BUY, self.ORDER_TYPE_SELL):
            raise _Refused(10013)
        pos = None
        if req.position:
            pos = self.account.positions.get(req.position)
            if pos is None:
                raise _Refused(10036)
            if pos.symbol != s.name or pos.type == req.type:
                raise _Refused(10013)
        self._check_trade_mode(s, req.type, opening=pos is None)
        self._check_volume(s, req.volume)
        if pos is not None and req.volume > pos.volume + 1e-9:
            raise _Refused(10038)
        self._check_filling(s, req.type_filling, pending=False)
        price = self._quote_for(s, req)
        if pos is not None:
            self._check_freeze(s, pos)
            return self._close(self.account, pos, price, req.volume, reason=self.DEAL_REASON_EXPERT,
                               magic=req.magic, comment=self._stored(req.comment), req=req) if execute else 0.0
        self._check_stops(s, req.type, req.sl, req.tp, s.bid if req.type == self.ORDER_TYPE_BUY else s.ask)
        required = self._margin(s.name, req.volume, price)
        if required > self.account_info().margin_free:
            raise _Refused(10019)
        return self._open(s, req, price) if execute else required

    def _open(self, s: FakeSymbol, req: TradeRequest, price: float) -> OrderSendResult:
        a, now = self.account, self._server_msc()
        order, deal = self._tickets()
        comment = self._stored(req.comment)
        a.positions[order] = _Position(ticket=order, time_msc=now, type=req.type, magic=req.magic,
                                       volume=req.volume, price_open=price, sl=req.sl, tp=req.tp, symbol=s.name,
                                       comment=comment)
        self._book(order=order, deal=deal, now=now, order_type=req.type, entry=self.DEAL_ENTRY_IN, position=order,
                   reason=self.DEAL_REASON_EXPERT, volume=req.volume, price=price, profit=0.0, magic=req.magic,
                   symbol=s.name, comment=comment, sl=req.sl, tp=req.tp, type_filling=req.type_filling)
        return self._answer(req, 10009, deal=deal, order=order, volume=req.volume, price=price)

    def _close(self, a: FakeAccount, pos: _Position, price: float, volume: float, *, reason: int, magic: int,
               comment: str, req: TradeRequest | None = None) -> OrderSendResult | None:
        """An OUT deal against `pos` of account `a` (whole or part), booked to the balance."""
        now = self._server_msc()
        order, deal = self._tickets()
        profit = self._profit(pos, price, volume)
        self._book(order=order, deal=deal, now=now, order_type=1 - pos.type, entry=self.DEAL_ENTRY_OUT,
                   position=pos.ticket, reason=reason, volume=volume, price=price, profit=profit, magic=magic,
                   symbol=pos.symbol, comment=comment, account=a)
        a.balance = round(a.balance + profit, 2)
        remaining = round(pos.volume - volume, 8)
        if remaining <= 0:
            del a.positions[pos.ticket]
        else:
            pos.volume, pos.time_update_msc = remaining, now
        return self._answer(req, 10009, deal=deal, order=order, volume=volume, price=price) if req else None

    def _tickets(self) -> tuple[int, int]:
        order, deal = self._next_order, self._next_deal
        self._next_order += 1
        self._next_deal += 1
        return order, deal

    def _book(self, *, order: int, deal: int, now: int, order_type: int, entry: int, position: int, reason: int,
              volume: float, price: float, profit: float, magic: int, symbol: str, comment: str,
              sl: float = 0.0, tp: float = 0.0, type_filling: int = 0, account: FakeAccount | None = None) -> None:
        """The FILLED history order and the deal of one execution; a commission is charged."""
        a = account or self.account
        commission = -round(a.commission_per_lot * volume, 2) or 0.0  # never -0.0
        a.balance = round(a.balance + commission, 2)
        self._record(a.history_orders, TradeOrder(
            ticket=order, time_setup=now // 1000, time_setup_msc=now, time_done=now // 1000, time_done_msc=now,
            time_expiration=0, type=order_type, type_time=self.ORDER_TIME_GTC, type_filling=type_filling,
            state=self.ORDER_STATE_FILLED, magic=magic, position_id=position, position_by_id=0, reason=reason,
            volume_initial=volume, volume_current=0.0, price_open=price, sl=sl, tp=tp, price_current=price,
            price_stoplimit=0.0, symbol=symbol, comment=comment, external_id=""))
        self._record(a.history_deals, TradeDeal(
            ticket=deal, order=order, time=now // 1000, time_msc=now, type=order_type, entry=entry, magic=magic,
            position_id=position, reason=reason, volume=volume, price=price, commission=commission, swap=0.0,
            profit=profit, fee=0.0, symbol=symbol, comment=comment, external_id=""))

    def _sltp(self, req: TradeRequest, execute: bool):
        self._check_automation()
        pos = self.account.positions.get(req.position)
        if pos is None:
            raise _Refused(10036)
        s = self._symbol_for(req)
        if s.name != pos.symbol:
            raise _Refused(10013)
        if s.bid <= 0:
            raise _Refused(10021)
        self._check_freeze(s, pos)
        if s.points(req.sl) == s.points(pos.sl) and s.points(req.tp) == s.points(pos.tp):
            raise _Refused(10025)
        self._check_stops(s, pos.type, req.sl, req.tp, self._market(pos.symbol, pos.type))
        if execute:
            pos.sl, pos.tp, pos.time_update_msc = req.sl, req.tp, self._server_msc()
            return self._answer(req, 10009)
        return 0.0

    def _pending(self, req: TradeRequest, execute: bool):
        self._check_automation()
        s = self._symbol_for(req)
        if req.type not in range(self.ORDER_TYPE_BUY_LIMIT, self.ORDER_TYPE_SELL_STOP + 1):
            raise _Refused(10035)
        self._check_trade_mode(s, req.type, opening=True)
        self._check_volume(s, req.volume)
        self._check_filling(s, req.type_filling, pending=True)
        if s.bid <= 0:
            raise _Refused(10021)
        self._check_precision(s, req.price, 10015)
        # Limits sit on the far side of the market, stops on the near side, stops_level away.
        buy = req.type % 2 == 0
        market = s.points(s.ask if buy else s.bid)
        distance = s.points(req.price) - market
        above = req.type in (self.ORDER_TYPE_SELL_LIMIT, self.ORDER_TYPE_BUY_STOP)
        if (distance if above else -distance) < max(1, s.stops_level):
            raise _Refused(10015)
        self._check_stops(s, req.type, req.sl, req.tp, req.price)
        if req.type_time == self.ORDER_TIME_SPECIFIED and req.expiration <= self.server_now():
            raise _Refused(10022)
        if not execute:
            return 0.0
        order, _ = self._tickets()
        now = self._server_msc()
        self.account.orders[order] = TradeOrder(
            ticket=order, time_setup=now // 1000, time_setup_msc=now, time_done=0, time_done_msc=0,
            time_expiration=req.expiration, type=req.type, type_time=req.type_time, type_filling=req.type_filling,
            state=self.ORDER_STATE_PLACED, magic=req.magic, position_id=0, position_by_id=0,
            reason=self.ORDER_REASON_EXPERT, volume_initial=req.volume, volume_current=req.volume,
            price_open=req.price, sl=req.sl, tp=req.tp, price_current=0.0, price_stoplimit=req.stoplimit,
            symbol=s.name, comment=self._stored(req.comment), external_id="")
        return self._answer(req, 10009, order=order, volume=req.volume, price=req.price)

    def _remove(self, req: TradeRequest, execute: bool):
        self._check_automation()
        order = self.account.orders.get(req.order)
        if order is None:
            raise _Refused(10013)
        if execute:
            del self.account.orders[req.order]
            now = self._server_msc()
            self._record(self.account.history_orders, order._replace(
                state=self.ORDER_STATE_CANCELED, time_done=now // 1000, time_done_msc=now))
            return self._answer(req, 10009, order=req.order)
        return 0.0

    def _trigger_stops(self, a: FakeAccount, s: FakeSymbol, pos: _Position) -> None:
        """Close `pos` at market once the price has crossed its SL or TP, as the server does."""
        market = self._market(pos.symbol, pos.type)
        buy = pos.type == self.POSITION_TYPE_BUY
        if pos.sl and (market <= pos.sl if buy else market >= pos.sl):
            reason, tag, level = self.DEAL_REASON_SL, "sl", pos.sl
        elif pos.tp and (market >= pos.tp if buy else market <= pos.tp):
            reason, tag, level = self.DEAL_REASON_TP, "tp", pos.tp
        else:
            return
        self._close(a, pos, market, pos.volume, reason=reason, magic=pos.magic,
                    comment=f"[{tag} {level:.{s.digits}f}]")

    def _stored(self, comment: str) -> str:
        return self.comment_rule(comment) if self.comment_rule else comment


def _valid(key: str, value) -> bool:
    """The binding's type check of one request value (docs §7.1)."""
    if key in _FLOAT_KEYS:
        return isinstance(value, float)
    if key in _STR_KEYS:
        return isinstance(value, str) and len(value.encode("utf-16-le")) // 2 <= _MAX_STRING_UNITS
    if key in _UNSIGNED_KEYS:
        return isinstance(value, int) and 0 <= value < 2**64
    return isinstance(value, int)


def _epoch(value) -> int | None:
    """A date argument: int epoch seconds, or a datetime read through .timestamp() (docs §1)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value if isinstance(value, int) else None


def _matches(name: str, group: str) -> bool:
    """MT5 group masks: comma-separated, `*` wildcards, `!` excludes; includes first, then exclusions."""
    masks = [m.strip().upper() for m in group.split(",") if m.strip()]
    include = [m for m in masks if not m.startswith("!")]
    exclude = [m[1:] for m in masks if m.startswith("!")]
    upper = name.upper()
    return (any(fnmatch.fnmatchcase(upper, m) for m in include)
            and not any(fnmatch.fnmatchcase(upper, m) for m in exclude))


def _filtered(rows, *, symbol=None, group=None, ticket=None):
    return [r for r in rows if (symbol is None or r.symbol == symbol) and (ticket is None or r.ticket == ticket)
            and (group is None or _matches(r.symbol, group))]


DEMO_LOGIN, DEMO_PASSWORD, DEMO_SERVER = 7_001_234, "s3cret-Pa55!", "Fake-Demo"


def demo_terminal(clock, *, server_offset_h: float = 0.0, symbols=None) -> FakeMT5:
    """A terminal with one demo account (DEMO_LOGIN) and, unless told otherwise, XAUUSD, EURUSD, BTCUSD."""
    mt5 = FakeMT5(clock, server_offset_h=server_offset_h)
    mt5.add_account(FakeAccount(DEMO_LOGIN, DEMO_PASSWORD, DEMO_SERVER))
    for symbol in (symbols if symbols is not None else (xauusd(), eurusd(), btcusd())):
        mt5.add_symbol(symbol)
    return mt5
