"""run-once starts without typer, rich, pydantic or YAML: a plain command line is read by
scalper.cli.run_once exactly as the typer command reads it, and a bots file found in the
validated-config cache is rebuilt as plain objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalper.cli import run_once
from scalper.cli.typer_app import app
from tests.conftest import ROOT

ENV = ("SCALPER_CONFIG", "SCALPER_LEDGER")


@contextmanager
def _environment(values: dict[str, str | None]):
    """SCALPER_CONFIG/SCALPER_LEDGER set to `values` (None: unset), and put back as they were
    afterwards — also what the readers under test wrote there themselves (a global --config
    goes into the environment), which monkeypatch would not undo for a variable it found unset."""
    saved = {k: os.environ.get(k) for k in ENV}

    def put(state: dict[str, str | None]) -> None:
        for k, v in state.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    put(values)
    try:
        yield
    finally:
        put(saved)


def _typer_reading(args: list[str], monkeypatch, module=run_once, body: str = "run") -> tuple[dict | None, dict]:
    """What the typer command passes to its body (`module.body`) for `args` (None: it did not call
    it), and the environment's SCALPER_* afterwards."""
    seen: dict = {}

    def record(**kwargs):
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(module, body, record)
    try:
        app(args=args, prog_name="scalper", standalone_mode=False)
    except (Exception, SystemExit):
        return None, {k: os.environ.get(k) for k in ENV}
    return (seen or None), {k: os.environ.get(k) for k in ENV}


def assert_read_as_typer(parse, args: list[str], env: dict, monkeypatch, capsys, module=run_once,
                         body: str = "run") -> None:
    """The fast reader `parse` reads `args` (in environment `env`) as the typer command does, or
    declines it and changes nothing."""
    with _environment(env):
        fast = parse(list(args))
        fast_env = {k: os.environ.get(k) for k in ENV}
    if fast is None:
        assert fast_env == env   # declined lines change nothing
        return
    with _environment(env):   # typer starts from the same environment
        reading, typer_env = _typer_reading(list(args), monkeypatch, module, body)
    capsys.readouterr()
    assert reading == fast, args
    assert typer_env == fast_env, args


TOKENS = ["--bot", "-b", "--now", "--config", "-c", "--ledger", "--json", "--dry-run", "--allow-backwards",
          "--help", "-h", "--version", "--", "x.yaml", "gold", "2025-05-15T10:00:00Z", "", "--bot=btc",
          "--now=2025-05-15", "--config=a.yaml", "-c=b.yaml", "--ledger=l.db", "--json=1", "-bgold", "scan",
          "run-once", "-x", "--dry"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.lists(st.sampled_from(TOKENS), max_size=3), after=st.lists(st.sampled_from(TOKENS), max_size=6),
       command=st.sampled_from(["run-once", "run-once", "scan", "report"]),
       env=st.fixed_dictionaries({k: st.sampled_from([None, "", "env-value"]) for k in ENV}))
def test_the_fast_reader_reads_a_line_as_typer_does_or_leaves_it_to_typer(before, after, command, env,
                                                                          monkeypatch, capsys):
    assert_read_as_typer(run_once.parse, [*before, command, *after], env, monkeypatch, capsys)


@pytest.mark.parametrize("args", [
    ["run-once"], ["run-once", "--json"], ["-c", "a.yaml", "run-once", "--bot", "x", "-b", "y", "--now=2025-05-15"],
    ["--ledger=l.db", "run-once", "--dry-run", "--allow-backwards", "--config", "b.yaml", "--ledger", "m.db"],
])
def test_plain_lines_are_read_without_typer(args):
    with _environment({k: None for k in ENV}):
        assert run_once.parse(args) is not None


