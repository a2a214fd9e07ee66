"""History scan: every raw signal (before risk) the strategies give on a history.

Used by the `scan` command and by the backtester. Each bar t from lookback-1 on
is evaluated on its own window t-lookback+1 .. t, exactly as the live engine
would, but for all bars at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from scalper.core.bars import Bars
from scalper.core.indicators import ema, window_count
from scalper.core.signals import Signal
from scalper.core.strategies import STRATEGY_NAMES, ScanResult, get, resolve_params
from scalper.core.strategies.views import HistoryView

__all__ = ["ScanResult", "format_bar_time", "scan_history", "signals_to_rows"]

_ORDER = {name: i for i, name in enumerate(STRATEGY_NAMES)}
SEGMENT_WINDOWS = 1 << 15   # windows scanned at once


def scan_history(history: Bars, strategies: list[str] | None = None,
                 params: Mapping[str, Mapping[str, Any]] | None = None, lookback: int = 100,
                 view: HistoryView | None = None) -> ScanResult:
    """Scan `history` with `strategies` (default: all, canonical order).

    `params` maps a strategy name to its overrides; they are validated like a
    config's (ValueError saying what to fix). `view`: a HistoryView of this very
    history and lookback, kept by a caller that scans it many times (the optimiser),
    so its indicators are computed once.
    """
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 1:
        raise ValueError(f"lookback={lookback!r} must be a whole number of bars of at least 1")
    names = list(STRATEGY_NAMES if strategies is None else strategies)
    params = dict(params or {})
    for name in [*names, *params]:
        get(name)  # unknown names fail here, listing the valid ones
    if view is not None:   # a caller's view, kept across scans (the optimiser): one pass over it
        if view.history is not history or view.lookback != lookback:
            raise ValueError("the view given is not of this history and lookback")
        result = ScanResult(evaluated=view.count)
        for name in names:
            part = get(name).STRATEGY.scan_view(view, resolve_params(name, params.get(name), lookback))
            result.signals.extend(part.signals)
            for reason, n in part.skips.items():
                result.skips[reason] = result.skips.get(reason, 0) + n
        result.signals.sort(key=lambda s: (s.bar_time, _ORDER[s.strategy]))
        return result
    resolved = {name: resolve_params(name, params.get(name), lookback) for name in names}
    count = window_count(len(history), lookback)
    result = ScanResult(evaluated=count)
    # The windows go in parts of SEGMENT_WINDOWS (each with the lookback-1 bars before it), so
    # that the per-window arrays of a long history are never all held at once; the history
    # EMAs run on from part to part, so every value is what one pass over the whole gives.
    emas = _RunningEma(history.close)
    for first in range(0, max(count, 1), SEGMENT_WINDOWS):
        part_end = min(count, first + SEGMENT_WINDOWS)
        whole = first == 0 and part_end == count
        stop = part_end + lookback - 1

        def ema_over(period: int, first: int = first, stop: int = stop) -> np.ndarray:
            return emas.over(period, first, stop)

        view = HistoryView(history if whole else history.slice(first, stop), lookback,
                           None if whole else ema_over)
        for name in names:  # the view is shared: indicators are computed once per part
            part = get(name).STRATEGY.scan_view(view, resolved[name])
            result.signals.extend(part.signals)
            for reason, n in part.skips.items():
                result.skips[reason] = result.skips.get(reason, 0) + n
        del view
    result.signals.sort(key=lambda s: (s.bar_time, _ORDER[s.strategy]))
    return result


class _RunningEma:
    """The EMA seeded at the history's first bar, computed part by part for parts that move
    forward: each part continues the recurrence from the last value of the one before."""

    def __init__(self, close: np.ndarray):
        self.close = close
        self.parts: dict[int, tuple[int, np.ndarray]] = {}   # period -> (first bar, values from there)

    def over(self, period: int, start: int, stop: int) -> np.ndarray:
        """EMA values of bars start .. stop-1 (start never before an earlier call's)."""
        have = self.parts.get(period)
        if have is None:
            first, values = 0, ema(self.close[:stop], period)
        else:
            first, values = have
            done = first + len(values)
            if stop > done:   # e_i = a*c_i + (1-a)*e_{i-1}, from the last value known
                more = ema(np.concatenate((values[-1:], self.close[done:stop])), period)[1:]
                values = np.concatenate((values[start - first:], more))
                first = start
        self.parts[period] = (first, values)
        return values[start - first:stop - first]


def format_bar_time(epoch: int) -> str:
    """'YYYY-MM-DD HH:MM:SS' of an epoch value read as UTC (the file's own clock)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def signals_to_rows(signals: Iterable[Signal], digits: int | None = None) -> list[dict[str, Any]]:
    """Rows of the scan output: bar_time, strategy, direction, entry, sl, tp, score.
    With `digits`, prices are rounded to them and the score to 4 decimals (what a
    trader reads); without, full precision (the golden file's)."""
    if digits is None:
        return [{"bar_time": format_bar_time(s.bar_time), "strategy": s.strategy,
                 "direction": s.direction, "entry": float(s.entry), "sl": float(s.sl),
                 "tp": float(s.tp), "score": float(s.score)} for s in signals]
    return [{"bar_time": format_bar_time(s.bar_time), "strategy": s.strategy, "direction": s.direction,
             "entry": _round(s.entry, digits), "sl": _round(s.sl, digits), "tp": _round(s.tp, digits),
             "score": _round(s.score, 4)} for s in signals]


def _round(value: float, decimals: int) -> float:
    out = round(float(value), decimals)
    return 0.0 if out == 0 else out


def price_decimals(bars: Bars, most: int = 8) -> int:
    """How many decimals the file's prices carry (2 for 3125.66): the digits of a symbol
    whose spec is not known."""
    prices = np.concatenate([bars.open, bars.high, bars.low, bars.close]) if len(bars) else np.zeros(1)
    scale = max(1.0, float(np.abs(prices).max()))
    for d in range(most + 1):
        if np.allclose(np.round(prices, d), prices, rtol=0, atol=scale * 1e-12 + 10.0 ** -(d + 6)):
            return d
    return most
