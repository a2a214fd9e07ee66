"""bots.yaml's settings as the core's values: the one place where a validated config
(scalper.config, pydantic) becomes the plain frozen objects the core and the
backtester read (scalper.core.rules, scalper.symbols.SymbolSpec).

The defaults live in those core classes; the schema reads them from there, and
setup-bot reads them from the schema (`schema_default`). Nothing else converts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scalper.core.rules import KillSwitchRule, RiskLimits, RiskRules, TrailingRule
from scalper.symbols import SymbolSpec

if TYPE_CHECKING:   # the schema imports this module: its types are read for annotations only
    from pydantic import BaseModel

    from scalper.config import Config, RiskConfig, SymbolOverride, TrailingConfig


def risk_limits(risk: RiskConfig) -> RiskLimits:
    """What `risk.decide` checks a bot's signals against."""
    return RiskLimits(max_concurrent=risk.max_concurrent, max_per_symbol=risk.max_per_symbol,
                      decision_min_score=risk.decision_min_score, signal_max_age_s=risk.signal_max_age_s,
                      min_balance=risk.min_balance, daily_loss_limit=risk.daily_loss_limit,
                      daily_loss_limit_pct=risk.daily_loss_limit_pct, max_spread_points=risk.max_spread_points)


def kill_switch_rule(risk: RiskConfig) -> KillSwitchRule:
    return KillSwitchRule(enabled=risk.kill_switch, loss=risk.kill_switch_loss, loss_pct=risk.kill_switch_loss_pct)


def trailing_rule(trailing: TrailingConfig) -> TrailingRule:
    return TrailingRule(enabled=trailing.enabled, activate_r=trailing.activate_r, distance_r=trailing.distance_r)


def risk_rules(risk: RiskConfig) -> RiskRules:
    """A bot's whole `risk:` block as the core reads it."""
    return RiskRules(limits=risk_limits(risk), kill_switch=kill_switch_rule(risk),
                     trailing=trailing_rule(risk.trailing), risk_percent=risk.risk_percent)


def risk_document(rules: RiskRules) -> dict[str, Any]:
    """The `risk:` block of bots.yaml that `risk_rules` reads back as `rules` (the optimizer
    changes a setting through the schema, so that its bounds are checked)."""
    limits, kill, trail = rules.limits, rules.kill_switch, rules.trailing
    return {**dataclasses.asdict(limits), "kill_switch": kill.enabled, "kill_switch_loss": kill.loss,
            "kill_switch_loss_pct": kill.loss_pct, "risk_percent": rules.risk_percent,
            "trailing": dataclasses.asdict(trail)}


def revised_rules(rules: RiskRules, risk: Mapping[str, Any], trailing: Mapping[str, Any]) -> RiskRules:
    """`rules` with some `risk:` and `risk.trailing:` settings changed, checked by the schema
    (pydantic.ValidationError when a value is out of its bounds)."""
    from scalper.config import RiskConfig

    doc = risk_document(rules)
    doc.update(risk)
    doc["trailing"] = {**doc["trailing"], **trailing}
    return risk_rules(RiskConfig.model_validate(doc))


def symbol_spec(name: str, override: SymbolOverride) -> SymbolSpec:
    return SymbolSpec(symbol=name, **override.model_dump())


def symbol_specs(cfg: Config) -> dict[str, SymbolSpec]:
    """The config's `symbols:` table, as `scalper.symbols.spec_for` takes it."""
    return {name: symbol_spec(name, o) for name, o in cfg.symbols.items()}


def schema_default(model: type[BaseModel], name: str) -> Any:
    """The default the schema gives a field (setup-bot writes these into a new bot)."""
    field = model.model_fields[name]
    return field.get_default(call_default_factory=True)
