"""The simulated fill model, shared by the paper broker and the backtester,
so that a replay through the paper broker and a backtest agree.

Bar prices are read as mid prices. A market order fills at the latest price
(the open of the bar forming at that instant) plus half the spread for a buy,
minus half for a sell. A position's SL/TP is checked against each later bar:
- a bar that opens beyond a level exits at that open (a gap fills worse/better);
- otherwise a bar whose range reaches a level exits at the level;
- one bar touching both SL and TP counts as the SL (the cautious reading).
"""

from __future__ import annotations

from typing import Literal

Direction = Literal["buy", "sell"]


def entry_price(direction: Direction, price: float, spread_points: float, point: float) -> float:
    half = 0.5 * spread_points * point
    return price + half if direction == "buy" else price - half


def bar_exit(direction: Direction, sl: float | None, tp: float | None,
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


def exit_bars(direction: Direction, sl, tp: float | None, open_, high, low):
    """Vector form of `bar_exit` over many bars (numpy arrays; `sl` may vary per bar):
    True where `bar_exit` would close the position."""
    import numpy as np

    never = np.zeros(len(open_), dtype=bool)
    sl_hit = never if sl is None else ((open_ <= sl) | (low <= sl) if direction == "buy"
                                       else (open_ >= sl) | (high >= sl))
    tp_hit = never if tp is None else ((open_ >= tp) | (high >= tp) if direction == "buy"
                                       else (open_ <= tp) | (low <= tp))
    return sl_hit | tp_hit


def profit(direction: Direction, price_open: float, price_close: float, volume: float,
           contract_size: float) -> float:
    """P&L in the symbol's profit currency."""
    sign = 1.0 if direction == "buy" else -1.0
    return sign * (price_close - price_open) * volume * contract_size
