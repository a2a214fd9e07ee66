"""Which SL/TP levels a broker accepts (MetaTrader 5's rule), for the paper
broker and the backtester alike: an order or a stop change breaking it is
refused (10016, invalid stops) and nothing changes."""

from __future__ import annotations

from typing import Literal


def stops_valid(side: Literal["buy", "sell"], sl: float | None, tp: float | None, *, bid: float, ask: float,
                min_distance: float = 0.0) -> bool:
    """A buy is valued at the bid, a sell at the ask; each level must lie on its
    own side of that price, at least `min_distance` (stops level × point) away."""
    if side == "buy":
        return (sl is None or sl < bid - min_distance) and (tp is None or tp > bid + min_distance)
    return (sl is None or sl > ask + min_distance) and (tp is None or tp < ask - min_distance)