@pytest.mark.parametrize("args", [
    ["run-once", "--help"], ["run-once", "-h"], ["--version"], ["run-once", "--bogus"], ["run-once", "extra"],
    ["run-once", "--now"], ["run-once", "--now", "a", "--now", "b"], ["run-once", "--bot", "--json"],
    ["scan", "--data", "x.csv"], [], ["run-once", "-bgold"], ["run-once", "--", "x"],
])
def test_anything_else_goes_to_typer(args):
    with _environment({k: None for k in ENV}):
        assert run_once.parse(args) is None
        assert all(os.environ.get(k) is None for k in ENV)


def _imports_of_run_once(folder: Path, extra_env: dict | None = None) -> tuple[set[str], dict]:
    code = ("import sys, json; from scalper.cli import main\n"
            "try:\n    main(['run-once', '--json', '--config', 'bots.yaml', '--ledger', 'ledger.db'])\n"
            "except SystemExit as e:\n    code = e.code\n"
            "sys.stderr.write(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n")
    env = {**os.environ, "SCALPER_CACHE_DIR": str(folder / "cache"), **(extra_env or {})}
    proc = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    return set(json.loads(proc.stderr.strip().splitlines()[-1])), json.loads(proc.stdout)


def test_a_cached_config_runs_once_without_typer_rich_pydantic_or_yaml(tmp_path):
    (tmp_path / "bots.yaml").write_text((ROOT / "bots.yaml").read_text())
    first, doc1 = _imports_of_run_once(tmp_path)   # validates, fills the cache
    assert "pydantic" in first and "yaml" in first
    again, doc2 = _imports_of_run_once(tmp_path)
    assert not {"typer", "click", "rich", "pydantic", "pydantic_core", "yaml", "ruamel"} & again
    assert doc1["exit_code"] == doc2["exit_code"] == 0 and doc2["bots_run"] == doc1["bots_run"]


def test_plain_settings_answer_as_the_validated_ones(tmp_path, monkeypatch):
    from scalper.config import _validate_file, load_config
    from scalper.config_rules import Plain

    monkeypatch.setenv("SCALPER_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "bots.yaml"
    path.write_text((ROOT / "bots.yaml").read_text())
    validated = _validate_file(path)
    validated.source = str(path)
    load_config(path)
    plain = load_config(path)
    assert isinstance(plain, Plain) and plain.model_dump() == validated.model_dump()
    for b in validated.bots:
        p = plain.bot(b.name)
        assert (plain.qty_of(p), p.magic_number, p.risk.trailing.enabled) == (
            validated.qty_of(b), b.magic_number, b.risk.trailing.enabled)
        assert all(p.params_for(s) == b.params_for(s) for s in b.strategies)
        assert plain.groups_of(b.symbol) == validated.groups_of(b.symbol)
    assert [a.label for a in plain.accounts] == [a.label for a in validated.accounts]
    assert plain.symbol_overrides() == validated.symbol_overrides()
    assert plain.resolve_path(plain.ledger) == validated.resolve_path(validated.ledger)
    risk = plain.bots[0].risk
    off = risk.model_copy(update={"trailing": risk.trailing.model_copy(update={"enabled": False})})
    assert off.trailing.enabled is False and risk.trailing.enabled is not False
    assert off.model_dump()["max_concurrent"] == risk.max_concurrent


def test_plain_settings_validate_through_their_pydantic_model(tmp_path, monkeypatch):
    """optimize validates a changed risk block with `type(risk).model_validate`."""
    from pydantic import ValidationError

    from scalper.config import RiskConfig, load_config

    monkeypatch.setenv("SCALPER_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "bots.yaml"
    path.write_text((ROOT / "bots.yaml").read_text())
    load_config(path)
    risk = load_config(path).bots[0].risk
    doc = {**risk.model_dump(), "max_concurrent": 3}
    again = type(risk).model_validate(doc)
    assert isinstance(again, RiskConfig) and again.max_concurrent == 3
    with pytest.raises(ValidationError):
        type(risk).model_validate({**doc, "max_concurrent": 0})
