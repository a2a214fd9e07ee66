"""Settings are converted once (scalper.settings) and each default is written once
(the core's value objects; the schema and setup-bot read them from there)."""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import tomllib
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import scalper
from scalper.config import BotConfig, RiskConfig, SymbolOverride
from scalper.core.rules import KillSwitchRule, RiskLimits, RiskRules, TrailingRule
from scalper.services.setup import setup_bot
from scalper.settings import revised_rules, risk_document, risk_rules, schema_default
from scalper.symbols import SymbolSpec

ROOT = Path(scalper.__file__).parent


def test_the_schemas_defaults_are_the_cores():
    assert risk_rules(RiskConfig()) == RiskRules()
    assert risk_rules(RiskConfig()).limits == RiskLimits() and risk_rules(RiskConfig()).trailing == TrailingRule()
    assert risk_rules(RiskConfig()).kill_switch == KillSwitchRule()
    spec_defaults = {f.name: f.default for f in dataclasses.fields(SymbolSpec)
                     if f.default is not dataclasses.MISSING}
    assert {n: schema_default(SymbolOverride, n) for n in spec_defaults} == spec_defaults


def test_setup_bot_writes_the_schemas_defaults(tmp_path):
    path = tmp_path / "bots.yaml"
    setup_bot(config=str(path), symbol="XAUUSD")
    [bot] = yaml.safe_load(path.read_text())["bots"]
    for key in ("enabled", "engine_mode", "timeframe", "lookback", "auto_trade", "strategies"):
        assert bot[key] == schema_default(BotConfig, key), key
    assert bot["risk"] == {k: schema_default(RiskConfig, k) for k in ("max_concurrent", "max_per_symbol",
                                                                       "kill_switch")}


def test_setup_bot_never_writes_a_qty_under_the_files_own_minimum(tmp_path):
    path = tmp_path / "bots.yaml"
    path.write_text("accounts: [{id: 1}]\nsymbols:\n  GER40: {digits: 1, contract_size: 1, volume_min: 0.5, "
                    "volume_step: 0.5}\nbots: []\n")
    bot, *_ = setup_bot(config=str(path), symbol="GER40")
    assert bot["qty"] == 0.5


@st.composite
def risk_blocks(draw) -> dict:
    """`risk:` blocks bots.yaml accepts, each setting present or left to its default."""
    optional = {
        "max_concurrent": st.integers(1, 50), "max_per_symbol": st.integers(1, 50),
        "decision_min_score": st.floats(0, 1), "signal_max_age_s": st.integers(1, 10_000),
        "min_balance": st.floats(0, 1e6), "daily_loss_limit": st.none() | st.floats(0.01, 1e6),
        "daily_loss_limit_pct": st.none() | st.floats(0.01, 100), "max_spread_points": st.none() | st.floats(0.1, 1e4),
        "kill_switch": st.booleans(), "kill_switch_loss": st.none() | st.floats(0.01, 1e6),
        "kill_switch_loss_pct": st.none() | st.floats(0.01, 100), "risk_percent": st.none() | st.floats(0.01, 10),
        "trailing": st.fixed_dictionaries({}, optional={"enabled": st.booleans(), "activate_r": st.floats(0, 10),
                                                        "distance_r": st.floats(0.01, 10)}),
    }
    return draw(st.fixed_dictionaries({}, optional=optional))


@settings(max_examples=200, deadline=None)
@given(block=risk_blocks())
def test_rules_and_their_bots_yaml_form_round_trip(block):
    config = RiskConfig.model_validate(block)
    rules = risk_rules(config)
    assert RiskConfig.model_validate(risk_document(rules)) == config
    assert risk_rules(RiskConfig.model_validate(risk_document(rules))) == rules
    assert revised_rules(rules, {}, {}) == rules


def test_a_revised_setting_is_checked_by_the_schema():
    rules = revised_rules(RiskRules(), {"decision_min_score": 0.4}, {"distance_r": 2.5})
    assert rules.limits.decision_min_score == 0.4 and rules.trailing.distance_r == 2.5
    assert rules.kill_switch == KillSwitchRule() and rules.limits.max_concurrent == RiskLimits().max_concurrent
    with pytest.raises(ValidationError):
        revised_rules(RiskRules(), {"decision_min_score": 1.5}, {})
    with pytest.raises(ValidationError):
        revised_rules(RiskRules(), {}, {"distance_r": 0})


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_core_never_imports_the_schema_or_pydantic():
    files = sorted((ROOT / "core").rglob("*.py"))
    assert len(files) > 10
    for f in files:   # type-checking-only imports count too: the core's types are its own
        bad = {m for m in _imports(f) if m.split(".")[0] == "pydantic" or m in ("scalper.config", "scalper.settings")}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_the_version_is_written_once():
    project = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("scalper") == scalper.__version__
