"""A plain `scalper scan` or `scalper backtest` line is read without typer (scalper.cli.plain)
exactly as the typer command reads it; anything else is left to typer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalper.cli import plain
from tests.conftest import ROOT
from tests.test_run_once_start import ENV, _environment, assert_read_as_typer

TOKENS = ["--data", "--symbol", "--bot", "--strategies", "--from", "--to", "--out", "--lookback", "--config", "-c",
          "--ledger", "--json", "--skip-bad-rows", "--help", "-h", "--version", "--", "x.csv", "gold", "XAUUSD",
          "a,b", "2025-05-15", "", "15", "14", "100", "020", "+20", " 20", "1_000", "٣٣", "-5", "--data=d.csv",
          "--lookback=30", "--lookback=7", "--json=1", "--from=2025", "-cb.yaml", "--config=a.yaml", "scan",
          "run-once", "-x", "--dat"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.lists(st.sampled_from(TOKENS), max_size=3), after=st.lists(st.sampled_from(TOKENS), max_size=7),
       data=st.booleans(), env=st.fixed_dictionaries({k: st.sampled_from([None, "", "env-value"]) for k in ENV}))
def test_the_fast_reader_reads_a_scan_line_as_typer_does_or_leaves_it_to_typer(before, after, data, env,
                                                                              monkeypatch, capsys):
    args = [*before, "scan", *(["--data", "bars.csv"] if data else []), *after]
    assert_read_as_typer(plain.SCAN.parse, args, env, monkeypatch, capsys, plain, "scan")


_PLAIN = {"--data": ["x.csv", "", "a b.csv"], "--symbol": ["XAUUSD", ""], "--bot": ["gold"], "--strategies": ["a,b"],
          "--from": ["2025-05-15"], "--to": ["2025"], "--out": ["s.csv"], "--lookback": ["15", "100", "020"],
          "--config": ["b.yaml", ""], "-c": ["c.yaml"], "--json": [None], "--skip-bad-rows": [None]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.lists(st.sampled_from(sorted(_PLAIN)), unique=True, max_size=8), data=st.data(),
       glob=st.lists(st.sampled_from([["-c", "g.yaml"], ["--ledger", "l.db"], ["--config=h.yaml"]]), max_size=2),
       env=st.fixed_dictionaries({k: st.sampled_from([None, "", "env-value"]) for k in ENV}))
def test_plain_scan_lines_read_as_typer_reads_them(options, data, glob, env, monkeypatch, capsys):
    if "-c" in options and "--config" in options:
        options.remove("-c")
    line = []
    for option in ["--data", *options] if "--data" not in options else options:
        value = data.draw(st.sampled_from(_PLAIN[option]))
        if value is None:
            line.append(option)
        elif data.draw(st.booleans()) and option.startswith("--"):
            line.append(f"{option}={value}")
        else:
            line += [option, value]
    args = [*(t for g in glob for t in g), "scan", *line]
    # (declined only for a global option given twice, or a value typer reads as an option)
    assert_read_as_typer(plain.SCAN.parse, args, env, monkeypatch, capsys, plain, "scan")


@pytest.mark.parametrize("args", [
    ["scan", "--data", "x.csv"], ["scan", "--data=x.csv", "--json", "--skip-bad-rows", "--lookback", "15"],
    ["-c", "a.yaml", "--ledger", "l.db", "scan", "--symbol", "XAUUSD", "--data", "x.csv", "--from", "2025-05-15",
     "--to", "2025-05-16", "--out", "s.csv", "--strategies", "a,b", "--bot", "gold", "--config", "b.yaml"],
])
def test_plain_scan_lines_are_read_without_typer(args):
    with _environment({k: None for k in ENV}):
        assert plain.SCAN.parse(args) is not None


@pytest.mark.parametrize("args", [
    ["scan"], ["scan", "--data"], ["scan", "--data", "x", "--data", "y"], ["scan", "--data", "x", "--lookback", "14"],
    ["scan", "--data", "x", "--lookback", "+20"], ["scan", "--data", "x", "--help"], ["scan", "--data", "-x"],
    ["scan", "--data", "x", "--ledger", "l.db"], ["run-once"], ["scan", "--data", "x", "extra"],
])
def test_anything_else_goes_to_typer(args):
    with _environment({k: None for k in ENV}):
        assert plain.SCAN.parse(args) is None
        assert all(os.environ.get(k) is None for k in ENV)


def test_a_plain_scan_starts_without_typer_and_prints_what_typer_prints(xau_csv, tmp_path):
    code = ("import sys, json; from scalper.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "sys.stderr.write(json.dumps([code, 'typer' in sys.modules]))\n")

    def scan(*args: str) -> tuple[str, list]:
        proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=False)
        return proc.stdout, json.loads(proc.stderr.strip().splitlines()[-1])

    plain, (code1, typer1) = scan("scan", "--data", str(xau_csv), "--json", "--lookback", "100")
    via_typer, (code2, typer2) = scan("scan", "--data", str(xau_csv), "--json", "--lookback", " 100")
    assert (code1, typer1, code2, typer2) == (0, False, 0, True)
    assert plain == via_typer and json.loads(plain)["signals"] > 0
    missing = tmp_path / "missing.csv"
    out, (code, uses_typer) = scan("scan", "--data", str(missing), "--json")
    assert code == 2 and not uses_typer and json.loads(out)["exit_code"] == 2


# --- backtest ---------------------------------------------------------------------------------------
BT_TOKENS = ["--data", "--bot", "--symbol", "--strategies", "--from", "--to", "--signals-out", "--trades-out",
             "--chart", "--balance", "--qty", "--lookback", "--spread", "--leverage", "--config", "-c", "--ledger",
             "--json", "--skip-bad-rows", "--no-trailing", "--help", "--", "x.csv", "XAUUSD", "0", "0.01", "1e12",
             "1e13", "nan", "inf", "-1", " 5", "1_0", "+3", "٣", "100", "14", "10000", "10001", "abc", "",
             "--spread=0", "--qty=0.00001", "--balance=5000", "--leverage=1", "--lookback=15", "-cb.yaml",
             "backtest", "scan", "--no-trailing=1"]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.lists(st.sampled_from(TOKENS), max_size=2), after=st.lists(st.sampled_from(BT_TOKENS), max_size=8),
       data=st.booleans(), env=st.fixed_dictionaries({k: st.sampled_from([None, "", "env-value"]) for k in ENV}))
def test_the_fast_reader_reads_a_backtest_line_as_typer_does_or_leaves_it_to_typer(before, after, data, env,
                                                                                  monkeypatch, capsys):
    args = [*before, "backtest", *(["--data", "bars.csv"] if data else []), *after]
    assert_read_as_typer(plain.BACKTEST.parse, args, env, monkeypatch, capsys, plain, "backtest")


_BT_PLAIN = {"--data": ["x.csv", "a b.csv"], "--symbol": ["XAUUSD"], "--bot": ["gold"], "--strategies": ["a,b"],
             "--from": ["2025-05-15"], "--to": ["2025"], "--signals-out": ["s.csv"], "--trades-out": ["t.csv"],
             "--chart": ["c.png"], "--balance": ["0.01", "10000", "1e12", " 25.5"], "--qty": ["0.0001", "0.01", "1e5"],
             "--lookback": ["15", "100"], "--spread": ["0", "20", "1e6", "0.5"], "--leverage": ["1", "100", "10000"],
             "--config": ["b.yaml"], "--json": [None], "--skip-bad-rows": [None], "--no-trailing": [None]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.lists(st.sampled_from(sorted(_BT_PLAIN)), unique=True, max_size=10), data=st.data(),
       env=st.fixed_dictionaries({k: st.sampled_from([None, "", "env-value"]) for k in ENV}))
def test_plain_backtest_lines_are_read_without_typer_as_typer_reads_them(options, data, env, monkeypatch, capsys):
    line = []
    for option in ["--data", *options] if "--data" not in options else options:
        value = data.draw(st.sampled_from(_BT_PLAIN[option]))
        if value is None:
            line.append(option)
        elif data.draw(st.booleans()):
            line.append(f"{option}={value}")
        else:
            line += [option, value]
    args = ["backtest", *line]
    with _environment(env):
        assert plain.BACKTEST.parse(list(args)) is not None, args   # every such line is plain
    assert_read_as_typer(plain.BACKTEST.parse, args, env, monkeypatch, capsys, plain, "backtest")


@pytest.mark.parametrize("args", [
    ["backtest"], ["backtest", "--symbol", "XAUUSD"], ["backtest", "--data", "x", "--spread", "-1"],
    ["backtest", "--data", "x", "--qty", "nan"], ["backtest", "--data", "x", "--balance", "1e13"],
    ["backtest", "--data", "x", "--leverage", "0.5"], ["backtest", "--data", "x", "--lookback", "14"],
    ["backtest", "--data", "x", "--help"], ["backtest", "--data", "x", "--ledger", "l.db"],
    ["backtest", "--data", "x", "--no-trailing=1"],
])
def test_anything_else_on_a_backtest_line_goes_to_typer(args):
    with _environment({k: None for k in ENV}):
        assert plain.BACKTEST.parse(args) is None and plain.read(args) is None


def test_a_plain_backtest_starts_without_typer_and_prints_what_typer_prints(xau_csv):
    code = ("import sys, json; from scalper.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "sys.stderr.write(json.dumps([code, 'typer' in sys.modules]))\n")

    def backtest(*args: str) -> tuple[dict, list]:
        proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=False)
        doc = json.loads(proc.stdout)
        doc.pop("duration_s", None)
        return doc, json.loads(proc.stderr.strip().splitlines()[-1])

    line = ["backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--json", "--spread", "0", "--no-trailing",
            "--strategies", "price_action_pinbar"]
    plain_doc, (code1, typer1) = backtest(*line)
    typer_doc, (code2, typer2) = backtest(*line, "--lookback", " 100")   # a space: typer reads it
    assert (code1, typer1, code2, typer2) == (0, False, 0, True)
    assert plain_doc == typer_doc and plain_doc["totals"]["trades"] > 0
    refused, (code, uses_typer) = backtest("backtest", "--data", str(xau_csv), "--json")   # neither --bot nor --symbol
    assert code == 2 and not uses_typer and refused["exit_code"] == 2
