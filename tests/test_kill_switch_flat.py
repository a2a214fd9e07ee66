"""exposure.kill_switch_idle_when_flat: when it holds, kill_switch_reason gives None for an empty book
(unrealized 0) whatever the balance and today's realized P&L; when it does not, some day's loss trips it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scalper.core.exposure import kill_switch_idle_when_flat, kill_switch_reason
from scalper.core.rules import KillSwitchRule, RiskLimits, RiskRules

maybe_money = st.none() | st.floats(min_value=0.0, max_value=1e6)
maybe_pct = st.none() | st.floats(min_value=0.0, max_value=100.0)
rules = st.builds(lambda dl, dlp, loss, pct: RiskRules(limits=RiskLimits(daily_loss_limit=dl, daily_loss_limit_pct=dlp),
                                                       kill_switch=KillSwitchRule(enabled=True, loss=loss, loss_pct=pct)),
                  maybe_money, maybe_pct, maybe_money, maybe_pct)
money = st.floats(min_value=-1e7, max_value=1e7)


@given(rules, money, money)
def test_an_idle_flat_kill_switch_never_trips_on_an_empty_book(r, balance, realized):
    if kill_switch_idle_when_flat(r):
        for unrealized in (0, 0.0, -0.0):   # the empty book's sum is the int 0
            assert kill_switch_reason(unrealized=unrealized, realized_today=realized, balance=balance, rules=r) is None


@given(rules)
def test_with_a_daily_cap_a_flat_book_can_trip(r):
    if not kill_switch_idle_when_flat(r):
        # a day that lost everything and more reaches any cap on a positive balance
        assert kill_switch_reason(unrealized=0, realized_today=-1e9, balance=1e6, rules=r) is not None
