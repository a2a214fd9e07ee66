"""Which SL/TP levels a broker accepts (MetaTrader 5's rule), for the paper
broker and the backtester alike: an order or a stop change breaking it is
refused (10016, invalid stops) and nothing changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    import numpy as np


@overload
def stops_valid(side: Literal["buy", "sell"], sl: float | None, tp: float | None, *, bid: float, ask: float,
                min_distance: float = 0.0) -> bool: ...
@overload
def stops_valid(side: Literal["buy", "sell"], sl: np.ndarray | float | None, tp: np.ndarray | float | None, *,
                bid: np.ndarray, ask: np.ndarray, min_distance: float = 0.0) -> np.ndarray: ...
def stops_valid(side: Literal["buy", "sell"], sl: Any, tp: Any, *, bid: Any, ask: Any,
                min_distance: float = 0.0) -> Any:
    """A buy is valued at the bid, a sell at the ask; each level must lie on its
    own side of that price, at least `min_distance` (stops level × point) away.

    Works on numpy arrays of levels and prices too (an array of answers)."""
    if side == "buy":
        return _beyond(bid - min_distance, sl, below=True) & _beyond(bid + min_distance, tp, below=False)
    return _beyond(ask + min_distance, sl, below=False) & _beyond(ask - min_distance, tp, below=True)


def _beyond(price: Any, level: Any, *, below: bool) -> Any:
    """`level` strictly below (or above) `price`: a bool, or an array of them; no level passes."""
    if level is None:
        return True
    return level < price if below else level > price
