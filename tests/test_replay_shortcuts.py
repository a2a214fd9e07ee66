"""The backtester's shortcuts give what the rules they stand for give:

- `risk.decide` split in two (`book_refusal`, then `market_decision`) decides as the one function
  did, and a refusal of the book's checks is the decision whatever the market; the replay counts
  a run of such refusals without stepping their bars (the per-bar oracle of tests/per_bar_replay
  over risk settings where every book check refuses);
- the trade rows made column by column (`trades_to_rows`, `rounding.values`, `rounding.round_array`)
  equal `trade_row` and `round` value by value.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper import rounding
from scalper.backtest import Setup, run_backtest
from scalper.config import RiskConfig
from scalper.core import risk
from scalper.core.risk import Decision, Exposure, RiskLimits, daily_loss_cap, order_stops, signal_age
from scalper.core.signals import Signal
from scalper.core.stops import stops_valid
from scalper.core.strategies import STRATEGY_NAMES, resolve_params
from scalper.feeds.csvfile import read_bars
from scalper.services.backtest import trade_row, trades_to_rows
from scalper.settings import risk_rules
from scalper.symbols import spec_for
from scalper.vocab import DecisionAction
from tests.conftest import shared_file
from tests.per_bar_replay import per_bar_backtest

BAR = 1_747_000_000 - 1_747_000_000 % 60


def decide_as_it_was(signal: Signal, exposure: Exposure, limits: RiskLimits, now: float) -> Decision:
    """`risk.decide` as one function, before it was split: the oracle."""
    def reject(reason: str, detail: str) -> Decision:
        return Decision(DecisionAction.REJECT, reason, detail)

    if exposure.engine_paused:
        return reject(risk.ENGINE_PAUSED, "the engine is paused (scalper resume lifts it)")
    if exposure.kill_switch_engaged:
        return reject(risk.KILL_SWITCH, "the bot's kill-switch is engaged")
    age = signal_age(signal, now)
    if age > limits.signal_max_age_s:
        return reject(risk.STALE, f"signal is {age:.0f}s old, limit {limits.signal_max_age_s:.0f}s")
    if signal.score < limits.decision_min_score:
        return reject(risk.LOW_SCORE, f"score {signal.score:.3f} < {limits.decision_min_score:.3f}")
    if exposure.balance <= limits.min_balance or exposure.balance <= 0:
        return reject(risk.NO_BALANCE, f"balance {exposure.balance:.2f}")
    if exposure.open_total >= limits.max_concurrent:
        return reject(risk.MAX_CONCURRENT, f"{exposure.open_total} open, limit {limits.max_concurrent}")
    if exposure.open_on_symbol >= limits.max_per_symbol:
        return reject(risk.MAX_PER_SYMBOL,
                      f"{exposure.open_on_symbol} open on the symbol, limit {limits.max_per_symbol}")
    opposite = "sell" if signal.direction == "buy" else "buy"
    if opposite in exposure.directions_on_symbol:
        return reject(risk.OPPOSITE_OPEN, f"a {opposite} is open on the symbol")
    if signal.direction in exposure.group_directions:
        return reject(risk.CORRELATED, f"a correlated symbol already has a {signal.direction} open")
    cap = daily_loss_cap(limits, exposure.balance)
    if cap is not None and -exposure.pnl_today >= cap:
        return reject(risk.DAILY_LOSS, f"today's P&L {exposure.pnl_today:.2f}, limit -{cap:.2f}")
    if (limits.max_spread_points is not None and exposure.spread_points is not None
            and exposure.spread_points > limits.max_spread_points):
        return reject(risk.SPREAD, f"spread {exposure.spread_points:.0f} > {limits.max_spread_points:.0f} points")
    if exposure.bid is not None and exposure.ask is not None:
        sl, tp = order_stops(signal, exposure.price_digits)
        if not stops_valid(signal.direction, sl, tp, bid=exposure.bid, ask=exposure.ask,
                           min_distance=exposure.stops_min_distance):
            return reject(risk.STOPS_BEYOND_QUOTE, f"{signal.direction} SL {sl:g} / TP {tp:g} against bid "
                                                   f"{exposure.bid:g} ask {exposure.ask:g}: the price already "
                                                   "moved past a level")
    return Decision(DecisionAction.OPEN, risk.APPROVED, "")


sides = st.sampled_from(["buy", "sell"])
side_sets = st.frozensets(sides)
money = st.floats(-500, 5000, allow_nan=False)
maybe = st.one_of(st.none(), st.floats(0.5, 300, allow_nan=False))


@st.composite
def signals(draw):
    direction = draw(sides)
    entry = draw(st.floats(90, 110))
    off = draw(st.floats(-3, 3))
    return Signal("doji_breakout", direction, BAR - draw(st.sampled_from([0, 60, 120, 3600])), entry,
                  entry - off if direction == "buy" else entry + off, entry + 2 * off if direction == "buy"
                  else entry - 2 * off, draw(st.floats(0, 1)))


limits_st = st.builds(RiskLimits, max_concurrent=st.integers(1, 4), max_per_symbol=st.integers(1, 4),
                      decision_min_score=st.floats(0, 1), signal_max_age_s=st.integers(1, 200),
                      min_balance=st.floats(0, 200), daily_loss_limit=maybe, daily_loss_limit_pct=st.one_of(
                          st.none(), st.floats(0.1, 10)), max_spread_points=maybe)


@st.composite
def markets(draw):
    """The exposure's market fields: today's P&L, the spread, the quote and the stops' rules."""
    mid = draw(st.floats(90, 110))
    half = draw(st.floats(0, 0.5))
    quoted = draw(st.booleans())
    return dict(pnl_today=draw(money), spread_points=draw(st.one_of(st.none(), st.floats(0, 100))),
                bid=mid - half if quoted else None, ask=mid + half if quoted else None,
                price_digits=draw(st.one_of(st.none(), st.integers(0, 5))),
                stops_min_distance=draw(st.floats(0, 1)))


