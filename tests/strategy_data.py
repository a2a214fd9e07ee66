"""Shared bar files for the strategy tests, read without the feeds package.

The data folder is /work/shared/data (next to the repo), or $SCALPER_SHARED_DATA.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from scalper.core.bars import Bars
from tests.conftest import SHARED_DATA, shared_file  # noqa: F401  (the strategy tests read them from here)

XAU = "XAUUSD_M1.csv"
BTC = "BTCUSD_M1.csv"
XAU_EXPECTED = "XAUUSD_M1.expected_signals.csv"


def epoch_seconds(times: pd.Series) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' read as UTC (the file's own clock) -> int64 epoch seconds."""
    parsed = pd.to_datetime(times, format="%Y-%m-%d %H:%M:%S")
    return parsed.to_numpy().astype("datetime64[s]").astype(np.int64)


@functools.cache
def load_bars(name: str) -> Bars:
    """A shared file as Bars (cached: treat it as read-only)."""
    frame = pd.read_csv(shared_file(name))
    frame.columns = [c.lower() for c in frame.columns]
    return Bars.from_arrays(epoch_seconds(frame["time"]), frame["open"], frame["high"],
                            frame["low"], frame["close"], frame["volume"])


def load_expected_signals() -> pd.DataFrame:
    frame = pd.read_csv(shared_file(XAU_EXPECTED))
    frame["bar_time"] = epoch_seconds(frame["bar_time"])
    return frame


def bars_from_rows(rows, start: int = 1_700_000_000) -> Bars:
    """Bars from (open, high, low, close) tuples, one minute apart."""
    o, h, l, c = (np.array(col, dtype=np.float64) for col in zip(*rows))
    return Bars.from_arrays(start + 60 * np.arange(len(rows)), o, h, l, c)


def mirror(bars: Bars, pivot: float = 200.0) -> Bars:
    """Prices reflected about pivot/2 (p -> pivot - p): a buy setup becomes its sell mirror.

    Ranges, bodies and true ranges are unchanged; wicks and the EMA's slope swap.
    """
    return Bars.from_arrays(bars.time, pivot - bars.open, pivot - bars.low, pivot - bars.high,
                            pivot - bars.close, bars.volume, bars.spread)


class Reference:
    """The spec's quantities for one window in plain Python (pandas for the EMA),
    independent of scalper.core, for checking rules one by one."""

    def __init__(self, window: Bars):
        self.o, self.h, self.l, self.c = (a.tolist() for a in
                                          (window.open, window.high, window.low, window.close))
        self.t = len(self.c) - 1
        self.eps = 1e-9 * abs(self.c[self.t])
        trs = [self.h[0] - self.l[0]] + [max(self.h[i], self.c[i - 1]) - min(self.l[i], self.c[i - 1])
                                          for i in range(1, self.t + 1)]
        self.atr = sum(trs[-14:]) / 14

    def bar(self, back: int = 0) -> dict:
        i = self.t - back
        o, h, l, c = self.o[i], self.h[i], self.l[i], self.c[i]
        return {"open": o, "high": h, "low": l, "close": c, "range": h - l, "body": abs(c - o),
                "upper": h - max(o, c), "lower": min(o, c) - l}

    def ema(self, period: int, back: int = 0) -> float:
        return float(pd.Series(self.c).ewm(span=period, adjust=False).mean().iloc[self.t - back])

    def lowest_low(self, count: int) -> float:
        return min(self.l[self.t - count:self.t])

    def highest_high(self, count: int) -> float:
        return max(self.h[self.t - count:self.t])

    # The spec's tolerant comparisons, written out.
    def ge(self, lhs, rhs): return lhs >= rhs - self.eps
    def gt(self, lhs, rhs): return lhs > rhs + self.eps
    def le(self, lhs, rhs): return lhs <= rhs + self.eps
    def lt(self, lhs, rhs): return lhs < rhs - self.eps


def failing(rules: dict[str, bool]) -> set[str]:
    return {name for name, holds in rules.items() if not holds}


def oriented(bars: Bars, side: str) -> Bars:
    """A buy-side window as written, or its mirror for the sell side."""
    return bars if side == "buy" else mirror(bars)


def fires(strategy, rules, w: Bars, params: dict, side: str):
    """The spec's rules (the test's reference) all hold on `w`, and the strategy signals `side`."""
    from scalper.core.signals import Signal

    assert not failing(rules(w, params, side))
    signal = strategy.evaluate(w, params)
    assert isinstance(signal, Signal) and signal.direction == side
    return signal


def misses_by(strategy, rules, w: Bars, params: dict, side: str) -> set[str]:
    """A near miss: the strategy finds no setup on `w`; → the reference rules that fail there."""
    from scalper.core.signals import Skip

    assert strategy.evaluate(w, params) == Skip(strategy.NAME, f"{strategy.NAME}_no_setup")
    return failing(rules(w, params, side))


def near_miss(case: dict, params: dict, window, side: str) -> tuple[Bars, dict]:
    """A near-miss case ({window arguments..., "params": overrides}) → (its oriented window, its params)."""
    case = dict(case)
    p = {**params, **case.pop("params", {})}
    return oriented(window(**case), side), p
