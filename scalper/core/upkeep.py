"""Position rules applied every run: trailing stops and the unrealized-loss kill-switch."""

from __future__ import annotations

from typing import Literal


def trailing_stop(direction: Literal["buy", "sell"], entry: float, initial_sl: float,
                  current_sl: float | None, price: float, *, activate_r: float,
                  distance_r: float) -> float | None:
    """A tighter SL, or None to leave it. R is the initial risk (entry → initial SL).

    Trailing starts once the price is `activate_r` R in profit, then keeps the
    stop `distance_r` R behind the price. A stop only ever moves toward profit.
    """
    r = abs(entry - initial_sl)
    if r <= 0:
        return None
    if direction == "buy":
        if price - entry < activate_r * r:
            return None
        candidate = price - distance_r * r
        if current_sl is None or candidate > current_sl + 1e-12:
            return candidate
    else:
        if entry - price < activate_r * r:
            return None
        candidate = price + distance_r * r
        if current_sl is None or candidate < current_sl - 1e-12:
            return candidate
    return None


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
