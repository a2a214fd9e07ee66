"""History scan: every raw signal (before risk) the strategies give on a history.

Used by the `scan` command and by the backtester. Each bar t from lookback-1 on
is evaluated on its own window t-lookback+1 .. t, exactly as the live engine
would, but for all bars at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from operator import attrgetter
from typing import Protocol

import numpy as np

from scalper.core.bars import Bars
from scalper.core.indicators import EMA_VERSION, LONG_SERIES, ema, window_count
from scalper.core.rules import DEFAULT_LOOKBACK
from scalper.core.signals import Signal
from scalper.core.strategies import STRATEGY_NAMES, ScanResult, get, resolve_params
from scalper.core.strategies.params import Params
from scalper.core.strategies.views import HistoryView

__all__ = ["ScanResult", "price_decimals", "scan_history"]

_ORDER = {name: i for i, name in enumerate(STRATEGY_NAMES)}
SEGMENT_WINDOWS = 1 << 15   # windows scanned at once


class EmaStore(Protocol):
    """Where a caller keeps values derived from one history's closes across runs (the bar cache):
    by key, as the scan computed them."""

    def covers(self, close: np.ndarray) -> bool:
        """Whether the store is that of these very closes."""
        ...

    def get(self, key: str) -> np.ndarray | None: ...

    def put(self, key: str, values: np.ndarray) -> None: ...


def scan_history(history: Bars, strategies: list[str] | None = None,
                 params: Mapping[str, Params] | None = None, lookback: int = DEFAULT_LOOKBACK,
                 view: HistoryView | None = None, emas: EmaStore | None = None,
                 counted: tuple[float | None, float | None] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ScanResult:
    """Scan `history` with `strategies` (default: all, canonical order).

    `params` maps a strategy name to its overrides; they are validated like a
    config's (ValueError saying what to fix). `view`: a HistoryView of this very
    history and lookback, kept by a caller that scans it many times (the optimiser),
    so its indicators are computed once. `emas`: a store of this history's closes, where
    the history EMAs of an earlier scan are found and those this one computes are kept.
    `counted`: (first, last) bar open times (either None: open) of the windows that `evaluated`
    and the skips count — a span of the history asked for; the signals are every window's.
    `progress(done, total)`: told after each strategy of each part (not with `view`).
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
        mask = _counted(view.bar_times, counted)
        result = ScanResult(evaluated=view.count if mask is None else int(np.count_nonzero(mask)))
        found: dict[str, list[Signal]] = {name: [] for name in names}
        for name in names:
            part = get(name).STRATEGY.scan_view(view, resolve_params(name, params.get(name), lookback), mask)
            found[name].extend(part.signals)
            for reason, n in part.skips.items():
                result.skips[reason] = result.skips.get(reason, 0) + n
        result.signals = in_order(found)
        return result
    if emas is not None and not emas.covers(history.close):
        raise ValueError("the EMA store given is not of this history's closes")
    resolved = {name: resolve_params(name, params.get(name), lookback) for name in names}
    count = window_count(len(history), lookback)
    result = ScanResult()
    found = {name: [] for name in names}
    # The windows go in parts of SEGMENT_WINDOWS (each with the lookback-1 bars before it), so
    # that the per-window arrays of a long history are never all held at once; the history
    # EMAs run on from part to part, so every value is what one pass over the whole gives.
    running = _RunningEma(history.close, emas, lookback)
    steps, done = len(range(0, max(count, 1), SEGMENT_WINDOWS)) * len(names), 0
    if progress is not None:
        progress(0, steps)
    for first in range(0, max(count, 1), SEGMENT_WINDOWS):
        part_end = min(count, first + SEGMENT_WINDOWS)
        whole = first == 0 and part_end == count
        stop = part_end + lookback - 1
        view = HistoryView(history if whole else history.slice(first, stop), lookback,
                           None if whole and emas is None else partial(running.over, start=first, stop=stop))
        mask = _counted(view.bar_times, counted)
        result.evaluated += view.count if mask is None else int(np.count_nonzero(mask))
        for name in names:  # the view is shared: indicators are computed once per part
            part = get(name).STRATEGY.scan_view(view, resolved[name], mask)
            found[name].extend(part.signals)
            for reason, n in part.skips.items():
                result.skips[reason] = result.skips.get(reason, 0) + n
            done += 1
            if progress is not None:
                progress(done, steps)
        del view
    running.keep()
    result.signals = in_order(found)
    return result


