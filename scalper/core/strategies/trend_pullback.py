"""trend_pullback — pullback to the fast EMA in a trend, then resumption (docs/strategies.md §2)."""

from __future__ import annotations

import numpy as np

from scalper.core.strategies.base import BUY, Side, Strategy
from scalper.core.strategies.params import Kind, Param, Params, Relation
from scalper.core.strategies.tolerance import Value, ge, gt, le, lt
from scalper.core.strategies.views import View, bearish, bullish

NAME = "trend_pullback"

PARAMS = {
    "fast_period": Param(21, Kind.COUNT),
    "slow_period": Param(50, Kind.COUNT),
    "slope_bars": Param(5, Kind.COUNT),
    "touch_atr": Param(0.1, Kind.NON_NEGATIVE),
    "sl_buffer_atr": Param(0.1, Kind.NON_NEGATIVE),
    "rr": Param(1.5, Kind.POSITIVE),
    "min_bars": Param(60, Kind.COUNT),
}

RELATIONS = (
    Relation(lambda p: p["fast_period"] < p["slow_period"],
             "fast_period={fast_period} must be smaller than slow_period={slow_period}; "
             "lower fast_period or raise slow_period"),
)


def _setups(v: View, p: Params) -> tuple[Value, Value]:
    bar, prev, a, eps = v.candle(), v.candle(1), v.atr(), v.eps
    fast, slow = v.ema(p["fast_period"]), v.ema(p["slow_period"])
    fast_prev, slow_prev = v.ema(p["fast_period"], 1), v.ema(p["slow_period"], 1)
    slow_then = v.ema(p["slow_period"], p["slope_bars"])
    touch = p["touch_atr"] * a
    buy = (gt(fast, slow, eps) & gt(slow, slow_then, eps)
           & le(prev.low, fast_prev + touch, eps) & gt(prev.low, slow_prev, eps)
           & bullish(bar, eps) & gt(bar.close, prev.high, eps) & gt(bar.close, fast, eps))
    sell = (lt(fast, slow, eps) & lt(slow, slow_then, eps)
            & ge(prev.high, fast_prev - touch, eps) & lt(prev.high, slow_prev, eps)
            & bearish(bar, eps) & lt(bar.close, prev.low, eps) & lt(bar.close, fast, eps))
    return buy, sell


def _stop(v: View, p: Params, side: Side) -> Value:
    bar, prev, buffer = v.candle(), v.candle(1), p["sl_buffer_atr"] * v.atr()
    if side == BUY:
        return np.minimum(prev.low, bar.low) - buffer
    return np.maximum(prev.high, bar.high) + buffer


def _score(v: View, p: Params, side: Side, risk: Value) -> Value:
    gap = abs(v.ema(p["fast_period"]) - v.ema(p["slow_period"]))
    return np.minimum(1.0, gap / (2 * v.atr()))


STRATEGY = Strategy(NAME, PARAMS, reaching=("slope_bars",), setups=_setups, stop=_stop,
                    score=_score, relations=RELATIONS)
DEFAULTS = STRATEGY.defaults
MIN_BARS_REACH = STRATEGY.min_bars_reach
evaluate = STRATEGY.evaluate
scan = STRATEGY.scan
