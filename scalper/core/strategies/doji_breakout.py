"""doji_breakout — a doji's consolidation broken decisively (docs/strategies.md §3)."""

from __future__ import annotations

from scalper.core.strategies.base import BUY, Side, Strategy
from scalper.core.strategies.params import Kind, Param, Params
from scalper.core.strategies.tolerance import Value, ge, gt, le, lt
from scalper.core.strategies.views import View

NAME = "doji_breakout"

PARAMS = {
    "ema_period": Param(21, Kind.COUNT),
    "doji_body_max": Param(0.1, Kind.FRACTION),
    "doji_range_max_atr": Param(1.0, Kind.POSITIVE),
    "breakout_body_min": Param(0.5, Kind.FRACTION),
    "sl_buffer_atr": Param(0.1, Kind.NON_NEGATIVE),
    "rr": Param(1.5, Kind.POSITIVE),
    "min_bars": Param(30, Kind.COUNT),
}


def _setups(v: View, p: Params) -> tuple[Value, Value]:
    bar, doji, a, eps = v.candle(), v.candle(1), v.atr(), v.eps
    ema_now = v.ema(p["ema_period"])
    setup = (gt(doji.range, 0.0, eps) & le(doji.body, p["doji_body_max"] * doji.range, eps)
             & le(doji.range, p["doji_range_max_atr"] * a, eps)
             & gt(bar.range, 0.0, eps) & ge(bar.body, p["breakout_body_min"] * bar.range, eps))
    buy = setup & gt(bar.close, doji.high, eps) & gt(bar.close, ema_now, eps)
    sell = setup & lt(bar.close, doji.low, eps) & lt(bar.close, ema_now, eps)
    return buy, sell


def _stop(v: View, p: Params, side: Side) -> Value:
    doji, buffer = v.candle(1), p["sl_buffer_atr"] * v.atr()
    return doji.low - buffer if side == BUY else doji.high + buffer


def _score(v: View, p: Params, side: Side, risk: Value) -> Value:
    bar = v.candle()
    return bar.body / bar.range


STRATEGY = Strategy(NAME, PARAMS, reaching=(), setups=_setups, stop=_stop, score=_score)
DEFAULTS = STRATEGY.defaults
MIN_BARS_REACH = STRATEGY.min_bars_reach
evaluate = STRATEGY.evaluate
scan = STRATEGY.scan
