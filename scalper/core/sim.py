"""The simulated exchange: how the paper broker and the backtester price, fill, exit and
margin an order, in one place, so that a replay through the paper broker and a backtest
agree by construction (as nautilus_trader's one matching engine serves its backtest and
sandbox). Plain data in, plain data out: no I/O, no clock, no database.

Prices. Bars carry mid prices. The latest price at an instant is the open of the bar
forming then, else (a gap: no bar starts right away) the close of the newest closed bar.
The spread is the newest closed bar's `spread` column, else the symbol's typical spread.
The quote is the latest price minus half the spread (bid) and plus half (ask).

Orders. A market order fills at the far side of the quote (a buy at the ask, a sell at
the bid); a position closes at the near side (a buy sells at the bid). The margin a
position holds is volume × contract size × price / leverage (at its fill price). An order
whose margin exceeds the free margin — the equity (balance plus the open positions at the
latest price) less the margin the open positions hold — is refused, as MT5 answers
TRADE_RETCODE_NO_MONEY. When the equity falls to zero or below, every position is closed
at the quote (a stop-out); with no money left, every later order is refused.

Exits. A position's SL/TP is checked against each bar from the one it filled in:
- a bar that opens beyond a level exits at that open (a gap fills worse/better);
- otherwise a bar whose range reaches a level exits at the level;
- one bar touching both SL and TP counts as the SL (the cautious reading).
When within the bar is unknown: its exit time is the bar's open time, never before its fill.

Stops. A stop or target moved by less than half a point is no change (MT5: NO_CHANGES).

Profit is booked as if the symbol's profit currency were the account's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple, TypeVar, overload

import numpy as np

from scalper.core.bars import BAR_SECONDS, Bars

Price = TypeVar("Price", float, np.ndarray)

DEFAULT_LEVERAGE = 100     # 1:100, a common retail CFD account's; the paper broker's and the backtest's default


# --- prices -----------------------------------------------------------------------------
def latest_price(bars: Bars, now: float) -> float | None:
    """The latest price at `now` in `bars` (which may run past `now`): the open of the bar
    forming then, else the close of the newest bar closed by then; None before the first."""
    forming = int(now // BAR_SECONDS) * BAR_SECONDS
    k = int(np.searchsorted(bars.time, forming, side="left"))
    if k < len(bars) and int(bars.time[k]) == forming:
        return float(bars.open[k])
    closed = int(np.searchsorted(bars.time, now - BAR_SECONDS, side="right"))
    return float(bars.close[closed - 1]) if closed else None


def latest_after_close(bars: Bars) -> np.ndarray:
    """`latest_price` at each bar's close plus a few seconds (under a minute), for every bar:
    the next bar's open when it starts right then, else this bar's close."""
    latest = bars.close.copy()
    follows = bars.time[1:] == bars.time[:-1] + BAR_SECONDS
    latest[:-1][follows] = bars.open[1:][follows]
    return latest


def spread_points(closed: Bars, typical: float) -> float:
    """The spread (points) at an instant: the newest closed bar's, else the typical spread."""
    if len(closed) and not math.isnan(closed.spread[-1]):
        return float(closed.spread[-1])
    return typical


def spreads_after_close(bars: Bars, typical: float) -> np.ndarray:
    """`spread_points` at each bar's close, for every bar (a read-only view of one value when
    the bars carry no spread at all)."""
    missing = np.isnan(bars.spread)
    if missing.all():
        return np.broadcast_to(np.float64(typical), (len(bars),))
    return np.where(missing, typical, bars.spread)


def quote(mid: Price, spread: Price | float, point: float) -> tuple[Price, Price]:
    """(bid, ask) around `mid`; numbers or numpy arrays alike."""
    half = 0.5 * spread * point
    return mid - half, mid + half


def fill_price(direction: str, bid: Price, ask: Price) -> Price:
    """A market order to open `direction` fills at the far side of the quote."""
    return ask if direction == "buy" else bid


def close_price(direction: str, bid: Price, ask: Price) -> Price:
    """A `direction` position closes at the near side: a buy sells at the bid."""
    return bid if direction == "buy" else ask


# --- exits ---------------------------------------------------------------------------------
def bar_exit(direction: str, sl: float | None, tp: float | None,
             open_: float, high: float, low: float) -> tuple[float, str] | None:
    """(exit price, "sl" | "tp") if this bar closes the position, else None."""
    if direction == "buy":
        if sl is not None and open_ <= sl:
            return open_, "sl"
        if tp is not None and open_ >= tp:
            return open_, "tp"
        if sl is not None and low <= sl:
            return sl, "sl"
        if tp is not None and high >= tp:
            return tp, "tp"
    else:
        if sl is not None and open_ >= sl:
            return open_, "sl"
        if tp is not None and open_ <= tp:
            return open_, "tp"
        if sl is not None and high >= sl:
            return sl, "sl"
        if tp is not None and low <= tp:
            return tp, "tp"
    return None


