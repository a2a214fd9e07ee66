"""What the parts of one pass share: the summary they fill, the brokers reached, the balances read,
the order desk, and the events the desk reports back."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from scalper.brokers.base import Broker
from scalper.clock import Clock, iso
from scalper.errors import BrokerUnavailable, ScalperError
from scalper.ledger import Ledger
from scalper.ledger.lock import DEFAULT_HOST
from scalper.orders import OrderDesk, RetryPolicy
from scalper.symbols import SymbolSpec, spec_for
from scalper.vocab import ORDER_PROBLEMS

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import AccountConfig, Config

log = logging.getLogger("scalper.engine")   # one log for every part of the pass

BrokerFactory = Callable[["AccountConfig"], Broker]


@dataclass
class RunSummary:
    run_id: str
    started_at: str
    as_of: str
    dry_run: bool = False
    duration_s: float = 0.0
    bots_run: list[str] = field(default_factory=list)
    bots_skipped: list[dict[str, str]] = field(default_factory=list)
    signals: int = 0                       # new signals recorded by this run
    signals_by_strategy: dict[str, int] = field(default_factory=dict)
    duplicate_signals: int = 0             # seen again (already decided by an earlier run)
    skips: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)
    orders_created: int = 0
    orders_final: dict[str, int] = field(default_factory=dict)   # status each touched order ended in
    not_sent: dict[str, int] = field(default_factory=dict)   # bot -> approved signals kept (auto_trade off)
    positions: dict[str, int] = field(default_factory=dict)
    kill_switches: list[dict[str, Any]] = field(default_factory=list)
    reconciled: list[str] = field(default_factory=list)
    # rejected / error / failed, with the broker's words
    order_problems: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # e.g. one symbol's stale bars while other bots ran
    exit_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def count_positions(self, counts: dict[str, int]) -> None:
        """Add a position sync's counts (what changed; `updated` is routine and not counted)."""
        for k, v in counts.items():
            if v and k != "updated":
                self.positions[k] = self.positions.get(k, 0) + v


class PassContext:
    """The state of one run-once pass, shared by its parts (sequence, market, signals, upkeep)."""

    def __init__(self, cfg: Config, ledger: Ledger, *, clock: Clock, now: float, dry_run: bool,
                 broker_factory: BrokerFactory, sleep: Callable[[float], None], host: str = DEFAULT_HOST) -> None:
        self.cfg = cfg
        self.host = host   # the terminal host this pass serves (its runs, its lock)
        self.ledger = ledger
        self.now = now
        self.dry_run = dry_run
        self.broker_factory = broker_factory
        self.specs = cfg.symbol_overrides()
        self.run_id = uuid.uuid4().hex[:16]
        self.summary = RunSummary(run_id=self.run_id, started_at=iso(time.time()), as_of=iso(now), dry_run=dry_run)
        self.brokers: dict[int, Broker] = {}
        self.unreachable: dict[int, str] = {}
        self.balances: dict[int, float] = {}
        self.orders: Counter[str] = Counter()      # every status move (the contract's `orders`)
        self.order_outcome: dict[int, str] = {}    # order id → where it ended this run
        self.desk = OrderDesk(ledger, clock, run_id=self.run_id, sleep=sleep,
                              policy=RetryPolicy(attempts=cfg.engine.retry_attempts,
                                                 budget_s=cfg.engine.retry_budget_s),
                              on_event=self.on_event)

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "order_status":
            self.orders[data["status"]] += 1
            if "order" in data:
                self.order_outcome[data["order"].id] = data["status"]
            if data["status"] in ORDER_PROBLEMS and "order" in data:
                o = data["order"]
                self.summary.order_problems.append({
                    "bot": o.bot, "account_id": o.account_id, "client_order_id": o.client_order_id,
                    "status": data["status"], "attempts": data.get("attempts"), "message": data["message"]})
        elif kind == "broker_unreachable" and data["account_id"] not in self.unreachable:
            # Lost in the middle of the pass: send nothing more there; the run ends with exit 3.
            acc_id = data["account_id"]
            self.unreachable[acc_id] = data["message"]
            self.summary.errors.append(f"account {self.cfg.account(acc_id).label}: {data['message']}")

    def reachable(self, account_ids: list[int]) -> list[int]:
        """The accounts (of `account_ids`, in that order) connected at the start of the pass."""
        return [a for a in account_ids if a in self.brokers]

    def rounding_spec(self, broker: Broker | None, symbol: str) -> SymbolSpec:
        """A spec to round prices with (trailing stops, spread): the broker's, else the configured table."""
        if broker is not None:
            try:
                return broker.symbol_spec(symbol)
            except ScalperError as exc:
                log.warning("symbol spec of %s from %s: %s; rounding with the configured table", symbol,
                            getattr(broker, "account", "?"), exc)
        return spec_for(symbol, self.specs)

    def sizing_spec(self, broker: Broker, acc_id: int, symbol: str) -> tuple[SymbolSpec, None] | tuple[None, str]:
        """(the broker's spec, None) or (None, why not). Orders are sized with the broker's own spec only."""
        try:
            return broker.symbol_spec(symbol), None
        except BrokerUnavailable as exc:
            self.on_event("broker_unreachable", {"account_id": acc_id, "message": str(exc)})
            return None, f"account {acc_id} unreachable while reading the {symbol} spec: {exc}"
        except ScalperError as exc:
            return None, f"the broker's {symbol} spec could not be read ({exc}); not sized from a guess"


def close_brokers(brokers: dict[int, Broker]) -> None:
    """Disconnect every broker; a failure is logged (the pass's work is already recorded)."""
    for acc_id, b in brokers.items():
        try:
            b.close()
        except (ScalperError, OSError) as exc:
            log.warning("account %s: closing the broker connection failed: %s", acc_id, exc)
