"""price_action_pinbar on hand-built windows: fires, each rule's near miss, ties, skips."""

from __future__ import annotations

import pytest

from scalper.core.signals import Signal, Skip
from scalper.core.strategies import pinbar
from tests.strategy_data import Reference, bars_from_rows, fires, misses_by, oriented

P = dict(pinbar.DEFAULTS)
FLAT = (100.0, 100.5, 99.5, 100.0)       # every earlier bar near the level: TR 1.0, lows 99.5
PIN = (100.2, 100.4, 99.4, 100.3)        # range 1.0, body 0.1, upper 0.1, lower 0.8


def window(bar_t=PIN, earlier=90.0):
    """9 bars at `earlier` (outside the level and ATR spans; below 100 the EMA rises
    into bar t, above it falls), 20 bars at 100 (support S = 99.5), then bar t."""
    rows = [(earlier, earlier + 0.5, earlier - 0.5, earlier)] * 9 + [FLAT] * 20 + [bar_t]
    return bars_from_rows(rows)


def rules(w, p, side):
    """The spec's rules for `side`, one by one, from the reference quantities."""
    ref = Reference(w)
    bar, a = ref.bar(), ref.atr
    wick, nose = (bar["lower"], bar["upper"]) if side == "buy" else (bar["upper"], bar["lower"])
    ema_now, ema_then = ref.ema(p["ema_period"]), ref.ema(p["ema_period"], p["slope_bars"])
    common = {
        "range_positive": ref.gt(bar["range"], 0),
        "range_vs_atr": ref.ge(bar["range"], p["min_range_atr"] * a),
        "wick_vs_body": ref.ge(wick, p["wick_body_ratio"] * bar["body"]),
        "wick_vs_range": ref.ge(wick, p["wick_range_min"] * bar["range"]),
        "short_nose": ref.le(nose, p["nose_range_max"] * bar["range"]),
    }
    tol = p["level_tolerance_atr"] * a
    if side == "buy":
        level = ref.lowest_low(p["level_lookback"])
        return {**common, "at_level": ref.le(bar["low"], level + tol),
                "closes_inside": ref.gt(bar["close"], level), "ema_slope": ref.gt(ema_now, ema_then)}
    level = ref.highest_high(p["level_lookback"])
    return {**common, "at_level": ref.ge(bar["high"], level - tol),
            "closes_inside": ref.lt(bar["close"], level), "ema_slope": ref.lt(ema_now, ema_then)}


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_fires_with_spec_levels(side):
    w = oriented(window(), side)
    signal = fires(pinbar, rules, w, P, side)
    assert (signal.strategy, signal.direction, signal.bar_time) == (pinbar.NAME, side, int(w.time[-1]))
    # A = 1.0 (14 bars of TR 1.0); buy: SL = 99.4 - 0.1, risk 1.0, TP = 100.3 + 1.5;
    # the sell is the mirror about 100 (prices p -> 200 - p).
    entry, sl, tp = (100.3, 99.3, 101.8) if side == "buy" else (99.7, 100.7, 98.2)
    assert signal.entry == entry
    assert signal.sl == pytest.approx(sl, rel=1e-9)
    assert signal.tp == pytest.approx(tp, rel=1e-9)
    assert signal.score == pytest.approx(0.8, rel=1e-9)
    assert signal.params == P


# One rule broken per case, the others holding (checked against the reference).
NEAR_MISSES = {
    # a zero-range bar; loosened level and size rules so that only range > 0 fails
    "range_positive": dict(bar_t=(100.3,) * 4, params={"level_tolerance_atr": 1.0, "min_range_atr": 0.0}),
    "range_vs_atr": dict(params={"min_range_atr": 1.5}),
    "wick_vs_body": dict(bar_t=(100.05, 100.4, 99.4, 100.4)),   # lower 0.65 < 2 * body 0.35
    "wick_vs_range": dict(bar_t=(99.95, 100.4, 99.4, 100.2)),   # lower 0.55 < 0.6 * range
    "short_nose": dict(bar_t=(100.05, 100.4, 99.4, 100.1)),     # upper 0.3 > 0.25 * range
    "at_level": dict(bar_t=(100.6, 100.8, 99.8, 100.7)),        # low 99.8 > S + 0.25 A
    "closes_inside": dict(bar_t=(99.4, 99.6, 98.6, 99.45)),     # close below support
    "ema_slope": dict(earlier=110.0),                           # the EMA falls into bar t
}


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("rule", sorted(NEAR_MISSES))
def test_near_miss_breaking_one_rule_does_not_fire(rule, side):
    case = NEAR_MISSES[rule]
    p = {**P, **case.get("params", {})}
    w = oriented(window(case.get("bar_t", PIN), case.get("earlier", 90.0)), side)
    assert misses_by(pinbar, rules, w, p, side) == {rule}


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_exact_tie_passes_inclusive_wick_rule(side):
    # lower 0.7 == 2 * body 0.35 in decimals; in floats 100.1-99.4 < 2*(100.45-100.1)
    bar_t = (100.1, 100.5, 99.4, 100.45)
    assert (100.1 - 99.4) < 2 * (100.45 - 100.1)
    w = oriented(window(bar_t), side)
    assert isinstance(pinbar.evaluate(w, P), Signal)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_exact_tie_fails_strict_close_beyond_level(side):
    at_level = oriented(window((99.4, 99.6, 98.6, 99.5)), side)      # close == S
    inside = oriented(window((99.4, 99.6, 98.6, 99.55)), side)
    assert pinbar.evaluate(at_level, P).reason == "price_action_pinbar_no_setup"
    assert isinstance(pinbar.evaluate(inside, P), Signal)


def test_insufficient_candles():
    short = window().tail(P["min_bars"] - 1)
    assert pinbar.evaluate(short, P) == Skip(pinbar.NAME, "price_action_pinbar_insufficient_candles")
    assert pinbar.evaluate(short.slice(0, 0), P).reason == "price_action_pinbar_insufficient_candles"
    assert isinstance(pinbar.evaluate(window().tail(P["min_bars"]), P), Signal)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_negative_buffer_gives_invalid_stop(side):
    # Configs reject a negative buffer; evaluate takes the parameters as given.
    p = {**P, "sl_buffer_atr": -2.0}        # SL beyond the entry: risk < 0
    w = oriented(window(), side)
    assert pinbar.evaluate(w, p) == Skip(pinbar.NAME, "price_action_pinbar_invalid_stop")
