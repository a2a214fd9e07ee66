"""The words the ledger, the desk, the brokers and the reports share: each defined once here.

Every value is the exact text (or number) stored in the ledger or sent by MetaTrader 5, so a
member compares equal to what is read back (`OrderStatus.FILLED == "filled"`). Plain data, no
I/O: the core may import it. Risk reason codes stay with the risk decision (`scalper.core.risk`).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Literal

# How reports and P&L books label a position adopted from the broker (no bot or strategy of ours opened it).
ADOPTED = "(adopted)"


class Side(StrEnum):
    """The side of an order, a position or a deal; a signal's direction is the side it would open."""

    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        """The side that closes this one (closing a buy is a sell)."""
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def word(self) -> Literal["buy", "sell"]:
        """The side as the broker protocol's literal (brokers.base.Side)."""
        return "buy" if self is Side.BUY else "sell"


class OrderKind(StrEnum):
    OPEN = "open"      # opens a position for a signal
    CLOSE = "close"    # closes one position by its ticket


class OrderStatus(StrEnum):
    """An order's life: `new` (intent recorded, nothing sent) → `sent` (about to leave) → one final state."""

    NEW = "new"
    SENT = "sent"
    FILLED = "filled"
    REJECTED = "rejected"      # a final refusal by the broker
    ERROR = "error"            # still refused when the retry budget ran out, or not sendable
    FAILED = "failed"          # never reached the broker: found nowhere after an interrupted send (on MT5, whose
                               # history may lag, only after orders.HISTORY_WAIT_S in doubt as `sent`)
    CANCELED = "canceled"      # by rollback, before it was sent


# Not settled yet: they count as exposure, and the next run reconciles them.
ORDER_IN_FLIGHT: tuple[OrderStatus, ...] = (OrderStatus.NEW, OrderStatus.SENT)
# Ended without a fill: what a run reports as an order problem.
ORDER_PROBLEMS: tuple[OrderStatus, ...] = (OrderStatus.REJECTED, OrderStatus.ERROR, OrderStatus.FAILED)
# A close order that ended so is sent again while its position is open.
CLOSE_RETRYABLE: tuple[OrderStatus, ...] = (*ORDER_PROBLEMS, OrderStatus.CANCELED)


class RunStatus(StrEnum):
    RUNNING = "running"            # in progress, or died without finishing (found so by the next run)
    OK = "ok"
    PAUSED = "paused"              # every bot skipped: rollback paused the engine
    ERROR = "error"
    UNAVAILABLE = "unavailable"    # a broker or the feed could not be reached (exit 3)
    INTERRUPTED = "interrupted"    # was `running` when a later run started: killed or crashed


class PositionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CloseState(StrEnum):
    """positions.close_state: NULL once a closed position's P&L is booked, else this."""

    CLOSING = "closing"   # gone at the broker, its closing deal not in the history yet: P&L pending


class DecisionAction(StrEnum):
    OPEN = "open"        # approved
    REJECT = "reject"


class FillEntry(StrEnum):
    IN = "in"      # opens a position
    OUT = "out"    # closes it


class CloseReason(StrEnum):
    """Why a position closed: the broker's deal reason (MT5 DEAL_REASON_*, lower case), or ours."""

    CLIENT = "client"          # by hand in the desktop terminal
    MOBILE = "mobile"
    WEB = "web"
    EXPERT = "expert"          # by an expert advisor: scalper's own close order
    SL = "sl"
    TP = "tp"
    SO = "so"                  # stop out
    ROLLOVER = "rollover"
    VMARGIN = "vmargin"
    SPLIT = "split"
    MISSING_AT_BROKER = "missing_at_broker"   # gone at the broker, no closing deal ever found


class CloseCause(StrEnum):
    """Why scalper sent a close order (orders.reason): what a journal shows for a position
    whose closing deal says only that an expert closed it."""

    KILL_SWITCH = "kill_switch"    # an engaged kill-switch, by a run or by hand
    ROLLBACK = "rollback"          # `scalper rollback --close-positions`


class KillSwitchSource(StrEnum):
    MANUAL = "manual"                      # `scalper kill-switch engage|release`
    KEEP_POSITIONS = "manual_no_close"     # `engage --no-close`: no entries, positions kept open
    UNREALIZED_LOSS = "unrealized_loss"
    DAILY_LOSS = "daily_loss"


class BotSkip(StrEnum):
    """Why run-once did not run a bot this pass (RunSummary.bots_skipped); a bot whose
    engine_mode is not `scalper` is skipped as `engine_mode_<mode>`."""

    ENGINE_PAUSED = "engine_paused"
    DISABLED = "disabled"
    BROKER_UNAVAILABLE = "broker_unavailable"
    FEED_STALE = "feed_stale"
    FEED_NO_BARS = "feed_no_bars"
    FEED_UNAVAILABLE = "feed_unavailable"
    FEED_BAD_DATA = "feed_bad_data"
    SERVER_TIME_UNCERTAIN = "server_time_uncertain"


# A bot skipped for want of fresh bars (all of them skipped so: the feed is unavailable).
FEED_SKIPS: tuple[BotSkip, ...] = (BotSkip.FEED_STALE, BotSkip.FEED_NO_BARS, BotSkip.FEED_UNAVAILABLE)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DROPPED = "dropped"   # given up after too many tries


class RequestStatus(StrEnum):
    """A fleet operator request to one host (kill-switch, rollback), as the ledger holds it."""

    PENDING = "pending"
    CONFIRMED = "confirmed"


class TradeRetcode(IntEnum):
    """MetaTrader 5's trade server return codes: each member is `mt5.TRADE_RETCODE_<NAME>`,
    same name, same number. Every broker (the paper broker included) answers with these."""

    REQUOTE = 10004
    REJECT = 10006
    CANCEL = 10007
    PLACED = 10008
    DONE = 10009
    DONE_PARTIAL = 10010
    ERROR = 10011
    TIMEOUT = 10012
    INVALID = 10013
    INVALID_VOLUME = 10014
    INVALID_PRICE = 10015
    INVALID_STOPS = 10016
    TRADE_DISABLED = 10017
    MARKET_CLOSED = 10018
    NO_MONEY = 10019
    PRICE_CHANGED = 10020
    PRICE_OFF = 10021
    INVALID_EXPIRATION = 10022
    ORDER_CHANGED = 10023
    TOO_MANY_REQUESTS = 10024
    NO_CHANGES = 10025
    SERVER_DISABLES_AT = 10026
    CLIENT_DISABLES_AT = 10027
    LOCKED = 10028
    FROZEN = 10029
    INVALID_FILL = 10030
    CONNECTION = 10031
    ONLY_REAL = 10032
    LIMIT_ORDERS = 10033
    LIMIT_VOLUME = 10034
    INVALID_ORDER = 10035
    POSITION_CLOSED = 10036
    INVALID_CLOSE_VOLUME = 10038
    CLOSE_ORDER_EXIST = 10039
    LIMIT_POSITIONS = 10040
    REJECT_CANCEL = 10041
    LONG_ONLY = 10042
    SHORT_ONLY = 10043
    CLOSE_ONLY = 10044
    FIFO_CLOSE = 10045
    HEDGE_PROHIBITED = 10046