@st.composite
def books(draw):
    """The exposure's book fields."""
    total = draw(st.integers(0, 5))
    return dict(balance=draw(money), open_total=total, open_on_symbol=draw(st.integers(0, total)),
                directions_on_symbol=draw(side_sets), group_directions=draw(side_sets),
                engine_paused=draw(st.booleans()), kill_switch_engaged=draw(st.booleans()))


@settings(max_examples=600, deadline=None)
@given(signals(), books(), markets(), limits_st, st.integers(0, 400))
def test_the_split_decision_decides_as_the_one_function_did(signal, book, market, limits, late):
    now = BAR + 60 + late
    exposure = Exposure(**book, **market)
    assert risk.decide(signal, exposure, limits, now) == decide_as_it_was(signal, exposure, limits, now)


@settings(max_examples=600, deadline=None)
@given(signals(), books(), markets(), markets(), limits_st, st.integers(0, 400))
def test_a_refusal_of_the_book_is_the_decision_whatever_the_market(signal, book, market, other, limits, late):
    now = BAR + 60 + late
    reason = risk.book_refusal(signal, Exposure(**book, **market), limits, now)
    assert reason == risk.book_refusal(signal, Exposure(**book, **other), limits, now)
    for m in (market, other):
        decision = risk.decide(signal, Exposure(**book, **m), limits, now)
        if reason is None:
            assert decision.reason not in risk.BOOK_REASONS
        else:
            assert reason in risk.BOOK_REASONS and decision.reason == reason and not decision.approved


def test_the_book_reasons_are_the_first_checks_in_order():
    assert risk.BOOK_REASONS == (risk.ENGINE_PAUSED, risk.KILL_SWITCH, risk.STALE, risk.LOW_SCORE, risk.NO_BALANCE,
                                 risk.MAX_CONCURRENT, risk.MAX_PER_SYMBOL, risk.OPPOSITE_OPEN, risk.CORRELATED)
    assert risk.REASONS[:len(risk.BOOK_REASONS)] == risk.BOOK_REASONS


# --- the replay: runs of book refusals counted, not stepped ------------------------------------
RISKS = [
    {"decision_min_score": 0.6},                                      # low scores, book open or not
    {"signal_max_age_s": 4},                                          # every signal stale: nothing opens
    {"max_per_symbol": 2, "max_concurrent": 2},                       # opposite positions refused
    {"max_per_symbol": 3, "max_concurrent": 2, "kill_switch_loss": 6.0},   # concurrency before the symbol
    {"min_balance": 9_990.0, "kill_switch": False},                   # no balance once a few trades lose
]


@pytest.fixture(scope="module")
def gold():
    bars, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    return bars


def _outcome(r):
    return (r.trades, dict(r.refused), {k: dict(c) for k, c in r.decisions.items()}, r.kill_switches, r.trailed,
            r.final_balance, r.bars, r.start, r.end)


def _setup(risk_settings: dict, balance: float = 10_000.0, qty: float = 0.01) -> Setup:
    return Setup(symbol="XAUUSD", spec=spec_for("XAUUSD"), strategies=STRATEGY_NAMES,
                 params={n: resolve_params(n, None, 100) for n in STRATEGY_NAMES}, lookback=100, qty=qty,
                 rules=risk_rules(RiskConfig(**risk_settings)), balance=balance)