def _counted(bar_times: np.ndarray, span: tuple[float | None, float | None] | None) -> np.ndarray | None:
    """Which windows (by their signal bar's open time) lie in `span`; None for all of them."""
    if span is None or span == (None, None):
        return None
    first, last = span
    inside = np.ones(len(bar_times), dtype=bool)
    if first is not None:
        inside &= bar_times >= first
    if last is not None:
        inside &= bar_times <= last
    return inside


def in_order(found: dict[str, list[Signal]]) -> list[Signal]:
    """The signals sorted by (bar time, canonical strategy order): each strategy's, in canonical
    order, then a stable sort on the bar time alone (a C key; equal times keep that order)."""
    signals = [s for name in sorted(found, key=_ORDER.__getitem__) for s in found[name]]
    signals.sort(key=attrgetter("bar_time"))
    return signals


class _RunningEma:
    """The EMA seeded at the history's first bar, computed part by part for parts that move
    forward: each part continues the recurrence from the last value of the one before. With a
    store, a period's values are read whole from it when an earlier scan kept them (under a key
    naming everything they depend on: the parts' bounds, and indicators.ema's own version), and
    the values computed are kept there once every part has been through."""

    def __init__(self, close: np.ndarray, store: EmaStore | None = None, lookback: int = 0):
        self.close = close
        self.parts: dict[int, tuple[int, np.ndarray]] = {}   # period -> (first bar, values from there)
        self.store, self.lookback = store, lookback
        self.found: dict[int, np.ndarray] = {}      # period -> the whole series, from the store
        self.computed: dict[int, list[np.ndarray]] = {}   # period -> every value computed, in parts

    def over(self, period: int, start: int, stop: int) -> np.ndarray:
        """EMA values of bars start .. stop-1 (start never before an earlier call's)."""
        whole = self._stored(period)
        if whole is not None:
            return whole[start:stop]
        have = self.parts.get(period)
        if have is None:
            first, values = 0, ema(self.close[:stop], period)
            self._computed(period, values)
        else:
            first, values = have
            done = first + len(values)
            if stop > done:   # e_i = a*c_i + (1-a)*e_{i-1}, from the last value known
                more = ema(np.concatenate((values[-1:], self.close[done:stop])), period)[1:]
                self._computed(period, more)
                values = np.concatenate((values[start - first:], more))
                first = start
        self.parts[period] = (first, values)
        return values[start - first:stop - first]

    def _key(self, period: int) -> str:
        # everything the values depend on but the closes (the store's own key): the parts' bounds, and
        # which arithmetic ema() runs on each (LONG_SERIES; EMA_VERSION for the rest of its code)
        return (f"ema/{EMA_VERSION}/long={LONG_SERIES}/period={period}/lookback={self.lookback}"
                f"/segment={SEGMENT_WINDOWS}")

    def _stored(self, period: int) -> np.ndarray | None:
        if self.store is None or period in self.computed:
            return None
        if period not in self.found:
            values = self.store.get(self._key(period))
            if values is None or len(values) != len(self.close):
                self.computed[period] = []
                return None
            self.found[period] = values
        return self.found[period]

    def _computed(self, period: int, values: np.ndarray) -> None:
        if self.store is not None:
            self.computed.setdefault(period, []).append(values)

    def keep(self) -> None:
        """Keep in the store each period computed over the whole history."""
        if self.store is None:
            return
        for period, parts in self.computed.items():
            if parts and sum(map(len, parts)) == len(self.close):
                self.store.put(self._key(period), np.concatenate(parts))


def price_decimals(bars: Bars, most: int = 8) -> int:
    """How many decimals the file's prices carry (2 for 3125.66): the digits of a symbol
    whose spec is not known."""
    columns = [bars.open, bars.high, bars.low, bars.close] if len(bars) else [np.zeros(1)]
    scale = max(1.0, *(float(np.abs(c).max()) for c in columns))
    for d in range(most + 1):
        # every price within atol of itself rounded to d decimals (np.allclose with rtol=0, on
        # finite prices), column by column, a short head first: most d are refuted at once
        atol = scale * 1e-12 + 10.0 ** -(d + 6)
        if all(float(np.abs(np.round(part, d) - part).max()) <= atol
               for c in columns for part in (c[:4096], c)):
            return d
    return most
