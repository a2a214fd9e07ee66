"""The vector forms of the risk decision (`risk.book_refusals`, `risk.quote_refusals`) and the
decision put back together from them (`risk.reason_of`) give what `risk.decide` gives, signal by
signal; `sim.bar_exits` gives what `sim.bar_exit` gives, position by position. The backtester
decides an empty book's signals and closes its chain's positions with them (tests/test_replay_parts.py
for the replays)."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.core import risk, sim
from scalper.core.risk import Exposure, order_stops, signal_age
from tests.test_replay_shortcuts import BAR, books, limits_st, markets, signals


def _codes(reasons):
    return [-1 if r is None else risk.REASONS.index(r) for r in reasons]


@settings(max_examples=400, deadline=None)
@given(st.lists(signals(), min_size=1, max_size=12), books(), limits_st, st.lists(st.integers(0, 400), min_size=12,
                                                                                   max_size=12))
def test_book_refusals_is_book_refusal_for_each_signal(many, book, limits, late):
    exposure = Exposure(**book)
    nows = [BAR + 60 + d for d in late[:len(many)]]
    got = risk.book_refusals(np.array([signal_age(s, t) for s, t in zip(many, nows)]),
                             np.array([s.score for s in many]), np.array([s.direction == "buy" for s in many]),
                             exposure, limits)
    assert got.tolist() == _codes(risk.book_refusal(s, exposure, limits, t) for s, t in zip(many, nows))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(signals(), markets()), min_size=1, max_size=12), limits_st, st.integers(0, 5),
       st.floats(0, 1))
def test_quote_refusals_is_the_market_decision_after_the_daily_loss(pairs, limits, digits, distance):
    quoted = [(s, m) for s, m in pairs if m["bid"] is not None and m["spread_points"] is not None]
    if not quoted:
        return
    stops = [order_stops(s, digits) for s, _ in quoted]
    got = risk.quote_refusals(np.array([s.direction == "buy" for s, _ in quoted]),
                              np.array([sl for sl, _ in stops]), np.array([tp for _, tp in stops]),
                              spread_points=np.array([m["spread_points"] for _, m in quoted]),
                              bid=np.array([m["bid"] for _, m in quoted]), ask=np.array([m["ask"] for _, m in quoted]),
                              stops_min_distance=distance, limits=limits)
    want = []
    for s, m in quoted:   # no daily loss: the market's other checks decide
        exposure = Exposure(balance=1.0, **{**m, "pnl_today": 0.0, "price_digits": digits,
                                           "stops_min_distance": distance})
        no_cap = dataclasses.replace(limits, daily_loss_limit=None, daily_loss_limit_pct=None)
        reason = risk.market_decision(s, exposure, no_cap).reason
        want.append(None if reason == risk.APPROVED else reason)
    assert got.tolist() == _codes(want)


@settings(max_examples=800, deadline=None)
@given(signals(), books(), markets(), limits_st, st.integers(0, 400), st.integers(0, 5))
def test_the_decision_from_its_parts_is_decide(signal, book, market, limits, late, digits):
    now = BAR + 60 + late
    market = {**market, "price_digits": digits}
    if market["bid"] is None or market["spread_points"] is None:
        market.update(bid=100.0, ask=100.2, spread_points=20.0)
    exposure = Exposure(**book, **market)
    buy = np.array([signal.direction == "buy"])
    book_code = risk.book_refusals(np.array([signal_age(signal, now)]), np.array([signal.score]), buy, exposure,
                                   limits)[0]
    sl, tp = order_stops(signal, digits)
    quote_code = risk.quote_refusals(buy, np.array([sl]), np.array([tp]),
                                     spread_points=np.array([market["spread_points"]]), bid=np.array([market["bid"]]),
                                     ask=np.array([market["ask"]]), stops_min_distance=market["stops_min_distance"],
                                     limits=limits)[0]
    reason = risk.reason_of(int(book_code), exposure.pnl_today, exposure.balance, int(quote_code), limits)
    assert reason == risk.decide(signal, exposure, limits, now).reason


prices = st.floats(95, 105, allow_nan=False)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.booleans(), prices, prices, prices, st.floats(0, 3), st.floats(0, 3)), min_size=1,
                max_size=30))
def test_bar_exits_is_bar_exit_for_each_position(rows):
    buy = np.array([r[0] for r in rows])
    sl, tp, o = (np.array([r[n] for r in rows]) for n in (1, 2, 3))
    high, low = o + np.array([r[4] for r in rows]), o - np.array([r[5] for r in rows])
    for k in range(len(rows)):   # levels that touch exactly as well
        if k % 3 == 1:
            sl[k] = low[k] if buy[k] else high[k]
        if k % 4 == 2:
            tp[k] = o[k]
    price, is_sl = sim.bar_exits(buy, sl, tp, o, high, low)
    for k in range(len(rows)):
        hit = sim.bar_exit("buy" if buy[k] else "sell", float(sl[k]), float(tp[k]), float(o[k]), float(high[k]),
                           float(low[k]))
        if hit is None:
            assert np.isnan(price[k])
        else:
            assert (float(price[k]), "sl" if is_sl[k] else "tp") == hit
