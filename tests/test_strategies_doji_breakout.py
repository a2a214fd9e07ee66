"""doji_breakout on hand-built windows: the spec's worked check, near misses, ties, skips."""

from __future__ import annotations

import pytest

from scalper.core import indicators
from scalper.core.signals import Signal, Skip
from scalper.core.strategies import doji_breakout
from tests.strategy_data import Reference, bars_from_rows, mirror, misses_by, oriented

P = dict(doji_breakout.DEFAULTS)
DOJI = (100.0, 100.4, 99.6, 100.02)       # the worked check's bar t-1
BREAKOUT = (100.05, 101.0, 100.0, 100.9)  # the worked check's bar t


def window(doji=DOJI, bar_t=BREAKOUT, level=100.0):
    """28 bars at `level` (TR 1.0; one of TR 1.2 inside the ATR span so that A = 1.0
    exactly as in the worked check), then the doji and bar t."""
    flat = (level, level + 0.5, level - 0.5, level)
    wide = (level, level + 0.6, level - 0.6, level)
    return bars_from_rows([flat] * 27 + [wide] + [doji, bar_t])


def rules(w, p, side):
    ref = Reference(w)
    bar, doji, a, e = ref.bar(), ref.bar(1), ref.atr, ref.ema(p["ema_period"])
    common = {
        "doji_range_positive": ref.gt(doji["range"], 0),
        "doji_small_body": ref.le(doji["body"], p["doji_body_max"] * doji["range"]),
        "doji_small_range": ref.le(doji["range"], p["doji_range_max_atr"] * a),
        "bar_range_positive": ref.gt(bar["range"], 0),
        "decisive_body": ref.ge(bar["body"], p["breakout_body_min"] * bar["range"]),
    }
    if side == "buy":
        return {**common, "breaks_doji": ref.gt(bar["close"], doji["high"]),
                "beyond_ema": ref.gt(bar["close"], e)}
    return {**common, "breaks_doji": ref.lt(bar["close"], doji["low"]),
            "beyond_ema": ref.lt(bar["close"], e)}


def test_worked_check_of_the_spec():
    w = window()
    assert indicators.atr(w.high, w.low, w.close)[-1] == pytest.approx(1.0, rel=1e-12)
    assert indicators.ema(w.close, 21)[-1] < 100.9      # the spec's e_t = 100.3 plays the same part
    signal = doji_breakout.evaluate(w, P)
    assert isinstance(signal, Signal) and signal.direction == "buy"
    assert signal.entry == 100.9
    assert signal.sl == pytest.approx(99.5, rel=1e-9)
    assert signal.risk == pytest.approx(1.4, rel=1e-9)
    assert signal.tp == pytest.approx(103.0, rel=1e-9)
    assert signal.score == pytest.approx(0.85, rel=1e-9)


def test_mirrored_worked_check_sells():
    signal = doji_breakout.evaluate(mirror(window()), P)
    assert isinstance(signal, Signal) and signal.direction == "sell"
    assert signal.entry == pytest.approx(99.1, rel=1e-12)
    assert signal.sl == pytest.approx(100.5, rel=1e-9)   # high_d 100.4 + 0.1 A
    assert signal.tp == pytest.approx(97.0, rel=1e-9)    # 99.1 - 1.5 * 1.4
    assert signal.score == pytest.approx(0.85, rel=1e-9)


NEAR_MISSES = {
    "doji_range_positive": dict(doji=(100.0,) * 4),
    "doji_small_body": dict(doji=(100.0, 100.4, 99.6, 100.1)),       # body 0.1 > 0.08
    "doji_small_range": dict(doji=(100.0, 100.7, 99.5, 100.02)),     # range 1.2 > A = 1.03
    "bar_range_positive": dict(bar_t=(100.9,) * 4),
    "decisive_body": dict(bar_t=(100.5, 101.0, 100.0, 100.9)),       # body 0.4 < 0.5 * range
    "breaks_doji": dict(bar_t=(99.9, 100.45, 99.85, 100.35)),        # close below the doji's high
    "beyond_ema": dict(level=101.5),                                 # the EMA sits above close_t
}


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("rule", sorted(NEAR_MISSES))
def test_near_miss_breaking_one_rule_does_not_fire(rule, side):
    w = oriented(window(**NEAR_MISSES[rule]), side)
    assert misses_by(doji_breakout, rules, w, P, side) == {rule}


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_exact_ties_pass_inclusive_rules(side):
    # body_d 0.09 == 0.1 * range_d 0.9, and body_t 0.45 == 0.5 * range_t 0.9, in decimals;
    # float rounding alone would reject both.
    assert (100.09 - 100.0) > 0.1 * (100.4 - 99.5)
    assert (100.85 - 100.4) < 0.5 * (101.0 - 100.1)
    w = oriented(window(doji=(100.0, 100.4, 99.5, 100.09), bar_t=(100.4, 101.0, 100.1, 100.85)), side)
    assert isinstance(doji_breakout.evaluate(w, P), Signal)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_exact_tie_fails_strict_breakout(side):
    w = oriented(window(bar_t=(99.9, 100.45, 99.85, 100.4)), side)   # close_t == high_d
    assert doji_breakout.evaluate(w, P).reason == "doji_breakout_no_setup"


def test_insufficient_candles():
    assert doji_breakout.evaluate(window().tail(29), P) == Skip(
        doji_breakout.NAME, "doji_breakout_insufficient_candles")


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_negative_buffer_gives_invalid_stop(side):
    p = {**P, "sl_buffer_atr": -1.5}   # buy: SL = 99.6 + 1.5 > close 100.9
    assert doji_breakout.evaluate(oriented(window(), side), p) == Skip(
        doji_breakout.NAME, "doji_breakout_invalid_stop")
