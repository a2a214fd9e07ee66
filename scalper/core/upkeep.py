"""Position rules applied every run: trailing stops and the unrealized-loss kill-switch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    import numpy as np


def trailing_stop(direction: Literal["buy", "sell"], entry: float, initial_sl: float,
                  current_sl: float | None, price: float, *, activate_r: float,
                  distance_r: float) -> float | None:
    """A tighter SL, or None to leave it. R is the initial risk (entry → initial SL).

    Trailing starts once the price is `activate_r` R in profit, then keeps the
    stop `distance_r` R behind the price. A stop only ever moves toward profit.
    """
    candidate = trailing_candidates(direction, entry, initial_sl, price, activate_r=activate_r,
                                    distance_r=distance_r)
    if candidate is None:
        return None
    if direction == "buy":
        if current_sl is None or candidate > current_sl + 1e-12:
            return candidate
    elif current_sl is None or candidate < current_sl - 1e-12:
        return candidate
    return None


@overload
def trailing_candidates(direction: Literal["buy", "sell"], entry: float, initial_sl: float, price: float, *,
                        activate_r: float, distance_r: float) -> float | None: ...
@overload
def trailing_candidates(direction: Literal["buy", "sell"], entry: float, initial_sl: float, price: np.ndarray, *,
                        activate_r: float, distance_r: float) -> np.ndarray: ...
def trailing_candidates(direction: Literal["buy", "sell"], entry: float, initial_sl: float, price: Any, *,
                        activate_r: float, distance_r: float) -> Any:
    """The stop `distance_r` R behind `price` once it is `activate_r` R in profit, else None.

    `price` may be a numpy array (the backtester's bars): then an array, NaN where not active."""
    r = abs(entry - initial_sl)
    if direction == "buy":
        active, candidate = price - entry >= activate_r * r, price - distance_r * r
    else:
        active, candidate = entry - price >= activate_r * r, price + distance_r * r
    if getattr(active, "shape", ()) == ():   # one price
        return candidate if active and r > 0 else None
    import numpy as np

    return np.where(active & (r > 0), candidate, np.nan)


def kill_switch_tripped(unrealized: float, balance: float, *, loss_limit: float | None,
                        loss_limit_pct: float | None) -> str | None:
    """The reason text if the floating loss is past a limit, else None."""
    loss = -unrealized
    if loss <= 0:
        return None
    if loss_limit is not None and loss >= loss_limit:
        return f"unrealized loss {loss:.2f} >= limit {loss_limit:.2f}"
    if loss_limit_pct is not None and balance > 0 and loss >= balance * loss_limit_pct / 100.0:
        return f"unrealized loss {loss:.2f} >= {loss_limit_pct:g}% of balance {balance:.2f}"
    return None
