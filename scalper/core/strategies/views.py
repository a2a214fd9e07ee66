"""What a strategy reads about its signal bar t, for one window or for every window.

A strategy's rules are written once against this small interface:

    candle(back)          bar t-back with its anatomy (range, body, wicks)
    atr()                 A = ATR_t
    ema(period, back)     the window's EMA at bar t-back
    lowest_low(count)     min(low_{t-count} .. low_{t-1})
    highest_high(count)   max(high_{t-count} .. high_{t-1})
    eps                   the comparison tolerance of bar t

`WindowView` answers with floats for one window (the live path, bar t = last).
`HistoryView` answers with arrays holding, at position k, what the window
ending at history bar k+lookback-1 would answer (the fast path). Both cache what
they compute, so several strategies can share one view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeAlias, TypeVar

import numpy as np

from scalper.core import indicators
from scalper.core.bars import Bars
from scalper.core.strategies.tolerance import Value, gt, lt, tolerance

T = TypeVar("T")


class Candle(NamedTuple):
    """One bar and its anatomy (floats, or arrays in the fast path)."""
    open: Value
    high: Value
    low: Value
    close: Value
    range: Value   # high - low
    body: Value    # abs(close - open)
    upper: Value   # high - max(open, close)
    lower: Value   # min(open, close) - low


def candle(open_: Value, high: Value, low: Value, close: Value) -> Candle:
    return Candle(open_, high, low, close,
                  range=high - low,
                  body=abs(close - open_),
                  upper=high - np.maximum(open_, close),
                  lower=np.minimum(open_, close) - low)


def bullish(bar: Candle, eps: Value) -> Value:
    return gt(bar.close, bar.open, eps)


def bearish(bar: Candle, eps: Value) -> Value:
    return lt(bar.close, bar.open, eps)


class WindowView:
    """One window; its signal bar is the last one."""

    def __init__(self, window: Bars) -> None:
        self._bars = window
        self._last = len(window) - 1
        self._candles: dict[int, Candle] = {}
        self._emas: dict[int, np.ndarray] = {}
        self._atr: float | None = None
        self.eps = tolerance(self.candle().close)

    def candle(self, back: int = 0) -> Candle:
        if back not in self._candles:
            i = self._last - back
            b = self._bars
            self._candles[back] = candle(float(b.open[i]), float(b.high[i]), float(b.low[i]),
                                         float(b.close[i]))
        return self._candles[back]

    def atr(self) -> float:
        if self._atr is None:
            # ATR_t needs the last 14 true ranges, hence one more close before them.
            tail = slice(-(indicators.ATR_PERIOD + 1), None)
            b = self._bars
            self._atr = float(indicators.atr(b.high[tail], b.low[tail], b.close[tail])[-1])
        return self._atr

    def ema(self, period: int, back: int = 0) -> float:
        if period not in self._emas:
            self._emas[period] = indicators.ema(self._bars.close, period)
        return float(self._emas[period][self._last - back])

    def lowest_low(self, count: int) -> float:
        return float(self._bars.low[self._last - count:self._last].min())

    def highest_high(self, count: int) -> float:
        return float(self._bars.high[self._last - count:self._last].max())


class HistoryView:
    """Every full window of `lookback` bars of a history, at once."""

    def __init__(self, history: Bars, lookback: int,
                 history_ema: Callable[[int], np.ndarray] | None = None) -> None:
        """`history_ema(period)`, when given, supplies the EMA seeded at an earlier first bar
        (a longer history this one is a part of), for values that do not depend on the part."""
        if lookback < 1:
            raise ValueError(f"lookback={lookback} must be at least 1 bar")
        self.history = history
        self._history_ema = history_ema
        self.lookback = lookback
        self.count = indicators.window_count(len(history), lookback)
        self.bar_times = history.time[lookback - 1:]
        self._cache: dict[tuple[object, ...], Any] = {}
        self.eps = tolerance(self.candle().close)

    def _cached(self, key: tuple[object, ...], compute: Callable[[], T]) -> T:
        if key not in self._cache:
            self._cache[key] = compute()
        value: T = self._cache[key]
        return value

    def _at_signal_bars(self, values: np.ndarray, back: int) -> np.ndarray:
        """values[t-back] for every signal bar t."""
        start = self.lookback - 1 - back
        return values[start:start + self.count]

    def candle(self, back: int = 0) -> Candle:
        h = self.history
        return self._cached(("candle", back), lambda: candle(
            *(self._at_signal_bars(a, back) for a in (h.open, h.high, h.low, h.close))))

    def atr(self) -> np.ndarray:
        h = self.history
        return self._cached(("atr",), lambda: indicators.window_atr(h.high, h.low, h.close,
                                                                    self.lookback))

    def ema(self, period: int, back: int = 0) -> np.ndarray:
        full = self._cached(("ema", period), lambda: indicators.ema(self.history.close, period)
                            if self._history_ema is None else self._history_ema(period))
        return self._cached(("window_ema", period, back), lambda: indicators.window_ema(
            self.history.close, period, self.lookback, back, history_ema=full))

    def lowest_low(self, count: int) -> np.ndarray:
        lows = self._cached(("rolling_min", count),
                            lambda: indicators.rolling_min(self.history.low, count))
        return self._at_signal_bars(lows, count)  # lows[t-count] covers t-count .. t-1

    def highest_high(self, count: int) -> np.ndarray:
        highs = self._cached(("rolling_max", count),
                             lambda: indicators.rolling_max(self.history.high, count))
        return self._at_signal_bars(highs, count)


# What a strategy's rules read: one window (floats) or every window of a history (arrays).
View: TypeAlias = WindowView | HistoryView
