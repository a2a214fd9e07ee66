"""price_action_pinbar — wick rejection at a key level, with the trend (docs/strategies.md §1)."""

from __future__ import annotations

from scalper.core.strategies.base import BUY, Side, Strategy
from scalper.core.strategies.params import Kind, Param, Params
from scalper.core.strategies.tolerance import Value, ge, gt, le, lt
from scalper.core.strategies.views import View

NAME = "price_action_pinbar"

PARAMS = {
    "ema_period": Param(21, Kind.COUNT),
    "slope_bars": Param(3, Kind.COUNT),
    "level_lookback": Param(20, Kind.COUNT),
    "wick_body_ratio": Param(2.0, Kind.NON_NEGATIVE),
    "wick_range_min": Param(0.6, Kind.FRACTION),
    "nose_range_max": Param(0.25, Kind.FRACTION),
    "level_tolerance_atr": Param(0.25, Kind.NON_NEGATIVE),
    "min_range_atr": Param(0.5, Kind.NON_NEGATIVE),
    "sl_buffer_atr": Param(0.1, Kind.NON_NEGATIVE),
    "rr": Param(1.5, Kind.POSITIVE),
    "min_bars": Param(30, Kind.COUNT),
}


def _setups(v: View, p: Params) -> tuple[Value, Value]:
    bar, a, eps = v.candle(), v.atr(), v.eps
    big_enough = gt(bar.range, 0.0, eps) & ge(bar.range, p["min_range_atr"] * a, eps)
    ema_now, ema_then = v.ema(p["ema_period"]), v.ema(p["ema_period"], p["slope_bars"])

    def rejects(wick: Value, nose: Value) -> Value:
        """The dominant wick dwarfs the body and most of the range; the nose is short."""
        return (ge(wick, p["wick_body_ratio"] * bar.body, eps)
                & ge(wick, p["wick_range_min"] * bar.range, eps)
                & le(nose, p["nose_range_max"] * bar.range, eps))

    support = v.lowest_low(p["level_lookback"])
    resistance = v.highest_high(p["level_lookback"])
    near = p["level_tolerance_atr"] * a
    buy = (big_enough & rejects(bar.lower, bar.upper)
           & le(bar.low, support + near, eps) & gt(bar.close, support, eps)
           & gt(ema_now, ema_then, eps))
    sell = (big_enough & rejects(bar.upper, bar.lower)
            & ge(bar.high, resistance - near, eps) & lt(bar.close, resistance, eps)
            & lt(ema_now, ema_then, eps))
    return buy, sell


def _stop(v: View, p: Params, side: Side) -> Value:
    bar, buffer = v.candle(), p["sl_buffer_atr"] * v.atr()
    return bar.low - buffer if side == BUY else bar.high + buffer


def _score(v: View, p: Params, side: Side, risk: Value) -> Value:
    bar = v.candle()
    return (bar.lower if side == BUY else bar.upper) / bar.range


STRATEGY = Strategy(NAME, PARAMS, reaching=("level_lookback", "slope_bars"),
                    setups=_setups, stop=_stop, score=_score)
DEFAULTS = STRATEGY.defaults
MIN_BARS_REACH = STRATEGY.min_bars_reach
evaluate = STRATEGY.evaluate
scan = STRATEGY.scan
