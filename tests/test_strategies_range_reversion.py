"""range_reversion on hand-built windows: fires, each rule's near miss, ties, skips."""

from __future__ import annotations

import pytest

from scalper.core.signals import Signal, Skip
from scalper.core.strategies import range_reversion
from tests.strategy_data import Reference, bars_from_rows, fires, misses_by, near_miss, oriented

P = dict(range_reversion.DEFAULTS)
QUIET = (100.0, 100.25, 99.75, 100.0)     # TR 0.5, close on the middle of the box
TOP = (100.0, 101.0, 100.0, 100.0)        # sets H = 101
BOTTOM = (100.0, 100.0, 99.0, 100.0)      # sets L = 99: W = 2, mid = 100
FADE = (99.55, 99.85, 99.1, 99.8)         # bar t: probes the bottom, closes back up, bullish


def window(bar_t=FADE, last_ten=None):
    """44 quiet bars with one top and one bottom inside the 30-bar box (outside the
    ATR span), the last ten optionally replaced, then bar t."""
    rows = [QUIET] * 44
    rows[20], rows[25] = TOP, BOTTOM
    if last_ten is not None:
        rows[-10:] = [last_ten] * 10
    return bars_from_rows(rows + [bar_t])


def rules(w, p, side):
    ref = Reference(w)
    bar, a = ref.bar(), ref.atr
    top, bottom = ref.highest_high(p["range_lookback"]), ref.lowest_low(p["range_lookback"])
    width, mid = top - bottom, (top + bottom) / 2
    drift = abs(ref.ema(p["ema_period"]) - ref.ema(p["ema_period"], p["flat_bars"]))
    common = {"wide_enough": ref.ge(width, p["min_width_atr"] * a),
              "narrow_enough": ref.le(width, p["max_width_atr"] * a),
              "flat_ema": ref.le(drift, p["flat_max_atr"] * a)}
    if side == "sell":
        return {**common, "probes_edge": ref.ge(bar["high"], top - p["probe_frac"] * width),
                "rejects_edge": ref.le(bar["close"], top - p["reject_frac"] * width),
                "mid_side": ref.gt(bar["close"], mid), "reversal_bar": ref.lt(bar["close"], bar["open"])}
    return {**common, "probes_edge": ref.le(bar["low"], bottom + p["probe_frac"] * width),
            "rejects_edge": ref.ge(bar["close"], bottom + p["reject_frac"] * width),
            "mid_side": ref.lt(bar["close"], mid), "reversal_bar": ref.gt(bar["close"], bar["open"])}


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_fires_with_spec_levels(side):
    w = oriented(window(), side)
    signal = fires(range_reversion, rules, w, P, side)
    a = (13 * 0.5 + 0.9) / 14                   # 13 quiet TRs and bar t's 0.9
    sl = 99.0 - 0.25 * a                         # min(low_t, L) - buffer
    risk = 99.8 - sl
    expected = (99.8, sl, 100.0) if side == "buy" else (100.2, 200 - sl, 100.0)   # TP = mid
    assert (signal.entry, signal.sl, signal.tp) == pytest.approx(expected, rel=1e-9)
    assert signal.score == pytest.approx(min(1.0, 0.2 / (2 * risk)), rel=1e-9)
    assert "rr" not in signal.params


NEAR_MISSES = {
    "wide_enough": dict(params={"min_width_atr": 4.0}),       # W = 2 < 4 A = 2.11
    "narrow_enough": dict(params={"max_width_atr": 3.0}),     # W = 2 > 3 A = 1.59
    "flat_ema": dict(last_ten=(100.7, 100.95, 100.45, 100.7)),  # the EMA climbs 0.37 > 0.5 A
    "probes_edge": dict(bar_t=(99.55, 99.85, 99.3, 99.8)),    # low 99.3 above L + 0.1 W
    "rejects_edge": dict(bar_t=(99.3, 99.85, 99.1, 99.45)),   # close under L + 0.25 W
    "mid_side": dict(bar_t=(99.55, 100.1, 99.1, 100.05)),     # close above mid
    "reversal_bar": dict(bar_t=(99.85, 99.9, 99.1, 99.8)),    # bearish
}


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("rule", sorted(NEAR_MISSES))
def test_near_miss_breaking_one_rule_does_not_fire(rule, side):
    w, p = near_miss(NEAR_MISSES[rule], P, window, side)
    assert misses_by(range_reversion, rules, w, p, side) == {rule}


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("bar_t", [(99.55, 99.85, 99.2, 99.8),    # low_t == L + 0.1 W
                                   (99.3, 99.85, 99.1, 99.5)])    # close_t == L + 0.25 W
def test_exact_ties_pass_inclusive_rules(side, bar_t):
    assert isinstance(range_reversion.evaluate(oriented(window(bar_t), side), P), Signal)


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("bar_t", [(99.55, 100.1, 99.1, 100.0),   # close_t == mid
                                   (99.8, 99.85, 99.1, 99.8)])    # open == close
def test_exact_ties_fail_strict_rules(side, bar_t):
    assert range_reversion.evaluate(oriented(window(bar_t), side), P).reason == \
        "range_reversion_no_setup"


def test_insufficient_candles():
    assert range_reversion.evaluate(window().tail(44), P) == Skip(
        range_reversion.NAME, "range_reversion_insufficient_candles")


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_negative_buffer_gives_invalid_stop(side):
    p = {**P, "sl_buffer_atr": -2.0}   # buy: SL = 99 + 2 A > close 99.8
    assert range_reversion.evaluate(oriented(window(), side), p) == Skip(
        range_reversion.NAME, "range_reversion_invalid_stop")
