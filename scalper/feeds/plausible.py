"""Which bar prices are believable, whatever feed they come from (csv, builtin, mt5).

A price that parses as a number is not yet a price: `1e308` is a float, and one
such bar books an infinite profit. Every feed runs its bars through these
checks before anything downstream (strategies, fills, P&L) sees them.

What "implausible" means here (all on the bar's open, high, low and close):
- not finite (NaN, ±inf), or not > 0 (the feeds name those themselves);
- above PRICE_MAX (1e10): no instrument is quoted that high in any currency
  (bitcoin in Indonesian rupiah is about 1.7e9), and below it every money
  figure (price × lots × contract size) stays far from overflow;
- a bar whose high is more than JUMP_FACTOR (5) times its low: a fivefold move
  inside one minute is a typing or unit error, not a market;
- a bar with a price more than JUMP_FACTOR times above, or below 1/JUMP_FACTOR
  of, the median close of the NEIGHBOUR_WINDOW (15) bars around it: a lone
  spike (a slipped decimal point, a price in another unit) among sane bars.
  The median is taken over the bars around it, itself included, so a single
  bad bar never condemns its neighbours.
Real data is far inside these bounds: the shared XAUUSD and BTCUSD exports move
at most a few percent per minute, flash crashes of FX and metals well under 2x.

The functions take plain arrays (the parsed columns), so any reader can call them.
"""

from __future__ import annotations

import numpy as np

PRICE_MAX = 1e10
JUMP_FACTOR = 5.0
NEIGHBOUR_WINDOW = 15

KIND_LABELS = {
    "too_large": f"a price above {PRICE_MAX:.0e}",
    "wide_bar": f"a high more than {JUMP_FACTOR:g}x its low",
    "spike": f"a price more than {JUMP_FACTOR:g}x away from the bars around it",
}


def too_large(*prices: np.ndarray) -> np.ndarray:
    """Rows with a price above PRICE_MAX."""
    with np.errstate(invalid="ignore"):
        return np.logical_or.reduce([p > PRICE_MAX for p in prices])


def wide_bar(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Rows whose high is more than JUMP_FACTOR times the low (both assumed > 0)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return high > low * JUMP_FACTOR


def neighbour_median(close: np.ndarray) -> np.ndarray:
    """The median close of the NEIGHBOUR_WINDOW bars centred on each bar (fewer at the ends)."""
    n, half = len(close), NEIGHBOUR_WINDOW // 2
    out = np.empty(n)
    if n >= NEIGHBOUR_WINDOW:
        from numpy.lib.stride_tricks import sliding_window_view

        out[half:n - half] = np.median(sliding_window_view(close, NEIGHBOUR_WINDOW), axis=1)
        ends = [*range(half), *range(n - half, n)]
    else:
        ends = list(range(n))
    for i in ends:
        out[i] = np.median(close[max(0, i - half):i + half + 1])
    return out


def spikes(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Rows with a price more than JUMP_FACTOR times away from the median close around them."""
    if len(close) < 3 or not high.max() > low.min() * JUMP_FACTOR:
        # every median lies in [lowest low, highest high]: no price can be that far from one
        return np.zeros(len(close), dtype=bool)
    ref = neighbour_median(close)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return (high > ref * JUMP_FACTOR) | (low * JUMP_FACTOR < ref)


def problems(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
             ) -> list[tuple[str, np.ndarray]]:
    """(kind, boolean mask) for each kind of implausible bar, in the order to report them.
    Rows are expected to have passed the basic checks (finite, > 0, low <= open/close <= high);
    a row flagged by one kind is left out of the later ones."""
    out = []
    bad = too_large(open_, high, low, close)
    out.append(("too_large", bad.copy()))
    wide = wide_bar(high, low) & ~bad
    out.append(("wide_bar", wide))
    bad |= wide
    keep = np.flatnonzero(~bad)
    spike = np.zeros(len(close), dtype=bool)
    spike[keep] = spikes(high[keep], low[keep], close[keep])
    out.append(("spike", spike))
    return out


def check_price(price: float, source: str) -> float:
    """A single quote (a live price): DataError unless finite, > 0 and at most PRICE_MAX."""
    import math

    from scalper.errors import DataError

    if not (math.isfinite(price) and 0 < price <= PRICE_MAX):
        raise DataError(f"implausible price {price!r}; not trading on it", where=source,
                        fix="check the feed's quotes for this symbol, then run again")
    return price


def check_bars(bars, source: str) -> None:
    """Raise DataError naming `source` and the first bar that is not finite, not > 0 or implausible.
    For feeds without a file (builtin, mt5): their bars are checked as a whole."""
    from scalper.clock import bar_iso
    from scalper.errors import DataError

    if not len(bars):
        return
    prices = (bars.open, bars.high, bars.low, bars.close)
    with np.errstate(invalid="ignore"):
        basic = ~np.logical_and.reduce([np.isfinite(p) & (p > 0) for p in prices])
    found = [("not_finite", basic)]
    checked = ~basic
    idx = np.flatnonzero(checked)
    for kind, mask in problems(*(p[idx] for p in prices)):
        full = np.zeros(len(bars), dtype=bool)
        full[idx] = mask
        found.append((kind, full))
    firsts = [(int(np.flatnonzero(m)[0]), kind) for kind, m in found if m.any()]
    if not firsts:
        return
    row, kind = min(firsts)
    label = "a price that is not a finite positive number" if kind == "not_finite" else KIND_LABELS[kind]
    values = ", ".join(f"{name} {float(p[row]):.15g}" for name, p in zip(("open", "high", "low", "close"), prices))
    raise DataError(f"the bar at {bar_iso(int(bars.time[row]))} has {label} ({values}); not trading on it",
                    where=source, fix="check the feed's history for this symbol (bad ticks), then run again")
