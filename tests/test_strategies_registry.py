"""The strategy registry and parameter validation (what a config may say)."""

from __future__ import annotations

import pytest

from scalper.core import strategies
from scalper.core.signals import Signal
from scalper.core.strategies import InvalidParams, UnknownStrategy, resolve_params
from tests.strategy_data import XAU, load_bars


def test_names_in_canonical_order():
    assert strategies.STRATEGY_NAMES == ("price_action_pinbar", "trend_pullback", "doji_breakout",
                                         "range_reversion")
    for name in strategies.STRATEGY_NAMES:
        module = strategies.get(name)
        assert name == module.NAME
        assert callable(module.evaluate) and callable(module.scan)


def test_unknown_strategy_lists_the_valid_names():
    with pytest.raises(UnknownStrategy) as info:
        strategies.get("pinbar")
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "'pinbar'" in message
    for name in strategies.STRATEGY_NAMES:
        assert name in message


def test_spec_defaults():
    assert dict(
        ema_period=21, slope_bars=3, level_lookback=20, wick_body_ratio=2.0, wick_range_min=0.6,
        nose_range_max=0.25, level_tolerance_atr=0.25, min_range_atr=0.5, sl_buffer_atr=0.1,
        rr=1.5, min_bars=30) == strategies.get("price_action_pinbar").DEFAULTS
    assert dict(
        fast_period=21, slow_period=50, slope_bars=5, touch_atr=0.1, sl_buffer_atr=0.1, rr=1.5,
        min_bars=60) == strategies.get("trend_pullback").DEFAULTS
    assert dict(
        ema_period=21, doji_body_max=0.1, doji_range_max_atr=1.0, breakout_body_min=0.5,
        sl_buffer_atr=0.1, rr=1.5, min_bars=30) == strategies.get("doji_breakout").DEFAULTS
    assert dict(
        ema_period=21, range_lookback=30, min_width_atr=1.5, max_width_atr=5.0, flat_bars=10,
        flat_max_atr=0.5, probe_frac=0.1, reject_frac=0.25, sl_buffer_atr=0.25, min_bars=45) == strategies.get("range_reversion").DEFAULTS


@pytest.mark.parametrize("name", strategies.STRATEGY_NAMES)
def test_defaults_resolve_and_fit_a_100_bar_lookback(name):
    assert resolve_params(name, None, lookback=100) == strategies.get(name).DEFAULTS
    assert resolve_params(name, {}) == strategies.get(name).DEFAULTS


def test_overrides_merge_over_defaults_and_normalize_numbers():
    p = resolve_params("trend_pullback", {"rr": 2, "slope_bars": 3})
    assert p["rr"] == 2.0 and isinstance(p["rr"], float)
    assert p["slope_bars"] == 3 and p["fast_period"] == 21


def test_min_bars_reach():
    assert strategies.get("price_action_pinbar").MIN_BARS_REACH({}) == 21      # level_lookback 20
    assert strategies.get("range_reversion").MIN_BARS_REACH({"range_lookback": 40}) == 41
    assert strategies.get("doji_breakout").MIN_BARS_REACH({}) == 14             # the ATR's bars


@pytest.mark.parametrize("name,overrides,lookback,fragments", [
    ("price_action_pinbar", {"level_lookbak": 20}, None,
     ["unknown parameter 'level_lookbak'", "level_lookback", "ema_period"]),
    ("price_action_pinbar", {"level_lookback": 50}, None,
     ["level_lookback=50 reaches 51 bars back but min_bars is 30",
      "raise min_bars to at least 51 or lower level_lookback"]),
    ("range_reversion", {"flat_bars": 50, "min_bars": 50}, None,
     ["flat_bars=50 reaches 51 bars back but min_bars is 50"]),
    ("doji_breakout", {"min_bars": 10}, None, ["min_bars=10", "at least 14"]),
    ("trend_pullback", {}, 50,
     ["min_bars=60 exceeds the bot's lookback=50", "raise lookback to at least 60"]),
    ("trend_pullback", {"rr": 0}, None, ["rr=0", "greater than 0"]),
    ("trend_pullback", {"rr": -1.5}, None, ["rr=-1.5", "greater than 0"]),
    ("doji_breakout", {"sl_buffer_atr": -0.1}, None, ["sl_buffer_atr=-0.1", "at least 0"]),
    ("price_action_pinbar", {"ema_period": 0}, None, ["ema_period=0", "whole number of at least 1"]),
    ("price_action_pinbar", {"slope_bars": -2}, None, ["slope_bars=-2"]),
    ("price_action_pinbar", {"level_lookback": 20.0}, None, ["level_lookback=20.0", "integer"]),
    ("trend_pullback", {"fast_period": "21"}, None, ["fast_period='21'"]),
    ("trend_pullback", {"touch_atr": True}, None, ["touch_atr=True"]),
    ("trend_pullback", {"rr": float("nan")}, None, ["rr=nan"]),
    ("doji_breakout", {"doji_body_max": 1.5}, None, ["doji_body_max=1.5", "from 0 to 1"]),
    ("range_reversion", {"probe_frac": -0.1}, None, ["probe_frac=-0.1", "from 0 to 1"]),
    ("trend_pullback", {"fast_period": 60, "slow_period": 50}, None,
     ["fast_period=60 must be smaller than slow_period=50"]),
    ("range_reversion", {"min_width_atr": 6.0}, None, ["min_width_atr=6.0 is above max_width_atr=5.0"]),
])
def test_invalid_params_say_what_to_fix(name, overrides, lookback, fragments):
    with pytest.raises(ValueError) as info:
        resolve_params(name, overrides, lookback=lookback)
    assert isinstance(info.value, InvalidParams)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_raising_min_bars_makes_a_long_level_lookback_valid():
    p = resolve_params("price_action_pinbar", {"level_lookback": 50, "min_bars": 51}, lookback=100)
    assert p["level_lookback"] == 50


def test_registry_evaluate_runs_the_named_strategy():
    bars = load_bars(XAU)
    window = bars.window(len(bars) - 1, 100)
    outcome = strategies.evaluate("doji_breakout", window, resolve_params("doji_breakout"))
    assert outcome == strategies.get("doji_breakout").evaluate(window, resolve_params("doji_breakout"))
    assert outcome.strategy == "doji_breakout"
    with pytest.raises(UnknownStrategy):
        strategies.evaluate("nope", window, {})


def test_signal_carries_the_resolved_params():
    bars = load_bars(XAU)
    p = resolve_params("trend_pullback", {"rr": 2.0})
    found = strategies.get("trend_pullback").scan(bars, p, 100).signals
    assert found and all(s.params == p for s in found)
    t = bars.index_of(found[0].bar_time)
    live = strategies.evaluate("trend_pullback", bars.window(t, 100), p)
    assert isinstance(live, Signal) and live.params == p
    sign = 1 if live.direction == "buy" else -1
    assert live.tp == pytest.approx(live.entry + sign * 2.0 * live.risk, rel=1e-12)
