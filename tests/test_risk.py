"""The risk decision: every check, in its order, with its reason code."""

from __future__ import annotations

import pytest

from scalper.core import risk
from scalper.core.risk import Exposure, RiskLimits, decide
from scalper.core.signals import Signal

BAR = 1_747_000_000 - 1_747_000_000 % 60
NOW = BAR + 65


def sig(direction="buy", score=0.8, bar=BAR):
    sl, tp = (99.0, 101.5) if direction == "buy" else (101.0, 98.5)
    return Signal("doji_breakout", direction, bar, 100.0, sl, tp, score)


def test_a_clean_signal_is_approved():
    d = decide(sig(), Exposure(balance=1000), RiskLimits(), NOW)
    assert d.approved and d.action == "open" and d.reason == "open"


@pytest.mark.parametrize("exposure, limits, signal, reason", [
    (Exposure(balance=1000, engine_paused=True), RiskLimits(), sig(), risk.ENGINE_PAUSED),
    (Exposure(balance=1000, kill_switch_engaged=True), RiskLimits(), sig(), risk.KILL_SWITCH),
    (Exposure(balance=1000), RiskLimits(signal_max_age_s=4), sig(), risk.STALE),
    (Exposure(balance=1000), RiskLimits(decision_min_score=0.9), sig(score=0.5), risk.LOW_SCORE),
    (Exposure(balance=0), RiskLimits(), sig(), risk.NO_BALANCE),
    (Exposure(balance=50), RiskLimits(min_balance=100), sig(), risk.NO_BALANCE),
    (Exposure(balance=1000, open_total=2), RiskLimits(max_concurrent=2), sig(), risk.MAX_CONCURRENT),
    (Exposure(balance=1000, open_total=1, open_on_symbol=1), RiskLimits(), sig(), risk.MAX_PER_SYMBOL),
    (Exposure(balance=1000, open_total=1, open_on_symbol=1, directions_on_symbol=frozenset({"sell"})),
     RiskLimits(max_per_symbol=3), sig("buy"), risk.OPPOSITE_OPEN),
    (Exposure(balance=1000, open_total=1, group_directions=frozenset({"buy"})), RiskLimits(), sig("buy"),
     risk.CORRELATED),
    (Exposure(balance=1000, pnl_today=-200), RiskLimits(daily_loss_limit=200), sig(), risk.DAILY_LOSS),
    (Exposure(balance=1000, pnl_today=-30), RiskLimits(daily_loss_limit_pct=3), sig(), risk.DAILY_LOSS),
    (Exposure(balance=1000, spread_points=45), RiskLimits(max_spread_points=40), sig(), risk.SPREAD),
])
def test_each_check_names_its_reason(exposure, limits, signal, reason):
    d = decide(signal, exposure, limits, NOW)
    assert d.action == "reject" and d.reason == reason and d.detail


def test_near_misses_pass():
    assert decide(sig(), Exposure(balance=1000, open_total=1), RiskLimits(max_concurrent=2), NOW).approved
    assert decide(sig("sell"), Exposure(balance=1000, group_directions=frozenset({"buy"})), RiskLimits(),
                  NOW).approved
    assert decide(sig(), Exposure(balance=1000, pnl_today=-199.99), RiskLimits(daily_loss_limit=200), NOW).approved
    assert decide(sig(), Exposure(balance=1000, spread_points=40), RiskLimits(max_spread_points=40), NOW).approved
    assert decide(sig(score=0.5), Exposure(balance=1000), RiskLimits(decision_min_score=0.5), NOW).approved
    # exactly at the age limit is still fresh
    assert decide(sig(), Exposure(balance=1000), RiskLimits(signal_max_age_s=5), NOW).approved


def test_first_failing_check_wins():
    e = Exposure(balance=0, open_total=9, open_on_symbol=9, kill_switch_engaged=True)
    assert decide(sig(), e, RiskLimits(), NOW).reason == risk.KILL_SWITCH
    assert decide(sig(), Exposure(balance=0, open_total=9), RiskLimits(), NOW).reason == risk.NO_BALANCE


def test_every_book_reason_says_why():
    from scalper.core.risk import _BOOK_DETAILS
    assert tuple(_BOOK_DETAILS) == risk.BOOK_REASONS