def exit_bars(direction: str, sl: np.ndarray | float | None, tp: np.ndarray | float | None,
              open_: np.ndarray, high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Vector form of `bar_exit` over many bars (`sl`, `tp` may vary per bar): True where
    `bar_exit` would close the position."""
    never = np.zeros(len(open_), dtype=bool)
    sl_hit = never if sl is None else ((open_ <= sl) | (low <= sl) if direction == "buy"
                                       else (open_ >= sl) | (high >= sl))
    tp_hit = never if tp is None else ((open_ >= tp) | (high >= tp) if direction == "buy"
                                       else (open_ <= tp) | (low <= tp))
    return sl_hit | tp_hit


def bar_exits(buy: np.ndarray, sl: np.ndarray, tp: np.ndarray, open_: np.ndarray, high: np.ndarray,
              low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of `bar_exit`, one position and its bar per element (`buy`: its side): the exit
    price (NaN where the bar does not close it) and whether the exit is "sl" (else "tp")."""
    sl_open = np.where(buy, open_ <= sl, open_ >= sl)
    tp_open = np.where(buy, open_ >= tp, open_ <= tp)
    sl_range = np.where(buy, low <= sl, high >= sl)
    tp_range = np.where(buy, high >= tp, low <= tp)
    price = np.select([sl_open, tp_open, sl_range, tp_range], [open_, open_, sl, tp], np.nan)
    is_sl = sl_open | (~tp_open & sl_range)
    return price, is_sl


def exit_time(bar_open: float, filled_at: float) -> float:
    """When a bar's exit happened: its open time, never before the fill."""
    return max(bar_open, filled_at)


def exit_times(bar_open: np.ndarray, filled_at: np.ndarray) -> np.ndarray:
    """`exit_time` of every element."""
    times: np.ndarray = np.maximum(bar_open, filled_at)
    return times


class Exit(NamedTuple):
    bar: int          # index in the bars checked
    price: float
    reason: str       # "sl" | "tp"
    time: float       # exit_time


def first_exit(direction: str, sl: float | None, tp: float | None, bars: Bars, filled_at: float) -> Exit | None:
    """The first of `bars` that closes the position (from the bar it filled in on), or None."""
    for i in range(len(bars)):
        hit = bar_exit(direction, sl, tp, float(bars.open[i]), float(bars.high[i]), float(bars.low[i]))
        if hit is not None:
            return Exit(i, hit[0], hit[1], exit_time(float(bars.time[i]), filled_at))
    return None


def same_level(current: float | None, new: float | None, point: float) -> bool:
    """Whether a stop or target moved to `new` stays where it is (within half a point)."""
    if current is None or new is None:
        return current is None and new is None
    return abs(current - new) < point / 2


# --- money ---------------------------------------------------------------------------------
def profit(direction: str, price_open: Price | float, price_close: Price | float, volume: float,
           contract_size: float) -> Price:
    """P&L in the symbol's profit currency (numbers or numpy arrays of prices)."""
    sign = 1.0 if direction == "buy" else -1.0
    return sign * (price_close - price_open) * volume * contract_size   # type: ignore[return-value]


def margin(price: Price | float, volume: float, contract_size: float, leverage: float) -> Price:
    """The margin a position of `volume` lots at `price` holds (numbers or a numpy array of prices)."""
    return price * volume * contract_size / leverage   # type: ignore[return-value]


def equity(balance: float, floating: Iterable[float]) -> float:
    """The balance plus the open positions' floating P&L (in their order)."""
    return balance + sum(floating)


def free_margin(equity: float, held: float) -> float:
    """The equity less `held`, the margin the open positions hold (their `margin`s summed in order)."""
    return equity - held


def no_money(needed: float, free_margin: float) -> bool:
    """Whether an order needing `needed` margin is refused (MT5's NO_MONEY)."""
    return needed > free_margin


@overload
def stopped_out(equity: float) -> bool: ...
@overload
def stopped_out(equity: np.ndarray) -> np.ndarray: ...
def stopped_out(equity: float | np.ndarray) -> bool | np.ndarray:
    """Whether the broker closes every position (True/False, or per element of an array):
    nothing is left to hold them."""
    return equity <= 0.0
