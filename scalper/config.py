"""bots.yaml: the schema, loading with precise errors, and defaults.

Everything a trader can set lives here, validated by pydantic before anything
runs. A bad file raises ConfigError (exit 2) naming the file, the line where
known, the field path and the fix; nothing is written.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from scalper.errors import ConfigError
from scalper.symbols import SymbolSpec, default_qty

DEFAULT_CONFIG = "bots.yaml"
MAX_CONFIG_BYTES = 1_000_000  # a bots file is a few KB; refuse anything absurd before parsing

PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(gt=0, le=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, validate_default=True)


class FaultConfig(Strict):
    """Faults the paper broker injects (tests and drills). See README."""

    retcodes: list[int] = Field(default_factory=list, description="return these codes for the next sends, in order")
    crash_at: Literal["before_fill", "after_fill"] | None = None
    unreachable: bool = False
    lost_answer: bool = False


class PaperConfig(Strict):
    state: str = "var/paper-broker.db"
    initial_balance: PosFloat = 10_000.0
    currency: str = "USD"
    faults: FaultConfig = Field(default_factory=FaultConfig)


class FeedConfig(Strict):
    type: Literal["builtin", "csv", "mt5"] = "builtin"
    path: str | None = Field(None, description="csv: a file, or a pattern with {symbol}")
    files: dict[str, str] = Field(default_factory=dict, description="csv: symbol → file")
    max_bar_age_s: PosInt = Field(180, description="refuse to trade on bars older than this (live feeds)")
    seed: int = 7

    @model_validator(mode="after")
    def _csv_needs_files(self):
        if self.type == "csv" and not (self.path or self.files):
            raise ValueError("a csv feed needs `path` (a file or a pattern with {symbol}) or `files`")
        return self


class AccountConfig(Strict):
    id: int = Field(ge=0)
    name: str | None = None
    broker: Literal["paper", "mt5"] = "paper"
    balance: PosFloat | None = Field(None, description="paper: starting balance")
    login: int | None = None
    server: str | None = None
    password_env: str | None = Field(None, description="name of the environment variable holding the password")
    terminal_path: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any):
        if isinstance(data, dict):
            for key in ("password", "passwd", "secret", "token", "api_key"):
                if key in data:
                    raise ValueError(
                        f"`{key}` must not be written in bots.yaml; set `password_env: SOME_VAR` and export "
                        "the secret in that environment variable")
        return data

    @property
    def label(self) -> str:
        return self.name or f"account-{self.id}"


class TrailingConfig(Strict):
    enabled: bool = True
    activate_r: NonNegFloat = Field(1.0, description="start trailing once profit reaches this many R")
    distance_r: PosFloat = Field(1.0, description="keep the stop this many R behind the best price")


class RiskConfig(Strict):
    max_concurrent: PosInt = 2
    max_per_symbol: PosInt = 1
    decision_min_score: Annotated[float, Field(ge=0, le=1)] = 0.0
    signal_max_age_s: PosInt = Field(120, description="a signal older than this (from its bar's close) is stale")
    min_balance: NonNegFloat = 0.0
    daily_loss_limit: PosFloat | None = Field(None, description="account currency; realized + unrealized today")
    daily_loss_limit_pct: Percent | None = None
    max_spread_points: PosFloat | None = None
    kill_switch: bool = Field(True, description="close positions past the unrealized-loss limit and halt")
    kill_switch_loss: PosFloat | None = Field(None, description="unrealized loss (account currency) that trips it")
    kill_switch_loss_pct: Percent | None = Field(5.0, description="…or this percent of the balance")
    risk_percent: Annotated[float, Field(gt=0, le=10)] | None = Field(
        None, description="size each order to lose this percent of the balance at its SL")
    trailing: TrailingConfig = Field(default_factory=TrailingConfig)


class BotConfig(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    symbol: Annotated[str, Field(min_length=1, max_length=29)]
    enabled: bool = True
    engine_mode: Literal["scalper", "legacy", "off"] = "scalper"
    timeframe: Literal["1m"] = "1m"
    lookback: Annotated[int, Field(ge=15, le=5000)] = 100
    user_id: int | None = None
    accounts: list[int] = Field(min_length=1)
    auto_trade: bool = True
    qty: PosFloat | None = None
    magic: Annotated[int, Field(gt=0, lt=2**63)] | None = None
    strategies: list[str] = Field(default_factory=lambda: list(_strategy_names()), min_length=1)
    strategy_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    correlation_group: str | None = None

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, v: list[str]) -> list[str]:
        names = _strategy_names()
        for s in v:
            if s not in names:
                raise ValueError(f"unknown strategy {s!r}; valid: {', '.join(names)}")
        if len(set(v)) != len(v):
            raise ValueError("a strategy is listed twice")
        return v

    @model_validator(mode="after")
    def _params(self):
        from scalper.core import strategies as registry

        for name, overrides in self.strategy_params.items():
            if name not in _strategy_names():
                raise ValueError(f"strategy_params.{name}: unknown strategy; valid: {', '.join(_strategy_names())}")
            if not isinstance(overrides, dict):
                raise ValueError(f"strategy_params.{name}: must be a mapping of parameter: value")
        for name in self.strategies:
            try:
                registry.resolve_params(name, self.strategy_params.get(name), lookback=self.lookback)
            except ValueError as exc:
                raise ValueError(f"strategy_params.{name}: {exc}") from None
        return self

    @property
    def volume(self) -> float:
        return self.qty if self.qty is not None else default_qty(self.symbol)

    @property
    def magic_number(self) -> int:
        """Stable per bot: the broker tags our positions with it."""
        if self.magic is not None:
            return self.magic
        return 100_000 + zlib.crc32(self.name.encode()) % 900_000_000

    def params_for(self, strategy: str) -> dict:
        from scalper.core import strategies as registry

        return registry.resolve_params(strategy, self.strategy_params.get(strategy), lookback=self.lookback)


class SymbolOverride(Strict):
    digits: Annotated[int, Field(ge=0, le=8)]
    contract_size: PosFloat
    volume_min: PosFloat = 0.01
    volume_max: PosFloat = 100.0
    volume_step: PosFloat = 0.01
    spread_points: NonNegFloat = 20.0
    stops_level: Annotated[int, Field(ge=0)] = 0
    currency: str = "USD"


class EngineConfig(Strict):
    interval_s: Annotated[float, Field(ge=5, le=3600)] = 45.0
    metrics_file: str | None = None
    log_file: str | None = "var/scalper.log"
    retry_budget_s: Annotated[float, Field(gt=0, le=60)] = 8.0
    retry_attempts: Annotated[int, Field(ge=1, le=20)] = 5


class Config(Strict):
    version: Literal[1] = 1
    ledger: str = "var/ledger.db"
    engine: EngineConfig = Field(default_factory=EngineConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    accounts: list[AccountConfig] = Field(min_length=1)
    symbols: dict[str, SymbolOverride] = Field(default_factory=dict)
    correlation_groups: dict[str, list[str]] = Field(default_factory=dict)
    bots: list[BotConfig] = Field(default_factory=list)

    # set by the loader, not by the file
    source: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _cross_checks(self):
        ids = [a.id for a in self.accounts]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"accounts: id {sorted(dup)[0]} is used twice; give each account its own id")
        names = [b.name for b in self.bots]
        dup_names = {n for n in names if names.count(n) > 1}
        if dup_names:
            raise ValueError(f"bots: the name {sorted(dup_names)[0]!r} is used twice; bot names must be unique")
        known = set(ids)
        for i, bot in enumerate(self.bots):
            for acc in bot.accounts:
                if acc not in known:
                    raise ValueError(
                        f"bots[{i}] ({bot.name}): account {acc} is not defined under `accounts:`; "
                        f"defined: {sorted(known)}")
            if bot.correlation_group and bot.correlation_group not in self.correlation_groups:
                raise ValueError(f"bots[{i}] ({bot.name}): correlation_group {bot.correlation_group!r} "
                                 "is not defined under `correlation_groups:`")
        return self

    # --- helpers -------------------------------------------------------------
    def account(self, account_id: int) -> AccountConfig:
        for a in self.accounts:
            if a.id == account_id:
                return a
        raise KeyError(account_id)

    def bot(self, name: str) -> BotConfig:
        for b in self.bots:
            if b.name == name:
                return b
        raise KeyError(name)

    def symbol_overrides(self) -> dict[str, SymbolSpec]:
        return {name: SymbolSpec(symbol=name, **o.model_dump()) for name, o in self.symbols.items()}

    def groups_of(self, symbol: str) -> list[str]:
        from scalper.symbols import root_symbol

        r = root_symbol(symbol)
        return [g for g, members in self.correlation_groups.items()
                if symbol in members or r in {root_symbol(m) for m in members}]

    def resolve_path(self, p: str) -> Path:
        """Relative paths in bots.yaml are relative to the file's folder."""
        path = Path(os.path.expanduser(p))
        if not path.is_absolute() and self.source:
            path = Path(self.source).resolve().parent / path
        return path


def _strategy_names() -> tuple[str, ...]:
    from scalper.core import strategies as registry

    return tuple(registry.STRATEGY_NAMES)


# --- loading ------------------------------------------------------------------
def load_config(path: str | os.PathLike) -> Config:
    from scalper.config_errors import load_yaml_document, validation_to_config_error

    p = Path(path)
    data, lines = load_yaml_document(p)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(exc, p, lines) from None
    cfg.source = str(p)
    return cfg
