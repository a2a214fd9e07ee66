"""The indicators of docs/strategies.md, on numpy arrays.

Two shapes of the same arithmetic:

- over one series, bar by bar (`true_range`, `atr`, `ema`): what a window sees;
- for every window of `lookback` bars of a long history at once
  (`window_atr`, `window_ema`, `rolling_min`, `rolling_max`): the value each
  window would compute for itself, in one vectorized pass.

`atr` and `window_atr` add the true ranges in the same order, so the live and
the fast path get bit-identical ATRs. The windowed EMA uses the linearity of the
recurrence and stays within ~1e-15 relative of the per-window recurrence.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate
from typing import TypeAlias

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

ATR_PERIOD = 14

# A price series, oldest first: a numpy array (bars' columns) or a plain list (tests, small callers).
PriceSeries: TypeAlias = "np.ndarray | Sequence[float]"


def _floats(*arrays: PriceSeries) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def true_range(high: PriceSeries, low: PriceSeries, close: PriceSeries) -> np.ndarray:
    """TR_0 = range_0; TR_i = max(high_i, close_{i-1}) - min(low_i, close_{i-1})."""
    high, low, close = _floats(high, low, close)
    tr = np.empty_like(high)
    if len(tr):
        tr[0] = high[0] - low[0]
        prev_close = close[:-1]
        tr[1:] = np.maximum(high[1:], prev_close) - np.minimum(low[1:], prev_close)
    return tr


def _trailing_sums(first: np.ndarray, rest: np.ndarray, period: int) -> np.ndarray:
    """s[k] = first[k] + rest[k+1] + ... + rest[k+period-1], for k = 0 .. len-period.

    Added oldest first in a fixed order, so every caller gets the same float for
    the same bars (a running cumsum would not, and drifts over long histories).
    """
    count = len(rest) - period + 1
    sums = first[:count].copy()
    for k in range(1, period):
        sums += rest[k:k + count]
    return sums


def atr(high: PriceSeries, low: PriceSeries, close: PriceSeries, period: int = ATR_PERIOD) -> np.ndarray:
    """ATR_i = simple mean of TR_{i-period+1} .. TR_i; NaN for the first period-1 bars."""
    tr = true_range(high, low, close)
    out = np.full(len(tr), np.nan)
    if len(tr) >= period:
        out[period - 1:] = _trailing_sums(tr, tr, period) / period
    return out


# ema()'s version: stored history EMAs (core.scan, kept in the bar cache) of another are not read. Bump it
# with any change to the values ema() or _ewm_mean give (the continuation of a series from part to
# part is core.scan's, and the switch point LONG_SERIES is in the key already).
EMA_VERSION = 1
LONG_SERIES = 5_000   # bars from which ema() runs pandas' recurrence (or its exact copy, _ewm_mean)
# Bars of long EMAs a process runs through _ewm_mean (~55 ns a bar) before importing pandas (~0.2 s)
# is the cheaper way: a scan's two periods stay in Python, an optimiser's many periods do not.
PYTHON_EMA_BARS = 3_000_000
_python_ema_bars = 0


def ema(close: PriceSeries, period: int) -> np.ndarray:
    """e_0 = close_0; e_i = a*close_i + (1-a)*e_{i-1}, a = 2/(period+1).

    A history (backtest, scan) goes through pandas' ewm(adjust=False) when pandas is loaded
    anyway (a CSV was parsed), else through _ewm_mean, its arithmetic step for step, for up to
    PYTHON_EMA_BARS: a bar file read from the bar cache needs no pandas (~0.2 s to import). Both
    give bit for bit the Python loop's values on the shared data for every period up to 2,000,
    and on random walks; a live window (100 bars) stays in the Python loop: run-once does not
    import pandas."""
    global _python_ema_bars
    if len(close) >= LONG_SERIES:
        series = np.asarray(close, dtype=np.float64)
        if "pandas" not in sys.modules and _python_ema_bars < PYTHON_EMA_BARS and bool(np.isfinite(series).all()):
            exact = _ewm_mean(series, period)
            if exact is not None:
                _python_ema_bars += len(series)
                return exact
        import pandas as pd

        smoothed: np.ndarray = pd.Series(series).ewm(span=period, adjust=False).mean().to_numpy()
        return smoothed
    closes = np.asarray(close, dtype=np.float64).tolist()
    if not closes:
        return np.empty(0)
    a = 2.0 / (period + 1)
    b = 1.0 - a
    values = accumulate(closes[1:], lambda e, c: a * c + b * e, initial=closes[0])
    return np.fromiter(values, dtype=np.float64, count=len(closes))


def _ewm_mean(close: np.ndarray, period: int) -> np.ndarray | None:
    """pandas' ewm(span=period, adjust=False).mean() of finite values, operation for operation
    (pandas/_libs/window/aggregations.pyx, ewm): alpha from the centre of mass, and the step
    skipped when the value equals the mean. pandas then divides by the weights' sum, (1-alpha) +
    alpha, which is exactly 1.0 for every period up to 5,000 (None otherwise: pandas does it)."""
    alpha = 1.0 / (1.0 + (period - 1) / 2.0)
    old = 1.0 - alpha
    if old + alpha != 1.0:
        return None

    def means(values: list[float]) -> Iterator[float]:
        e = values[0]
        for c in values:
            if e != c:
                e = old * e + alpha * c
            yield e

    return np.fromiter(means(close.tolist()), dtype=np.float64, count=len(close))


def window_count(n_bars: int, lookback: int) -> int:
    """How many full windows of `lookback` bars a history of `n_bars` holds."""
    return max(0, n_bars - lookback + 1)


def window_atr(high: PriceSeries, low: PriceSeries, close: PriceSeries, lookback: int,
               period: int = ATR_PERIOD) -> np.ndarray:
    """For each window of `lookback` bars (the k-th ends at bar k+lookback-1), its ATR at its last bar."""
    high, low, close = _floats(high, low, close)
    count = window_count(len(high), lookback)
    if count == 0 or lookback < period:
        return np.full(count, np.nan)
    tr = true_range(high, low, close)
    if lookback == period:
        # The mean spans the whole window, whose first TR is its own range.
        return _trailing_sums(high - low, tr, period) / period
    return _trailing_sums(tr, tr, period)[lookback - period:] / period


def window_ema(close: PriceSeries, period: int, lookback: int, back: int = 0,
               history_ema: np.ndarray | None = None) -> np.ndarray:
    """For each window of `lookback` bars, its own EMA (seeded at the window's
    first close) read `back` bars before its last bar.

    The recurrence is linear, so the window seeded at bar s satisfies
    e_j = E_j + (1-a)^(j-s) * (close_s - E_s), with E the EMA seeded at the
    history's first bar (pass it as `history_ema` to reuse it).
    """
    close = np.asarray(close, dtype=np.float64)
    count = window_count(len(close), lookback)
    full: NDArray[np.float64] = ema(close, period) if history_ema is None else history_ema
    steps = lookback - 1 - back
    decay = (1.0 - 2.0 / (period + 1)) ** steps
    return full[steps:steps + count] + decay * (close[:count] - full[:count])


SHORT_ROLL = 256   # values up to which a rolling min/max is reduced window by window


def _rolling(values: PriceSeries, count: int, pick: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """r[k] = pick over values[k .. k+count-1], with pick np.minimum or np.maximum.

    A long series doubles the span instead of reducing every window (log2(count) passes over
    the series, not count): m[i] covers values[i .. i+span-1], and a window of `count` is the
    union of the span at its start and the span ending at its end. min/max are exact, so the
    values are those of the window-by-window reduction (NaN propagates the same way)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) <= SHORT_ROLL or count < 2 or count > len(values):
        windows = sliding_window_view(values, count)
        reduced: np.ndarray = windows.min(axis=1) if pick is np.minimum else windows.max(axis=1)  # stubs: Any
        return reduced
    n = len(values) - count + 1
    span, m = 1, values
    while span * 2 <= count:
        m = pick(m[:-span], m[span:])
        span *= 2
    return pick(m[:n], m[count - span:count - span + n])


def rolling_min(values: PriceSeries, count: int) -> np.ndarray:
    """r[k] = min(values[k .. k+count-1])."""
    return _rolling(values, count, np.minimum)


def rolling_max(values: PriceSeries, count: int) -> np.ndarray:
    """r[k] = max(values[k .. k+count-1])."""
    return _rolling(values, count, np.maximum)
