"""The risk decision: one pure function from (signal, exposure, limits, now) to
an action and a reason code. The checks run in a fixed order and the first
one that fails names the reason, so a rejection always says the real cause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scalper.core.bars import BAR_SECONDS
from scalper.core.rules import RiskLimits  # defined with the other rules; read here
from scalper.core.signals import Signal
from scalper.core.stops import stops_valid
from scalper.vocab import DecisionAction

if TYPE_CHECKING:   # arrays only in annotations: the live path need not import numpy here
    import numpy as np

APPROVED = DecisionAction.OPEN   # an approval is recorded with the action as its reason

# Reason codes, in the order they are checked.
ENGINE_PAUSED = "risk_engine_paused"
KILL_SWITCH = "risk_kill_switch_engaged"
STALE = "risk_signal_stale"
LOW_SCORE = "risk_score_below_min"
NO_BALANCE = "risk_no_balance"
MAX_CONCURRENT = "risk_max_concurrent_positions_exceeded"
MAX_PER_SYMBOL = "risk_max_positions_per_symbol_exceeded"
OPPOSITE_OPEN = "risk_opposite_position_open"
CORRELATED = "risk_correlation_group_exposed"
DAILY_LOSS = "risk_daily_loss_limit_reached"
SPREAD = "risk_spread_too_wide"
STOPS_BEYOND_QUOTE = "risk_stops_beyond_quote"

REASONS = (ENGINE_PAUSED, KILL_SWITCH, STALE, LOW_SCORE, NO_BALANCE, MAX_CONCURRENT,
           MAX_PER_SYMBOL, OPPOSITE_OPEN, CORRELATED, DAILY_LOSS, SPREAD, STOPS_BEYOND_QUOTE)

# Reason codes of sizing (core.sizing), per account, once the decision approved a signal:
# no order is sent rather than one larger than the settings allow.
VOLUME_BELOW_MIN = "risk_volume_below_minimum"
SIZING_REASONS = (NO_BALANCE, VOLUME_BELOW_MIN)


@dataclass(frozen=True)
class Exposure:
    """What is at risk right now, for the accounts a signal would trade on.

    Counts are the worst (largest) over those accounts; balance the smallest;
    open positions and orders in flight both count.
    """

    balance: float
    open_total: int = 0
    open_on_symbol: int = 0
    directions_on_symbol: frozenset[str] = frozenset()
    group_directions: frozenset[str] = frozenset()   # open in the bot's correlation group, other symbols
    pnl_today: float = 0.0                           # realized + unrealized today (negative = loss)
    spread_points: float | None = None
    engine_paused: bool = False
    kill_switch_engaged: bool = False
    # The latest quote the order would meet, and the symbol's rules for its stops: the
    # broker refuses an SL/TP on the wrong side of it (or nearer than the stops level).
    bid: float | None = None
    ask: float | None = None
    price_digits: int | None = None                  # SL/TP are rounded to these digits when sent
    stops_min_distance: float = 0.0                  # stops level x point


@dataclass(frozen=True)
class Decision:
    action: DecisionAction
    reason: str
    detail: str = ""

    @property
    def approved(self) -> bool:
        return self.action == DecisionAction.OPEN


def signal_age(signal: Signal, now: float) -> float:
    """Seconds since the signal bar closed."""
    return now - (signal.bar_time + BAR_SECONDS)


def daily_loss_cap(limits: RiskLimits, balance: float) -> float | None:
    caps = []
    if limits.daily_loss_limit is not None:
        caps.append(limits.daily_loss_limit)
    if limits.daily_loss_limit_pct is not None:
        caps.append(balance * limits.daily_loss_limit_pct / 100.0)
    return min(caps) if caps else None


# The checks are split in two, in the order above: those of the signal, the clock and the book,
# then those of the market (today's P&L, the spread, the quote). A refusal of the first part is
# the decision whatever the market: the backtester counts a run of them without building each
# signal's market (see scalper.backtest).
BOOK_REASONS = REASONS[:REASONS.index(CORRELATED) + 1]


def decide(signal: Signal, exposure: Exposure, limits: RiskLimits, now: float) -> Decision:
    reason = book_refusal(signal, exposure, limits, now)
    if reason is not None:
        return Decision(DecisionAction.REJECT, reason, _BOOK_DETAILS[reason](signal, exposure, limits, now))
    return market_decision(signal, exposure, limits)


def book_refusal(signal: Signal, exposure: Exposure, limits: RiskLimits, now: float) -> str | None:
    """The reason `decide` refuses the signal for, when a check of the signal, the clock or the book
    fails (the first in `decide`'s order, of BOOK_REASONS); else None, and `market_decision` decides.
    Reads of `exposure` only: engine_paused, kill_switch_engaged, balance, open_total, open_on_symbol,
    directions_on_symbol, group_directions."""
    if exposure.engine_paused:
        return ENGINE_PAUSED
    if exposure.kill_switch_engaged:
        return KILL_SWITCH
    if signal_age(signal, now) > limits.signal_max_age_s:
        return STALE
    if signal.score < limits.decision_min_score:
        return LOW_SCORE
    if no_balance(exposure.balance, limits):
        return NO_BALANCE
    if exposure.open_total >= limits.max_concurrent:
        return MAX_CONCURRENT
    if exposure.open_on_symbol >= limits.max_per_symbol:
        return MAX_PER_SYMBOL
    if ("sell" if signal.direction == "buy" else "buy") in exposure.directions_on_symbol:
        return OPPOSITE_OPEN
    if signal.direction in exposure.group_directions:
        return CORRELATED
    return None


def no_balance(balance: float, limits: RiskLimits) -> bool:
    """Whether the balance is too small to trade on (NO_BALANCE)."""
    return balance <= limits.min_balance or balance <= 0


def has_daily_loss_cap(limits: RiskLimits) -> bool:
    """Whether any daily loss cap is set (`daily_loss_cap` is then a number whatever the balance)."""
    return daily_loss_cap(limits, 0.0) is not None


def daily_loss_hit(pnl_today: float, cap: float | None) -> bool:
    """Whether today's P&L has reached the daily loss cap (`daily_loss_cap`; None: no cap); element by element
    for an array of P&L."""
    return cap is not None and -pnl_today >= cap


# What each refusal of `book_refusal` says, by reason: (signal, exposure, limits, now) -> detail.
_BOOK_DETAILS: dict[str, Callable[[Signal, Exposure, RiskLimits, float], str]] = {
    ENGINE_PAUSED: lambda s, e, lim, now: "the engine is paused (scalper resume lifts it)",
    KILL_SWITCH: lambda s, e, lim, now: "the bot's kill-switch is engaged",
    STALE: lambda s, e, lim, now: f"signal is {signal_age(s, now):.0f}s old, limit {lim.signal_max_age_s:.0f}s",
    LOW_SCORE: lambda s, e, lim, now: f"score {s.score:.3f} < {lim.decision_min_score:.3f}",
    NO_BALANCE: lambda s, e, lim, now: f"balance {e.balance:.2f}",
    MAX_CONCURRENT: lambda s, e, lim, now: f"{e.open_total} open, limit {lim.max_concurrent}",
    MAX_PER_SYMBOL: lambda s, e, lim, now: f"{e.open_on_symbol} open on the symbol, limit {lim.max_per_symbol}",
    OPPOSITE_OPEN: lambda s, e, lim, now: f"a {'sell' if s.direction == 'buy' else 'buy'} is open on the symbol",
    CORRELATED: lambda s, e, lim, now: f"a correlated symbol already has a {s.direction} open",
}


def market_decision(signal: Signal, exposure: Exposure, limits: RiskLimits) -> Decision:
    """The rest of `decide`, once `book_refusal` found nothing: the market's checks, in order."""
    def reject(reason: str, detail: str) -> Decision:
        return Decision(DecisionAction.REJECT, reason, detail)

    cap = daily_loss_cap(limits, exposure.balance)
    if daily_loss_hit(exposure.pnl_today, cap):
        return reject(DAILY_LOSS, f"today's P&L {exposure.pnl_today:.2f}, limit -{cap:.2f}")
    if (limits.max_spread_points is not None and exposure.spread_points is not None
            and exposure.spread_points > limits.max_spread_points):
        return reject(SPREAD, f"spread {exposure.spread_points:.0f} > {limits.max_spread_points:.0f} points")
    if exposure.bid is not None and exposure.ask is not None:
        sl, tp = order_stops(signal, exposure.price_digits)
        if not stops_valid(signal.direction, sl, tp, bid=exposure.bid, ask=exposure.ask,
                           min_distance=exposure.stops_min_distance):
            return reject(STOPS_BEYOND_QUOTE, f"{signal.direction} SL {sl:g} / TP {tp:g} against bid {exposure.bid:g} "
                                              f"ask {exposure.ask:g}: the price already moved past a level")
    return Decision(DecisionAction.OPEN, APPROVED, "")


def order_stops(signal: Signal, digits: int | None) -> tuple[float, float]:
    """The signal's SL and TP as an order carries them: rounded to the symbol's digits."""
    if digits is None:
        return signal.sl, signal.tp
    return round(signal.sl, digits), round(signal.tp, digits)


# --- vector forms, for the backtester: one signal per element -------------------------------
# A reason is given as its index in REASONS, -1 for none.
def book_refusals(age: np.ndarray, score: np.ndarray, buy: np.ndarray, exposure: Exposure,
                  limits: RiskLimits) -> np.ndarray:
    """Vector form of `book_refusal`: signals (their `signal_age` at the decision, score, and
    whether each is a buy) meeting one exposure."""
    import numpy as np

    def on_side(sides: frozenset[str], same: bool) -> np.ndarray:
        return np.where(buy, ("buy" if same else "sell") in sides, ("sell" if same else "buy") in sides)

    checks = ((ENGINE_PAUSED, exposure.engine_paused), (KILL_SWITCH, exposure.kill_switch_engaged),
              (STALE, age > limits.signal_max_age_s), (LOW_SCORE, score < limits.decision_min_score),
              (NO_BALANCE, no_balance(exposure.balance, limits)),
              (MAX_CONCURRENT, exposure.open_total >= limits.max_concurrent),
              (MAX_PER_SYMBOL, exposure.open_on_symbol >= limits.max_per_symbol),
              (OPPOSITE_OPEN, on_side(exposure.directions_on_symbol, same=False)),
              (CORRELATED, on_side(exposure.group_directions, same=True)))
    code = np.full(len(score), -1, dtype=np.int64)
    for reason, failed in reversed(checks):   # the first failing check wins
        code = np.where(failed, REASONS.index(reason), code)
    return code


def quote_refusals(buy: np.ndarray, sl: np.ndarray, tp: np.ndarray, *, spread_points: np.ndarray,
                   bid: np.ndarray, ask: np.ndarray, stops_min_distance: float, limits: RiskLimits,
                   valid: np.ndarray | None = None) -> np.ndarray:
    """Vector form of `market_decision`'s checks after the daily loss: the spread, then the order's
    stops (`order_stops`, already rounded) against the quote, per signal. `valid`: that stops
    check (`stops_valid_each`) when the caller made it already."""
    import numpy as np

    code = np.full(len(buy), -1, dtype=np.int64)
    if valid is None:
        valid = stops_valid_each(buy, sl, tp, bid=bid, ask=ask, min_distance=stops_min_distance)
    code = np.where(valid, code, REASONS.index(STOPS_BEYOND_QUOTE))
    if limits.max_spread_points is not None:
        code = np.where(spread_points > limits.max_spread_points, REASONS.index(SPREAD), code)
    return code


def stops_valid_each(buy: np.ndarray, sl: np.ndarray, tp: np.ndarray, *, bid: np.ndarray, ask: np.ndarray,
                     min_distance: float) -> np.ndarray:
    """`stops_valid` of each order, on its own side."""
    import numpy as np

    return np.where(buy, stops_valid("buy", sl, tp, bid=bid, ask=ask, min_distance=min_distance),
                    stops_valid("sell", sl, tp, bid=bid, ask=ask, min_distance=min_distance))


APPROVED_CODE = len(REASONS)   # an approval among the reason codes of `reasons_without_daily_loss`


def reasons_without_daily_loss(book_codes: np.ndarray, quote_codes: np.ndarray) -> np.ndarray:
    """`reason_of` of each signal when today's P&L is below any cap: its `book_refusals` code,
    else its `quote_refusals` code, else APPROVED_CODE."""
    import numpy as np

    codes: np.ndarray = np.where(book_codes >= 0, book_codes, np.where(quote_codes >= 0, quote_codes, APPROVED_CODE))
    return codes


def reason_of(book_code: int, pnl_today: float, balance: float, quote_code: int, limits: RiskLimits) -> str:
    """`decide`'s reason from its parts: the signal's `book_refusals` code, today's P&L and the
    balance (the daily loss), then its `quote_refusals` code."""
    if book_code >= 0:
        return REASONS[book_code]
    if daily_loss_hit(pnl_today, daily_loss_cap(limits, balance)):
        return DAILY_LOSS
    if quote_code >= 0:
        return REASONS[quote_code]
    return APPROVED
