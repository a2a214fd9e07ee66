"""A series of M1 bars as numpy arrays, oldest first.

`time` is the bar's open time in integer epoch seconds. Bar files carry no
time zone, so their wall-clock times are read as if they were UTC ("the file's
own clock"); the MT5 feed converts broker server time to real UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

BAR_SECONDS = 60


@dataclass(frozen=True, eq=False)
class Bars:
    time: np.ndarray    # int64 epoch seconds, bar open time
    open: np.ndarray    # float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # float64 tick volume (0 when unknown)
    spread: np.ndarray  # float64 spread in points (NaN when unknown)

    @classmethod
    def from_arrays(cls, time: ArrayLike, open: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike,
                    volume: ArrayLike | None = None, spread: ArrayLike | None = None) -> Bars:
        t = np.asarray(time, dtype=np.int64)
        n = len(t)
        vol = np.zeros(n) if volume is None else np.asarray(volume, dtype=np.float64)
        spr = np.full(n, np.nan) if spread is None else np.asarray(spread, dtype=np.float64)
        return cls(t, np.asarray(open, dtype=np.float64), np.asarray(high, dtype=np.float64),
                   np.asarray(low, dtype=np.float64), np.asarray(close, dtype=np.float64), vol, spr)

    @classmethod
    def empty(cls) -> Bars:
        return cls.from_arrays([], [], [], [], [])

    def __len__(self) -> int:
        return len(self.time)

    def slice(self, start: int | None, stop: int | None) -> Bars:
        s = slice(start, stop)
        return Bars(self.time[s], self.open[s], self.high[s], self.low[s], self.close[s],
                    self.volume[s], self.spread[s])

    def tail(self, n: int) -> Bars:
        return self.slice(max(0, len(self) - n), None) if n > 0 else self.slice(0, 0)

    def window(self, t: int, lookback: int) -> Bars:
        """The window whose signal bar is index `t`: bars t-lookback+1 .. t."""
        return self.slice(max(0, t - lookback + 1), t + 1)

    def closed_at(self, now: float) -> Bars:
        """Bars that have closed at instant `now` (open_time + 60 s <= now)."""
        k = int(np.searchsorted(self.time, now - BAR_SECONDS, side="right"))
        return self.slice(0, k)

    def between(self, start: float | None, end: float | None) -> Bars:
        """Bars whose open time is in [start, end] (either bound optional)."""
        lo = 0 if start is None else int(np.searchsorted(self.time, start, side="left"))
        hi = len(self) if end is None else int(np.searchsorted(self.time, end, side="right"))
        return self.slice(lo, hi)

    def index_of(self, ts: int) -> int | None:
        i = int(np.searchsorted(self.time, ts, side="left"))
        return i if i < len(self) and int(self.time[i]) == int(ts) else None
