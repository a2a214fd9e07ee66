"""The MetaTrader 5 broker: one trading account in a running MetaTrader 5 terminal.

The contract is docs/mt5-api.md (the shared docs). The `MetaTrader5` module is
injected (tests pass the fake in tests/fakes/mt5_fake.py) or imported on first
use; the connection, lock, symbol names and server clock it shares with the
mt5 feed live in `scalper.mt5_terminal`.

Decisions:
- Algo Trading: `connect()` refuses with BrokerUnavailable when the terminal's
  Algo Trading button is off, the Python API is disabled in its options, the
  login is read-only or the broker forbids EAs. These are configuration
  problems an operator must fix; they are reported once, plainly (and by
  `scalper check`), instead of as a 10027 on every order. Switched off later,
  orders come back 10027 (final) and the ledger says why.
- Time: every time leaving this class is UTC epoch seconds: server time minus
  the server's offset (configured, or estimated from quotes, §4).
- Comment: the client order id, reduced to ASCII letters, digits and `_-.:`
  and cut to 27 characters (the binding refuses 30+ UTF-16 units). Servers
  may shorten or decorate stored comments, so `find_order` accepts a stored
  comment that contains ours or is contained in it, from 10 characters on,
  together with the magic number.
- Accounts are taken to be hedging accounts (docs §7.2): a close names its
  position, and a new position's ticket is the ticket of the order that
  opened it.
- A request the terminal never answered (None with an IPC error) may still
  have executed: it comes back as 10031 CONNECTION (uncertain), so the order
  desk looks for it before any resend. A request the package refused before
  sending (-2 bad argument, -8 Python trading off) is final, with its code.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from scalper.brokers.base import (
    SUCCESS_CODES,
    AccountInfo,
    BrokerDeal,
    BrokerOrder,
    BrokerPosition,
    OrderRequest,
    OrderResult,
    OrderState,
    Quote,
    Side,
)
from scalper.clock import Clock
from scalper.config import AccountConfig
from scalper.core.sizing import step_decimals
from scalper.errors import BrokerUnavailable
from scalper.mt5_terminal import (
    IPC_ERRORS,
    Terminal,
    TerminalAccount,
    UnknownSymbol,
    describe_failure,
    load_package,
    missing_package,
)
from scalper.symbols import SymbolSpec
from scalper.vocab import TradeRetcode

log = logging.getLogger("scalper.mt5")

MISSING_PACKAGE = missing_package("the mt5 broker")

# symbol_info().filling_mode bits; the package does not export them (docs §3, §11).
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2

DEVIATION_POINTS = 20        # accepted slippage for instant/request execution
COMMENT_MAX = 27             # the binding refuses 30+ UTF-16 units; keep a margin
COMMENT_MIN_MATCH = 10       # a stored comment this long still identifies one order
HISTORY_MARGIN_S = 86_400    # history windows reach a day past both ends (server time is not UTC)

_UNSAFE_COMMENT = re.compile(r"[^A-Za-z0-9_.:\-]")
_DEAL_REASONS = {0: "client", 1: "mobile", 2: "web", 3: "expert", 4: "sl", 5: "tp", 6: "so",
                 7: "rollover", 8: "vmargin", 9: "split"}


def safe_comment(client_order_id: str) -> str:
    """The order comment for a client order id: ASCII letters, digits, `_-.:`, at most 27 characters."""
    return _UNSAFE_COMMENT.sub("_", client_order_id)[:COMMENT_MAX]


def comment_matches(stored: str, ours: str) -> bool:
    """Is `stored` (as the server kept it) the comment we sent as `ours`?"""
    shorter, longer = sorted((stored, ours), key=len)
    return len(shorter) >= min(COMMENT_MIN_MATCH, len(ours)) and shorter in longer


class MT5Broker:
    """One account in a MetaTrader 5 terminal. See the module docstring for the decisions."""

    name = "mt5"
    history_may_lag = True      # the terminal's history lags the trade server's

    def __init__(self, account: str, *, clock: Clock, access: TerminalAccount | None = None, module=None,
                 server_offset_s: int | None = None, deviation: int = DEVIATION_POINTS):
        self.account = account
        self._clock = clock
        self._access = access if access is not None else TerminalAccount()   # None: no login, server or terminal named
        self._deviation = deviation
        module = module if module is not None else load_package(BrokerUnavailable, MISSING_PACKAGE)
        self._t = Terminal(module, error=BrokerUnavailable, server_offset_s=server_offset_s)
        self._mt5 = module

    @classmethod
    def from_account(cls, acc: AccountConfig, *, clock: Clock, module=None) -> MT5Broker:
        return cls(str(acc.id), clock=clock, access=TerminalAccount.of(acc), module=module,
                   server_offset_s=acc.server_utc_offset_s)

    # --- connection -----------------------------------------------------------------------------
    def connect(self) -> None:
        """Attach to the terminal and make sure it can trade for this account. Messages carry no
        account label: callers prefix their own."""
        try:
            self._t.open(self, self._access, hold=True)
            info = self._check_can_trade()
        except BrokerUnavailable:
            self.close()
            raise
        log.info("account %s: connected to MetaTrader 5 account %s on %s", self.account, info.login, info.server)

    def close(self) -> None:
        self._t.close(self)

    def sync(self) -> None:
        """Nothing to do: the trade server moves positions along by itself."""

    def _check_can_trade(self):
        info = self._account_info()
        terminal = self._t.need("terminal_info")
        problems = []
        if not terminal.trade_allowed:
            problems.append("Algo Trading is off in the MetaTrader 5 terminal (orders would be refused with "
                            "10027): press its Algo Trading button and allow algorithmic trading under "
                            "Tools > Options > Expert Advisors")
        if terminal.tradeapi_disabled:
            problems.append("the terminal forbids trading from Python: untick 'Disable algorithmic trading "
                            "via external Python API' under Tools > Options > Expert Advisors")
        if not info.trade_allowed:
            problems.append(f"account {info.login} may not trade (logged in with the investor password?)")
        if not info.trade_expert:
            problems.append(f"the broker does not allow automated trading on account {info.login} "
                            "(orders would be refused with 10026)")
        if problems:
            raise BrokerUnavailable("; ".join(problems))
        return info

    def _account_info(self):
        """account_info(), after making sure the terminal still holds our account: another program
        may have switched it with login(), and every order would then land in the wrong account."""
        info = self._t.need("account_info")
        expected = self._access.login
        if expected is not None and info.login != expected:
            raise BrokerUnavailable(
                f"the terminal is logged in to account {info.login}, not {expected} (another "
                "program switched it; a terminal holds one account: give each account its own terminal)")
        return info

    # --- reading ----------------------------------------------------------------------------------
    def account_info(self) -> AccountInfo:
        info = self._account_info()
        return AccountInfo(account=self.account, balance=info.balance, equity=info.equity, currency=info.currency,
                           margin_free=info.margin_free)

    def symbol_spec(self, symbol: str) -> SymbolSpec:
        info = self._t.need("symbol_info", self._t.resolve(symbol))
        return SymbolSpec(symbol=symbol, digits=info.digits, contract_size=info.trade_contract_size,
                          volume_min=info.volume_min, volume_max=info.volume_max, volume_step=info.volume_step,
                          spread_points=float(info.spread), stops_level=info.trade_stops_level,
                          currency=info.currency_profit)

    def quote(self, symbol: str) -> Quote:
        tick = self._t.need("symbol_info_tick", self._t.resolve(symbol))
        offset = self._t.offset(self._clock.now())
        return Quote(symbol=symbol, bid=tick.bid, ask=tick.ask, time=_seconds(tick.time_msc, tick.time) - offset)

    def positions(self, magic: int | None = None) -> list[BrokerPosition]:
        self._account_info()
        rows = self._t.need("positions_get")
        offset = self._t.offset(self._clock.now()) if rows else 0
        return [self._position(p, offset) for p in rows if magic is None or p.magic == magic]

    def deals(self, since: float, until: float | None = None, position: int | None = None) -> list[BrokerDeal]:
        self._account_info()
        now = self._clock.now()
        if position is not None:
            rows = self._history("history_deals_get", position=int(position))
            offset = self._t.offset(now) if rows else 0
        else:
            offset = self._t.offset(now)
            end = until if until is not None else now + HISTORY_MARGIN_S
            rows = self._history("history_deals_get", int(since + offset) - 1, int(end + offset) + 1)
        deals = [self._deal(d, offset) for d in rows if d.type in (self._mt5.DEAL_TYPE_BUY, self._mt5.DEAL_TYPE_SELL)]
        return sorted((d for d in deals if d.time >= since and (until is None or d.time <= until)),
                      key=lambda d: (d.time, d.ticket))

    def find_order(self, client_order_id: str, magic: int, since: float) -> BrokerOrder | None:
        """Our order by magic and comment: a filled one in history, else an open position it opened
        (history may lag behind), else a pending order, else whatever history says became of it."""
        self._account_info()
        now = self._clock.now()
        offset = self._t.offset(now)
        comment = safe_comment(client_order_id)

        def ours(row) -> bool:
            return row.magic == magic and comment_matches(row.comment, comment)

        history = [o for o in self._history("history_orders_get", int(since + offset) - HISTORY_MARGIN_S,
                                            int(now + offset) + HISTORY_MARGIN_S) if ours(o)]
        filled = [o for o in history if o.state in (self._mt5.ORDER_STATE_FILLED, self._mt5.ORDER_STATE_PARTIAL)]
        if filled:
            return self._order(max(filled, key=lambda o: o.ticket), client_order_id, offset)
        for p in self._t.need("positions_get"):
            if ours(p):
                return BrokerOrder(ticket=p.ticket, client_order_id=client_order_id, magic=p.magic,
                                   symbol=self._t.alias(p.symbol), side=_side(p.type), state="filled",
                                   volume=p.volume, price=p.price_open, position_ticket=p.identifier,
                                   time=_seconds(p.time_msc, p.time) - offset,
                                   deals=self._order_deals(p.ticket, offset))
        for o in self._t.need("orders_get"):
            if ours(o):
                return self._order(o, client_order_id, offset)
        if history:
            return self._order(max(history, key=lambda o: o.ticket), client_order_id, offset)
        return None

    # --- trading ----------------------------------------------------------------------------------
    def send_order(self, request: OrderRequest) -> OrderResult:
        now = self._clock.now()
        self._account_info()
        try:
            symbol = self._t.resolve(request.symbol)
        except UnknownSymbol as exc:
            return OrderResult(TradeRetcode.INVALID, str(exc), time=now)
        info = self._t.need("symbol_info", symbol)
        tick = self._t.need("symbol_info_tick", symbol)
        buy = request.side == "buy"
        return self._send({
            "action": self._mt5.TRADE_ACTION_DEAL,
            "symbol": symbol,
            "volume": _volume(request.volume, info.volume_step),
            "type": self._mt5.ORDER_TYPE_BUY if buy else self._mt5.ORDER_TYPE_SELL,
            "price": float(tick.ask if buy else tick.bid),
            "sl": _price_level(request.sl, info),
            "tp": _price_level(request.tp, info),
            "deviation": int(self._deviation),
            "type_filling": self._filling(info),
            "type_time": self._mt5.ORDER_TIME_GTC,
            "magic": int(request.magic),
            "comment": safe_comment(request.client_order_id),
        }, now)

    def _position_to_change(self, ticket: int) -> tuple[Any, float] | OrderResult:
        """The open position `ticket` and the time now, or the answer for one no longer open."""
        now = self._clock.now()
        self._account_info()
        pos = self._open_position(ticket)
        if pos is None:
            return OrderResult(TradeRetcode.POSITION_CLOSED, f"position {ticket} is not open", time=now)
        return pos, now

    def close_position(self, ticket: int, *, comment: str = "", magic: int = 0) -> OrderResult:
        """The whole position, by an opposite deal that names it (docs §7.2)."""
        found = self._position_to_change(ticket)
        if isinstance(found, OrderResult):
            return found
        pos, now = found
        info = self._t.need("symbol_info", pos.symbol)
        tick = self._t.need("symbol_info_tick", pos.symbol)
        long = pos.type == self._mt5.POSITION_TYPE_BUY
        return self._send({
            "action": self._mt5.TRADE_ACTION_DEAL,
            "symbol": pos.symbol,
            "volume": float(pos.volume),
            "type": self._mt5.ORDER_TYPE_SELL if long else self._mt5.ORDER_TYPE_BUY,
            "position": int(pos.ticket),
            "price": float(tick.bid if long else tick.ask),
            "deviation": int(self._deviation),
            "type_filling": self._filling(info),
            "type_time": self._mt5.ORDER_TIME_GTC,
            "magic": int(magic or pos.magic),
            "comment": safe_comment(comment),
        }, now, position_ticket=pos.ticket)

    def modify_stops(self, ticket: int, sl: float | None, tp: float | None) -> OrderResult:
        """Both levels are always sent: a level left out would be removed (docs §7.2). 10025 (nothing
        to change) comes back as it is; the caller decides what it means."""
        found = self._position_to_change(ticket)
        if isinstance(found, OrderResult):
            return found
        pos, now = found
        info = self._t.need("symbol_info", pos.symbol)
        return self._send({
            "action": self._mt5.TRADE_ACTION_SLTP,
            "symbol": pos.symbol,
            "position": int(pos.ticket),
            "sl": _price_level(sl, info),
            "tp": _price_level(tp, info),
        }, now, position_ticket=pos.ticket)

    def _send(self, request: dict, now: float, position_ticket: int | None = None) -> OrderResult:
        result, error = self._t.call("order_send", request)
        if result is None:
            code, text = error
            if code in IPC_ERRORS:
                return OrderResult(TradeRetcode.CONNECTION, f"the terminal did not answer ({code} {text}); the "
                                   "order may have gone through", time=now)
            return OrderResult(code, f"refused by the MetaTrader5 package ({code} {text})", time=now)
        message = result.comment
        if result.retcode == TradeRetcode.REQUOTE:
            message += f" (bid {result.bid}, ask {result.ask})"
        if result.retcode not in SUCCESS_CODES:
            return OrderResult(result.retcode, message, time=now)
        # A new position's ticket is its opening order's ticket (hedging); SLTP answers carry no order.
        return OrderResult(result.retcode, message, ticket=result.order or None,
                           position_ticket=position_ticket or result.order or None, deal_ticket=result.deal or None,
                           price=result.price or None, volume=result.volume or None, time=now)

    def _filling(self, info) -> int:
        """FOK when the symbol allows it, else IOC, else RETURN (docs §7.4): a missing or fixed
        type_filling is refused with 10030 by symbols that allow IOC only."""
        if info.filling_mode & SYMBOL_FILLING_FOK:
            return self._mt5.ORDER_FILLING_FOK
        if info.filling_mode & SYMBOL_FILLING_IOC:
            return self._mt5.ORDER_FILLING_IOC
        return self._mt5.ORDER_FILLING_RETURN

    # --- mapping --------------------------------------------------------------------------------------
    def _open_position(self, ticket: int):
        found = self._t.need("positions_get", ticket=int(ticket))
        return found[0] if found else None

    def _history(self, function: str, *args, **kwargs) -> tuple:
        """A history query; None without a link error means "nothing found" in some builds (§10.11)."""
        rows, error = self._t.call(function, *args, **kwargs)
        if rows is None:
            if error[0] in IPC_ERRORS:
                raise BrokerUnavailable(describe_failure(function, error))
            return ()
        return rows

    def _position(self, p, offset: int) -> BrokerPosition:
        return BrokerPosition(ticket=p.ticket, symbol=self._t.alias(p.symbol), side=_side(p.type), volume=p.volume,
                              price_open=p.price_open, sl=p.sl or None, tp=p.tp or None, magic=p.magic,
                              comment=p.comment, time_open=_seconds(p.time_msc, p.time) - offset,
                              price_current=p.price_current, profit=p.profit, swap=p.swap)

    def _deal(self, d, offset: int) -> BrokerDeal:
        return BrokerDeal(ticket=d.ticket, order=d.order, position_id=d.position_id, symbol=self._t.alias(d.symbol),
                          side=_side(d.type), entry="in" if d.entry == self._mt5.DEAL_ENTRY_IN else "out",
                          volume=d.volume, price=d.price, profit=d.profit,
                          time=_seconds(d.time_msc, d.time) - offset,
                          reason=_DEAL_REASONS.get(d.reason, f"reason_{d.reason}"), magic=d.magic,
                          comment=d.comment, commission=d.commission + d.fee, swap=d.swap)

    def _order_deals(self, order_ticket: int, offset: int) -> tuple[BrokerDeal, ...]:
        rows = self._history("history_deals_get", ticket=int(order_ticket))
        return tuple(self._deal(d, offset) for d in rows)

    def _order(self, o, client_order_id: str, offset: int) -> BrokerOrder:
        mt5 = self._mt5
        states: dict[int, OrderState] = {mt5.ORDER_STATE_FILLED: "filled", mt5.ORDER_STATE_PARTIAL: "filled",
                  mt5.ORDER_STATE_CANCELED: "canceled", mt5.ORDER_STATE_EXPIRED: "canceled",
                  mt5.ORDER_STATE_REJECTED: "rejected"}
        deals = self._order_deals(o.ticket, offset) if o.state in (mt5.ORDER_STATE_FILLED,
                                                                   mt5.ORDER_STATE_PARTIAL) else ()
        volume = sum(d.volume for d in deals) or o.volume_initial
        price = sum(d.price * d.volume for d in deals) / volume if deals else (o.price_open or None)
        done = _seconds(o.time_done_msc, o.time_done) or _seconds(o.time_setup_msc, o.time_setup)
        return BrokerOrder(ticket=o.ticket, client_order_id=client_order_id, magic=o.magic,
                           symbol=self._t.alias(o.symbol), side=_side(o.type), state=states.get(o.state, "placed"),
                           volume=volume, price=price, position_ticket=o.position_id or None, time=done - offset,
                           deals=deals)


def _side(order_type: int) -> Side:
    """Buy types are even (BUY, BUY_LIMIT, BUY_STOP, BUY_STOP_LIMIT), sell types odd; deals alike."""
    return "buy" if order_type % 2 == 0 else "sell"


def _seconds(msc: int, seconds: int) -> float:
    return msc / 1000 if msc else float(seconds)


def _volume(volume: float, step: float) -> float:
    """Lots as a Python float (an int is refused), without float noise beyond the step's decimals."""
    return float(round(volume, step_decimals(step)))


def _price_level(price: float | None, info) -> float:
    """An SL/TP for the request: 0.0 for none, else on the tick grid and rounded to the digits."""
    if not price:
        return 0.0
    tick = info.trade_tick_size or info.point
    return float(round(round(price / tick) * tick, info.digits))
