"""range_reversion — fade the extremes of a tight, flat range (docs/strategies.md §4)."""

from __future__ import annotations

import numpy as np

from scalper.core.strategies.base import BUY, Side, Strategy
from scalper.core.strategies.params import Kind, Param, Params, Relation
from scalper.core.strategies.tolerance import Value, ge, gt, le, lt
from scalper.core.strategies.views import View, bearish, bullish

NAME = "range_reversion"

PARAMS = {
    "ema_period": Param(21, Kind.COUNT),
    "range_lookback": Param(30, Kind.COUNT),
    "min_width_atr": Param(1.5, Kind.NON_NEGATIVE),
    "max_width_atr": Param(5.0, Kind.POSITIVE),
    "flat_bars": Param(10, Kind.COUNT),
    "flat_max_atr": Param(0.5, Kind.NON_NEGATIVE),
    "probe_frac": Param(0.1, Kind.FRACTION),
    "reject_frac": Param(0.25, Kind.FRACTION),
    "sl_buffer_atr": Param(0.25, Kind.NON_NEGATIVE),
    "min_bars": Param(45, Kind.COUNT),
}

RELATIONS = (
    Relation(lambda p: p["min_width_atr"] <= p["max_width_atr"],
             "min_width_atr={min_width_atr} is above max_width_atr={max_width_atr}, so no range "
             "can qualify; lower min_width_atr or raise max_width_atr"),
)


def _box(v: View, p: Params) -> tuple[Value, Value, Value, Value]:
    """The range of the previous bars: top H, bottom L, width W and middle."""
    top = v.highest_high(p["range_lookback"])
    bottom = v.lowest_low(p["range_lookback"])
    return top, bottom, top - bottom, (top + bottom) / 2


def _setups(v: View, p: Params) -> tuple[Value, Value]:
    bar, a, eps = v.candle(), v.atr(), v.eps
    top, bottom, width, mid = _box(v, p)
    drift = abs(v.ema(p["ema_period"]) - v.ema(p["ema_period"], p["flat_bars"]))
    setup = (ge(width, p["min_width_atr"] * a, eps) & le(width, p["max_width_atr"] * a, eps)
             & le(drift, p["flat_max_atr"] * a, eps))
    sell = (setup & ge(bar.high, top - p["probe_frac"] * width, eps)
            & le(bar.close, top - p["reject_frac"] * width, eps)
            & gt(bar.close, mid, eps) & bearish(bar, eps))
    buy = (setup & le(bar.low, bottom + p["probe_frac"] * width, eps)
           & ge(bar.close, bottom + p["reject_frac"] * width, eps)
           & lt(bar.close, mid, eps) & bullish(bar, eps))
    return buy, sell


def _stop(v: View, p: Params, side: Side) -> Value:
    bar, buffer = v.candle(), p["sl_buffer_atr"] * v.atr()
    top, bottom, _, _ = _box(v, p)
    if side == BUY:
        return np.minimum(bar.low, bottom) - buffer
    return np.maximum(bar.high, top) + buffer


def _target(v: View, p: Params, side: Side, risk: Value) -> Value:
    return _box(v, p)[3]


def _score(v: View, p: Params, side: Side, risk: Value) -> Value:
    return np.minimum(1.0, abs(_box(v, p)[3] - v.candle().close) / (2 * risk))


STRATEGY = Strategy(NAME, PARAMS, reaching=("range_lookback", "flat_bars"), setups=_setups,
                    stop=_stop, score=_score, target=_target, relations=RELATIONS)
DEFAULTS = STRATEGY.defaults
MIN_BARS_REACH = STRATEGY.min_bars_reach
evaluate = STRATEGY.evaluate
scan = STRATEGY.scan
