"""Degenerate data: flat markets (ATR 0), zero-range bars, gaps in time.

No exception, no numpy warning (warnings are errors here), and the live and fast
paths still agree.
"""

from __future__ import annotations

import numpy as np
import pytest

from scalper.core import strategies
from scalper.core.bars import Bars
from scalper.core.scan import scan_history
from scalper.core.signals import Signal, Skip

pytestmark = pytest.mark.filterwarnings("error")
LOOKBACK = 60


def flat(n=120, price=100.0) -> Bars:
    return Bars.from_arrays(1_700_000_000 + 60 * np.arange(n), *([np.full(n, price)] * 4))


def rough(n=600, seed=7) -> Bars:
    """A random walk in 0.1 steps where half the bars have zero range and times jump."""
    rng = np.random.default_rng(seed)
    close = 100 + 0.1 * np.cumsum(rng.integers(-3, 4, n))
    open_ = np.r_[close[0], close[:-1]]
    zero = rng.random(n) < 0.5
    open_[zero] = close[zero]
    wick = 0.1 * rng.integers(0, 4, n)
    high = np.where(zero, close, np.maximum(open_, close) + wick)
    low = np.where(zero, close, np.minimum(open_, close) - wick[::-1])
    gaps = 60 * (1 + rng.integers(0, 3, n) * (rng.random(n) < 0.1) * 500)  # some jumps of hours
    return Bars.from_arrays(1_700_000_000 + np.cumsum(gaps), open_, high, low, close)


def live_outcomes(bars: Bars, name: str, params: dict) -> list:
    module = strategies.get(name)
    return [module.evaluate(bars.window(t, LOOKBACK), params) for t in range(LOOKBACK - 1, len(bars))]


@pytest.mark.parametrize("name", strategies.STRATEGY_NAMES)
def test_flat_market_gives_no_setup(name):
    bars = flat()
    params = strategies.resolve_params(name, lookback=LOOKBACK)
    assert all(o == Skip(name, f"{name}_no_setup") for o in live_outcomes(bars, name, params))
    result = strategies.get(name).scan(bars, params, LOOKBACK)
    assert result.signals == [] and result.skips == {f"{name}_no_setup": len(bars) - LOOKBACK + 1}


@pytest.mark.parametrize("name", strategies.STRATEGY_NAMES)
def test_flat_market_with_a_negative_buffer_does_not_divide_by_zero(name):
    params = {**strategies.get(name).DEFAULTS, "sl_buffer_atr": -1.0}
    assert strategies.get(name).scan(flat(), params, LOOKBACK).signals == []
    assert isinstance(strategies.get(name).evaluate(flat(), params), Skip)


@pytest.mark.parametrize("name", strategies.STRATEGY_NAMES)
def test_zero_range_bars_and_time_gaps_keep_live_and_fast_paths_equal(name):
    bars = rough()
    params = strategies.resolve_params(name, lookback=LOOKBACK)
    live = {(s.bar_time, s.direction): s for s in live_outcomes(bars, name, params)
            if isinstance(s, Signal)}
    fast = {(s.bar_time, s.direction): s for s in strategies.get(name).scan(bars, params, LOOKBACK).signals}
    assert set(live) == set(fast)
    for key, s in live.items():
        assert (fast[key].sl, fast[key].tp, fast[key].score) == pytest.approx((s.sl, s.tp, s.score), rel=1e-9)
        assert 0.0 <= s.score <= 1.0
        assert s.bar_time == int(bars.time[bars.index_of(s.bar_time)])


def test_rough_data_fires_at_all():
    # Guards the test above from passing on empty sets.
    result = scan_history(rough(), lookback=LOOKBACK)
    assert len({s.strategy for s in result.signals}) >= 2


def test_zero_range_bars_then_a_breakout():
    n = LOOKBACK + 10

    def flat_then(last):
        return np.r_[np.full(n - 1, 100.0), last]

    bars = Bars.from_arrays(1_700_000_000 + 60 * np.arange(n), flat_then(100.0), flat_then(101.0),
                            flat_then(100.0), flat_then(100.9))
    for name in strategies.STRATEGY_NAMES:
        outcome = strategies.get(name).evaluate(bars.tail(LOOKBACK), strategies.get(name).DEFAULTS)
        assert isinstance(outcome, (Signal, Skip))
    assert scan_history(bars, lookback=LOOKBACK).evaluated == 11
