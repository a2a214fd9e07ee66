"""A bot's risk settings as the core reads them: plain frozen values, each default written once.

bots.yaml's schema (scalper.config) takes its defaults from these classes, and
scalper.settings builds them from a validated config: the one place where settings
cross into the core. Nothing here knows about YAML or pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_LOOKBACK = 100      # bars in the window a bot's strategies read
DEFAULT_BALANCE = 10_000.0  # a new paper account's; the backtest's without a config


@dataclass(frozen=True)
class RiskLimits:
    """What `risk.decide` checks a signal against."""

    max_concurrent: int = 2
    max_per_symbol: int = 1
    decision_min_score: float = 0.0
    signal_max_age_s: int = 120               # seconds from the signal bar's close
    min_balance: float = 0.0
    daily_loss_limit: float | None = None     # account currency
    daily_loss_limit_pct: float | None = None  # percent of balance
    max_spread_points: float | None = None


@dataclass(frozen=True)
class KillSwitchRule:
    """Close a bot's positions and halt it once their floating loss reaches a limit."""

    enabled: bool = True
    loss: float | None = None       # unrealized loss, account currency
    loss_pct: float | None = 5.0    # …or this percent of the balance


@dataclass(frozen=True)
class TrailingRule:
    """Once a position is `activate_r` R in profit, keep its stop `distance_r` R behind the best price."""

    enabled: bool = True
    activate_r: float = 1.0
    distance_r: float = 1.0


@dataclass(frozen=True)
class RiskRules:
    """Everything the core needs of one bot's `risk:` settings."""

    limits: RiskLimits = field(default_factory=RiskLimits)
    kill_switch: KillSwitchRule = field(default_factory=KillSwitchRule)
    trailing: TrailingRule = field(default_factory=TrailingRule)
    risk_percent: float | None = None   # size each order to lose this percent of the balance at its SL
