"""Trade statistics (scalper.report.stats) on hand-made trades."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scalper.report import stats


def test_a_mixed_run_of_trades():
    s = stats.summarize([10.0, -5.0, 0.0, 20.0, -10.0])
    assert (s.trades, s.wins, s.losses) == (5, 2, 2)
    assert s.win_rate == pytest.approx(0.4)            # the break-even trade counts, as neither
    assert (s.gross_profit, s.gross_loss) == (30.0, 15.0)
    assert s.profit_factor == pytest.approx(2.0)
    assert s.expectancy == pytest.approx(3.0)
    assert s.net_pnl == pytest.approx(15.0)
    # cumulative 10, 5, 5, 25, 15: falls of 5 (10 → 5) and 10 (25 → 15)
    assert s.max_drawdown == pytest.approx(10.0)


def test_no_losing_trade_gives_an_infinite_profit_factor_written_as_null():
    s = stats.summarize([1.5, 2.5])
    assert math.isinf(s.profit_factor) and s.gross_loss == 0 and s.max_drawdown == 0
    doc = s.to_dict()
    assert doc["profit_factor"] is None and doc["gross_profit"] == 4.0
    json.dumps(doc, allow_nan=False)                   # strict JSON: no Infinity


def test_no_trades_at_all():
    s = stats.summarize([])
    assert (s.trades, s.win_rate, s.profit_factor, s.expectancy, s.net_pnl, s.max_drawdown) == \
        (0, None, None, None, 0.0, 0.0)
    json.dumps(s.to_dict(), allow_nan=False)


def test_only_losses_draw_down_from_the_start():
    s = stats.summarize([-3.0, -2.0])
    assert s.profit_factor == 0.0 and s.win_rate == 0.0
    assert s.max_drawdown == pytest.approx(5.0)        # measured from 0 before the first trade


def test_break_even_trades_alone_have_no_profit_factor():
    s = stats.summarize([0.0, 0.0])
    assert (s.trades, s.wins, s.losses, s.profit_factor, s.win_rate) == (2, 0, 0, None, 0.0)


def test_equity_curve():
    rows = [(100.0, 5.0), (200.0, -2.0), (300.0, 1.0)]
    assert stats.equity_curve(rows, 1000.0) == [(100.0, 1005.0), (200.0, 1003.0), (300.0, 1004.0)]
    assert stats.cumulative([5.0, -2.0, 1.0]) == [5.0, 3.0, 4.0]


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(-1e4, 1e4)), max_size=60))
def test_groups_add_up_to_the_whole(rows):
    whole = stats.summarize([p for _, p in rows])
    parts = [stats.summarize([p for g, p in rows if g == name]) for name in "abc"]
    assert sum(p.trades for p in parts) == whole.trades
    assert sum(p.wins for p in parts) == whole.wins and sum(p.losses for p in parts) == whole.losses
    assert sum(p.net_pnl for p in parts) == pytest.approx(whole.net_pnl, abs=1e-6)
    # a drawdown is a sum of consecutive losses, never more than all of them
    assert 0.0 <= whole.max_drawdown <= whole.gross_loss + 1e-6
    assert whole.max_drawdown >= max((-p for _, p in rows), default=0.0) - 1e-6


# --- the vector form (numpy from stats.VECTOR_FROM trades) agrees with the plain loop ---------------
money = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: round(x, 2))


@given(st.lists(money | st.sampled_from([0.0, -0.0, 0.01, -0.01]), min_size=0, max_size=600))
def test_the_array_form_gives_the_plain_loops_numbers_bit_for_bit(pnls):
    plain, array = stats._summarize_plain(pnls), stats._summarize_array(pnls)
    assert repr(plain) == repr(array)   # repr: -0.0 and 0.0 told apart, NaN never equal to itself
    assert repr(stats.max_drawdown_array(pnls)) == repr(stats.max_drawdown(pnls))
    assert repr(stats.summarize(pnls)) == repr(plain)


def test_the_array_form_leaves_non_finite_pnls_to_the_plain_loop():
    pnls = [1.0] * 300 + [math.nan, -2.0, math.inf]
    assert repr(stats._summarize_array(pnls)) == repr(stats._summarize_plain(pnls))
    many = [(-1.0) ** k * k for k in range(1000)]   # a long run: summarize takes the array form
    assert len(many) >= stats.VECTOR_FROM and stats.summarize(many) == stats._summarize_plain(many)