@pytest.mark.slow
@pytest.mark.parametrize("risk_settings", RISKS, ids=[str(r) for r in RISKS])
def test_book_refusals_counted_in_a_run_equal_the_per_bar_replay(gold, risk_settings):
    setup = _setup(risk_settings)
    for start, end in ((None, None), (float(gold.time[2000]), float(gold.time[7000]))):
        new = run_backtest(gold, setup, start=start, end=end)
        assert _outcome(new) == _outcome(per_bar_backtest(gold, setup, start=start, end=end))
    reasons = {r for c in new.decisions.values() for r in c}
    assert reasons & set(risk.BOOK_REASONS)


@pytest.mark.slow
@pytest.mark.parametrize("balance, qty", [(600.0, 0.3), (1000.0, 0.5)])
def test_a_stop_out_inside_a_run_of_refusals_equals_the_per_bar_replay(balance, qty):
    # bitcoin on a small account at 1:2000: the broker stops the book out while signals meet a full
    # book; the refusals counted past it are decided again after it (no balance then)
    bars, _ = read_bars(shared_file("BTCUSD_M1.csv"))
    setup = Setup(symbol="BTCUSD", spec=spec_for("BTCUSD"), strategies=STRATEGY_NAMES,
                  params={n: resolve_params(n, None, 100) for n in STRATEGY_NAMES}, lookback=100, qty=qty,
                  rules=risk_rules(RiskConfig(kill_switch=False)), balance=balance, leverage=2000)
    new = run_backtest(bars, setup)
    assert _outcome(new) == _outcome(per_bar_backtest(bars, setup))
    assert any(t.exit_reason == "stop_out" for t in new.trades)
    assert sum(c[risk.NO_BALANCE] for c in new.decisions.values())
    assert sum(c[risk.MAX_PER_SYMBOL] for c in new.decisions.values())


def test_the_fixed_qty_is_sized_once_and_alike(gold):
    # risk_percent sizes each order by its stop; the fixed qty is the same order every time
    fixed = run_backtest(gold, _setup({}))
    assert {t.volume for t in fixed.trades} == {0.01}
    sized = run_backtest(gold, _setup({"risk_percent": 0.5}))
    assert len({t.volume for t in sized.trades}) > 1


# --- the trade rows, column by column -------------------------------------------------------
def test_trade_rows_by_column_equal_trade_row(gold):
    trades = run_backtest(gold, _setup({})).trades
    assert len(trades) > 500
    for digits in (2, None, 5):
        assert trades_to_rows(trades, digits) == [trade_row(t, digits) for t in trades]
    odd = [dataclasses.replace(trades[0], pnl=math.inf, exit=-0.0001, volume=0.07),
           dataclasses.replace(trades[1], pnl=-0.004, sl=math.nan, entry_time=trades[1].entry_time + 0.5)]
    assert trades_to_rows(odd, 2) == [trade_row(t, 2) for t in odd]
    assert trades_to_rows(odd, 2)[0]["pnl"] is None and trades_to_rows(odd, 2)[1]["pnl"] == 0.0
    assert trades_to_rows([], 2) == []


finite = st.floats(allow_nan=False, allow_infinity=False)
ties = st.builds(lambda k, d: (k + 0.5) / 10 ** d, st.integers(-10**9, 10**9), st.integers(0, 6))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(finite, ties, st.floats(-1e4, 1e4)), min_size=1, max_size=60), st.integers(0, 8))
def test_round_array_is_python_round_bit_for_bit(values, decimals):
    got = rounding.round_array(np.array(values), decimals).tolist()
    want = [round(v, decimals) for v in values]
    assert [math.copysign(1, g) for g in got] == [math.copysign(1, w) for w in want]
    assert got == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(), ties, st.integers(-5, 5), st.none()), max_size=40), st.integers(0, 8))
def test_rounding_values_is_the_rounding_of_each(values, decimals):
    got = rounding.values(values, decimals)
    want = [rounding._round(v, decimals) for v in values]
    assert got == want
    assert [type(g) for g in got] == [type(w) for w in want]
    assert not any(isinstance(g, float) and math.copysign(1, g) < 0 and g == 0 for g in got)   # no -0.0


def test_round_array_keeps_nan_and_infinities():
    got = rounding.round_array(np.array([math.nan, math.inf, -math.inf, 2.675, 1e300]), 2)
    assert math.isnan(got[0]) and got[1:].tolist() == [math.inf, -math.inf, round(2.675, 2), 1e300]
