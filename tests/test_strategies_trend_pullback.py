"""trend_pullback on hand-built windows: fires, each rule's near miss, ties, skips."""

from __future__ import annotations

import pytest

from scalper.core.signals import Signal, Skip
from scalper.core.strategies import trend_pullback
from tests.strategy_data import Reference, bars_from_rows, fires, misses_by, near_miss, oriented

P = dict(trend_pullback.DEFAULTS)
FLAT = (100.0, 100.1, 99.9, 100.0)          # TR 0.2; both EMAs sit at 100
PULLBACK = (100.4, 100.6, 100.03, 100.5)    # t-1: low between s_{t-1} and f_{t-1}
RESUME = (100.5, 101.1, 100.45, 101.0)      # t: bullish, above high_{t-1} and f_t


def window(prefix=None, pullback=PULLBACK, bar_t=RESUME):
    """58 bars (flat at 100 unless `prefix` says otherwise), the pullback bar t-1, bar t."""
    return bars_from_rows(list(prefix or [FLAT] * 58) + [pullback, bar_t])


def flat_bars(level, count):
    return [(level, level + 0.1, level - 0.1, level)] * count


def rising_bars(count=58, start=100.0, step=0.2):
    rows, close = [], start
    for _ in range(count):
        prev, close = close, round(close + step, 10)
        rows.append((prev, close + 0.1, prev - 0.1, close))
    return rows


def rules(w, p, side):
    ref = Reference(w)
    bar, prev, a = ref.bar(), ref.bar(1), ref.atr
    fast, slow = ref.ema(p["fast_period"]), ref.ema(p["slow_period"])
    fast_prev, slow_prev = ref.ema(p["fast_period"], 1), ref.ema(p["slow_period"], 1)
    slow_then = ref.ema(p["slow_period"], p["slope_bars"])
    touch = p["touch_atr"] * a
    if side == "buy":
        return {"fast_beyond_slow": ref.gt(fast, slow), "slow_sloping": ref.gt(slow, slow_then),
                "touches_fast": ref.le(prev["low"], fast_prev + touch),
                "holds_slow": ref.gt(prev["low"], slow_prev),
                "with_trend_bar": ref.gt(bar["close"], bar["open"]),
                "clears_prev_bar": ref.gt(bar["close"], prev["high"]),
                "beyond_fast": ref.gt(bar["close"], fast)}
    return {"fast_beyond_slow": ref.lt(fast, slow), "slow_sloping": ref.lt(slow, slow_then),
            "touches_fast": ref.ge(prev["high"], fast_prev - touch),
            "holds_slow": ref.lt(prev["high"], slow_prev),
            "with_trend_bar": ref.lt(bar["close"], bar["open"]),
            "clears_prev_bar": ref.lt(bar["close"], prev["low"]),
            "beyond_fast": ref.lt(bar["close"], fast)}


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_fires_with_spec_levels(side):
    w = oriented(window(), side)
    signal = fires(trend_pullback, rules, w, P, side)
    # The EMAs start bar t-1 at exactly 100: run the spec's recurrence over the last two closes.
    af, as_ = 2 / 22, 2 / 51
    f_prev, s_prev = 100 + af * 0.5, 100 + as_ * 0.5
    f, s = f_prev + af * (101.0 - f_prev), s_prev + as_ * (101.0 - s_prev)
    a = (12 * 0.2 + 0.6 + 0.65) / 14                    # TRs: 12 flat bars, t-1, t
    sl = 100.03 - 0.1 * a                               # min(low_{t-1}, low_t) - buffer
    risk = 101.0 - sl
    expected = (101.0, sl, 101.0 + 1.5 * risk) if side == "buy" else (99.0, 200 - sl, 99.0 - 1.5 * risk)
    assert (signal.entry, signal.sl, signal.tp) == pytest.approx(expected, rel=1e-9)
    assert signal.score == pytest.approx(min(1.0, (f - s) / (2 * a)), rel=1e-9)


NEAR_MISSES = {
    # Prices fell from 102 to 98, then rose to 100 for 5 bars: the slow EMA turns up
    # while the fast one is still below it (a wide touch band keeps the pullback valid).
    "fast_beyond_slow": dict(prefix=flat_bars(102.0, 30) + flat_bars(98.0, 23) + flat_bars(100.0, 5),
                             pullback=(100.3, 100.6, 99.75, 100.5), params={"touch_atr": 3.0}),
    # A spike at t-7 .. t-5 leaves the slow EMA higher then than at t.
    "slow_sloping": dict(prefix=flat_bars(100.0, 52) + flat_bars(104.0, 3) + flat_bars(100.0, 3),
                         pullback=(100.6, 100.7, 100.45, 100.5)),
    "touches_fast": dict(pullback=(100.4, 100.6, 100.3, 100.5)),    # low 100.3 above f + 0.1 A
    "holds_slow": dict(pullback=(100.4, 100.6, 100.01, 100.5)),     # low below s_{t-1} = 100.0196
    "with_trend_bar": dict(bar_t=(101.05, 101.1, 100.45, 101.0)),  # bearish
    "clears_prev_bar": dict(bar_t=(100.5, 101.1, 100.45, 100.55)),  # close under high_{t-1}
    # In a steady rise the pullback bar lies wholly under f; bar t clears it, not f_t.
    "beyond_fast": dict(prefix=rising_bars(), pullback=(109.3, 109.4, 108.0, 109.0),
                        bar_t=(109.0, 109.52, 108.9, 109.5)),
}


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("rule", sorted(NEAR_MISSES))
def test_near_miss_breaking_one_rule_does_not_fire(rule, side):
    w, p = near_miss(NEAR_MISSES[rule], P, window, side)
    assert misses_by(trend_pullback, rules, w, p, side) == {rule}


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_beyond_fast_case_fires_once_close_clears_the_fast_ema(side):
    case = NEAR_MISSES["beyond_fast"]
    w = oriented(window(case["prefix"], case["pullback"], (109.0, 110.05, 108.9, 110.0)), side)
    assert isinstance(trend_pullback.evaluate(w, P), Signal)


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("bar_t", [(100.5, 101.1, 100.45, 100.6),    # close_t == high_{t-1}
                                   (101.0, 101.1, 100.45, 101.0)])   # open == close
def test_exact_ties_fail_strict_rules(side, bar_t):
    w = oriented(window(bar_t=bar_t), side)
    assert trend_pullback.evaluate(w, P).reason == "trend_pullback_no_setup"


def test_insufficient_candles():
    assert trend_pullback.evaluate(window().tail(59), P) == Skip(
        trend_pullback.NAME, "trend_pullback_insufficient_candles")


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_negative_buffer_gives_invalid_stop(side):
    p = {**P, "sl_buffer_atr": -5.0}   # buy: SL = 100.03 + 5 A > close 101.0
    assert trend_pullback.evaluate(oriented(window(), side), p) == Skip(
        trend_pullback.NAME, "trend_pullback_invalid_stop")
