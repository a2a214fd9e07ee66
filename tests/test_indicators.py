"""True range, ATR, EMA, and their all-windows-at-once forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scalper.core import indicators
from tests.strategy_data import BTC, XAU, load_bars

HIGH = [10.0, 11.0, 12.0, 10.5, 13.0]
LOW = [9.0, 10.0, 11.5, 9.5, 12.0]
CLOSE = [9.5, 10.8, 11.8, 10.0, 12.5]


def test_true_range_by_hand():
    # TR_0 = range_0; then gaps count: bar 2 opens above close 10.8, bar 4 above 10.0.
    expected = [1.0, 11.0 - 9.5, 12.0 - 10.8, 11.8 - 9.5, 13.0 - 10.0]
    assert indicators.true_range(HIGH, LOW, CLOSE) == pytest.approx(expected, rel=1e-15)


def test_true_range_of_empty_series():
    assert len(indicators.true_range([], [], [])) == 0


def test_atr_is_a_simple_mean_with_nan_before_enough_bars():
    out = indicators.atr(HIGH, LOW, CLOSE, period=3)
    tr = indicators.true_range(HIGH, LOW, CLOSE)
    assert np.isnan(out[:2]).all()
    assert out[2:] == pytest.approx([tr[0:3].mean(), tr[1:4].mean(), tr[2:5].mean()], rel=1e-15)
    assert np.isnan(indicators.atr(HIGH, LOW, CLOSE)).all()        # fewer than 14 bars


def test_ema_by_hand():
    # a = 2 / (3 + 1) = 0.5: e_0 = 9.5, e_1 = 0.5*10.8 + 0.5*9.5 = 10.15, ...
    out = indicators.ema(CLOSE, 3)
    expected = [9.5]
    for c in CLOSE[1:]:
        expected.append(0.5 * c + 0.5 * expected[-1])
    assert out.tolist() == expected
    assert out[1] == pytest.approx(10.15)
    assert len(indicators.ema([], 21)) == 0


@pytest.mark.parametrize("period", [1, 5, 21, 50])
def test_ema_matches_pandas_ewm(period):
    close = load_bars(XAU).close[:3000]
    ours = indicators.ema(close, period)
    theirs = pd.Series(close).ewm(span=period, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=0)


@pytest.mark.parametrize("lookback,back", [(100, 0), (100, 3), (60, 1), (45, 10), (21, 20)])
@pytest.mark.parametrize("period", [21, 50])
def test_window_ema_equals_the_recurrence_on_each_window(period, lookback, back):
    close = load_bars(XAU).close[:2000]
    fast = indicators.window_ema(close, period, lookback, back)
    direct = [indicators.ema(close[k:k + lookback], period)[lookback - 1 - back]
              for k in range(len(close) - lookback + 1)]
    assert len(fast) == len(direct)
    np.testing.assert_allclose(fast, direct, rtol=1e-12, atol=0)


@pytest.mark.parametrize("lookback", [14, 15, 100])
def test_window_atr_equals_each_windows_own_atr_bit_for_bit(lookback):
    bars = load_bars(XAU).slice(0, 1500)
    fast = indicators.window_atr(bars.high, bars.low, bars.close, lookback)
    direct = [indicators.atr(*(a[k:k + lookback] for a in (bars.high, bars.low, bars.close)))[-1]
              for k in range(len(bars) - lookback + 1)]
    # With lookback 14 the mean spans the window, whose first TR is its own range.
    assert fast.tolist() == direct


def test_window_forms_on_histories_shorter_than_a_window():
    bars = load_bars(XAU).slice(0, 10)
    assert len(indicators.window_atr(bars.high, bars.low, bars.close, 100)) == 0
    assert len(indicators.window_ema(bars.close, 21, 100)) == 0
    assert np.isnan(indicators.window_atr(bars.high, bars.low, bars.close, 5)).all()


def test_rolling_extremes():
    values = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0]
    assert indicators.rolling_min(values, 3).tolist() == [1.0, 1.0, 1.5, 1.5, 2.0]
    assert indicators.rolling_max(values, 3).tolist() == [4.0, 4.0, 5.0, 9.0, 9.0]


def _long_series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(15)
    walk = np.round(3000 + np.cumsum(rng.normal(scale=0.8, size=60_000)), 2)
    walk[5_000:9_000] = walk[5_000]          # a flat stretch: the mean reaches the price exactly
    walk[20_000:20_050:2] = walk[19_999]     # and a price that keeps coming back to it
    return {"xau": load_bars(XAU).close, "btc": load_bars(BTC).close, "walk": walk,
            "tiny": np.round(1.1 + np.cumsum(rng.normal(scale=1e-5, size=20_000)), 5)}


@pytest.mark.parametrize("name", ["xau", "btc", "walk", "tiny"])
def test_the_copy_of_pandas_ewm_is_bit_for_bit_pandas(name):
    # ema() runs _ewm_mean on long series when pandas is not loaded (bars read from the bar cache)
    close = _long_series()[name]
    for period in [*range(1, 60), 89, 100, 144, 200, 233, 500, 1000, 2000, 4999]:
        ours = indicators._ewm_mean(close, period)
        theirs = pd.Series(close).ewm(span=period, adjust=False).mean().to_numpy()
        assert ours is not None and ours.tobytes() == theirs.tobytes(), period


def test_ema_of_a_long_series_is_the_same_with_or_without_pandas_loaded(monkeypatch):
    import sys

    close = _long_series()["walk"]
    with_pandas = indicators.ema(close, 21)
    monkeypatch.delitem(sys.modules, "pandas")      # as in a process that read a cached bar file
    without = indicators.ema(close, 21)
    assert "pandas" not in sys.modules and without.tobytes() == with_pandas.tobytes()
    gaps = close.copy()
    gaps[10] = np.nan                               # pandas' own treatment of gaps: pandas does it
    monkeypatch.setitem(sys.modules, "pandas", pd)
    expected = indicators.ema(gaps, 21)
    monkeypatch.delitem(sys.modules, "pandas")
    assert np.array_equal(indicators.ema(gaps, 21), expected, equal_nan=True)


_BUDGET_CHILD = """
import sys, numpy as np
from scalper.core import indicators
close = 3000 + np.cumsum(np.random.default_rng(1).normal(size=50_000))
first = indicators.ema(close, 34)
seen = ["pandas" in sys.modules, indicators._python_ema_bars]
indicators._python_ema_bars = indicators.PYTHON_EMA_BARS   # as after an optimiser's many periods
again = indicators.ema(close, 34)
print(seen + ["pandas" in sys.modules, first.tobytes() == again.tobytes()])
"""


def test_many_long_emas_go_to_pandas_once_python_would_cost_more():
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", _BUDGET_CHILD], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert json.loads(out.lower()) == [False, 50_000, True, True]
