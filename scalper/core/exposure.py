"""What is at risk, and the limits on it: the pieces of a risk decision that
`run-once` and the backtester both build, so that they build them alike.

- `build_exposure`: the Exposure a signal meets, from the open positions and
  opening orders of the accounts it would trade on;
- `day_start`: the UTC day that "today's P&L" covers;
- `kill_switch_reason`: whether the position upkeep must engage the kill-switch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from scalper.clock import DAY_SECONDS
from scalper.core import upkeep
from scalper.core.risk import Exposure, daily_loss_cap, daily_loss_hit, has_daily_loss_cap
from scalper.core.rules import RiskRules
from scalper.symbols import root_symbol

if TYPE_CHECKING:   # arrays only in annotations: the live path need not import numpy here
    import numpy as np


UNREALIZED_LOSS = "unrealized_loss"
DAILY_LOSS = "daily_loss"


def day_start(now: float) -> float:
    """Midnight UTC of the day holding `now` (epoch seconds count no leap seconds)."""
    return float(int(now // DAY_SECONDS) * DAY_SECONDS)


def day_starts(now: np.ndarray) -> np.ndarray:
    """`day_start` of every element of an integer array of instants, as floats."""
    import numpy as np

    starts: np.ndarray = ((now // DAY_SECONDS) * DAY_SECONDS).astype(np.float64)
    return starts


def build_exposure(open_items: Iterable[tuple[int, str, str]], *, symbol: str, group_symbols: Iterable[str] = (),
                   balance: float, pnl_today: float, spread_points: float | None,
                   kill_switch_engaged: bool = False, engine_paused: bool = False,
                   quote: tuple[float, float] | None = None, price_digits: int | None = None,
                   stops_min_distance: float = 0.0) -> Exposure:
    """The Exposure of a signal on `symbol`.

    `open_items` holds (account_id, symbol, side) for every open position and
    every opening order still in flight on the signal's accounts: counts are
    per account and the worst account counts. `group_symbols` are the members
    of the symbol's correlation groups; `pnl_today` is realized today plus
    unrealized; `balance` the smallest of the accounts'. `quote` is the latest (bid, ask) an
    order would meet, `price_digits` and `stops_min_distance` the symbol's rounding of
    SL/TP and its stops level in price.
    """
    group = set(group_symbols)
    group_roots = {root_symbol(m) for m in group} - {root_symbol(symbol)} if group else set()
    totals: dict[int, int] = {}
    on_symbol: dict[int, int] = {}
    directions, group_directions = set(), set()
    for account, item_symbol, side in open_items:
        totals[account] = totals.get(account, 0) + 1
        if item_symbol == symbol:
            on_symbol[account] = on_symbol.get(account, 0) + 1
            directions.add(side)
        elif group_roots and root_symbol(item_symbol) in group_roots:
            group_directions.add(side)
    return Exposure(balance=balance, open_total=max(totals.values(), default=0),
                    open_on_symbol=max(on_symbol.values(), default=0),
                    directions_on_symbol=frozenset(directions), group_directions=frozenset(group_directions),
                    pnl_today=pnl_today, spread_points=spread_points, engine_paused=engine_paused,
                    kill_switch_engaged=kill_switch_engaged, bid=quote[0] if quote else None,
                    ask=quote[1] if quote else None, price_digits=price_digits,
                    stops_min_distance=stops_min_distance)


def kill_switch_reason(*, unrealized: float, realized_today: float, balance: float,
                       rules: RiskRules) -> tuple[str, str] | None:
    """(source, reason) when a bot's kill-switch must engage, else None.

    First the floating loss of its open positions against the kill-switch
    limits, then today's P&L (realized + unrealized) against the daily loss cap.
    """
    rule = rules.kill_switch
    reason = upkeep.kill_switch_tripped(unrealized, balance, loss_limit=rule.loss, loss_limit_pct=rule.loss_pct)
    if reason is not None:
        return UNREALIZED_LOSS, reason
    cap = daily_loss_cap(rules.limits, balance)
    today = realized_today + unrealized
    if daily_loss_hit(today, cap):
        return DAILY_LOSS, f"today's P&L {today:.2f} reached the daily loss limit -{cap:.2f}"
    return None


def kill_switch_idle_when_flat(rules: RiskRules) -> bool:
    """Whether `kill_switch_reason` gives None whatever the balance and today's realized P&L when no
    position is open (unrealized 0): the floating loss is then none, and only a daily loss cap
    could act on today's realized P&L; without one nothing can."""
    return not has_daily_loss_cap(rules.limits)


def kill_switch_trips(*, unrealized: np.ndarray, realized_today: np.ndarray, balance: float,
                      rules: RiskRules) -> np.ndarray:
    """Vector form of `kill_switch_reason` (numpy arrays of unrealized and realized-today P&L,
    one balance): True where it would return a reason."""
    loss = -unrealized
    tripped: np.ndarray = loss != loss   # all False, the arrays' shape
    rule = rules.kill_switch
    if rule.loss is not None:
        tripped |= loss >= rule.loss
    if rule.loss_pct is not None and balance > 0:
        tripped |= loss >= balance * rule.loss_pct / 100.0
    tripped &= loss > 0
    tripped |= daily_loss_hit(realized_today + unrealized, daily_loss_cap(rules.limits, balance))   # element by element
    return tripped
