"""The command-line contract (../shared/docs/cli.md) through the real CLI."""

from __future__ import annotations

import csv
import subprocess
import sys

import yaml

from scalper.clock import iso
from tests.clikit import cli
from tests.conftest import ROOT, shared_file
from tests.enginekit import golden, just_after_close, write_config

CONTRACT = ["run-once", "setup-bot", "report", "kill-switch", "rollback", "resume", "backtest", "scan",
            "status", "check", "loop", "metrics"]


def test_help_lists_every_command_of_the_contract(capsys):
    r = cli(capsys, "--help")
    assert r.code == 0
    for name in CONTRACT:
        assert name in r.out, name
    for name in CONTRACT:
        sub = cli(capsys, name, "--help")
        assert sub.code == 0 and "Usage" in sub.out, name


def test_scan_cli_writes_the_golden_signals(tmp_path, capsys, xau_csv):
    out = tmp_path / "s.csv"
    r = cli(capsys, "scan", "--data", str(xau_csv), "--out", str(out), "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["evaluated"] == 19_901 and doc["signals"] == 1_713
    assert doc["counts"]["price_action_pinbar"] == {"buy": 9, "sell": 3}
    assert doc["counts"]["trend_pullback"] == {"buy": 665, "sell": 483}
    assert doc["counts"]["doji_breakout"] == {"buy": 219, "sell": 231}
    assert doc["counts"]["range_reversion"] == {"buy": 53, "sell": 50}
    assert sum(doc["skips"].values()) == 4 * 19_901 - 1_713
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    expected = golden(shared_file("XAUUSD_M1.expected_signals.csv"))
    assert {(r["bar_time"], r["strategy"], r["direction"]) for r in rows} == \
        {(r["bar_time"], r["strategy"], r["direction"]) for r in expected}
    assert list(rows[0]) == ["bar_time", "strategy", "direction", "entry", "sl", "tp", "score"]


def test_scan_filters_and_human_output(capsys, xau_csv):
    r = cli(capsys, "scan", "--data", str(xau_csv), "--strategies", "doji_breakout",
            "--from", "2025-05-20", "--to", "2025-05-21")
    assert r.code == 0
    assert "doji_breakout" in r.out and "trend_pullback" not in r.out
    bad = cli(capsys, "scan", "--data", str(xau_csv), "--strategies", "nope")
    assert bad.code == 2 and "nope" in bad.err and "price_action_pinbar" in bad.err


def test_run_once_json_has_the_contract_keys(tmp_path, capsys, xau_csv):
    row = golden(shared_file("XAUUSD_M1.expected_signals.csv"))[0]
    config = write_config(tmp_path, xau_csv)
    r = cli(capsys, "run-once", "--config", str(config), "--now", iso(just_after_close(row["bar_time"])),
            "--json")
    assert r.code == 0, r.err
    doc = r.json()
    for key in ("run_id", "started_at", "duration_s", "bots_run", "bots_skipped", "signals", "decisions",
                "orders", "orders_created", "errors"):
        assert key in doc, key
    assert doc["bots_run"] == ["gold"] and doc["signals"] >= 1


def test_unknown_bot_is_bad_input(tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv)
    r = cli(capsys, "run-once", "--config", str(config), "--bot", "ghost")
    assert r.code == 2 and "ghost" in r.err and "gold" in r.err
    assert not (tmp_path / "ledger.db").exists()


def test_now_is_refused_for_an_mt5_account(tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv)
    cfg = yaml.safe_load(config.read_text())
    cfg["accounts"].append({"id": 9, "broker": "mt5", "login": 1, "server": "X", "password_env": "NOPE"})
    config.write_text(yaml.safe_dump(cfg))
    r = cli(capsys, "run-once", "--config", str(config), "--now", "2025-05-20T10:00:00")
    assert r.code == 2 and "--now" in r.err


def test_kill_switch_engage_closes_and_blocks_then_release(tmp_path, capsys, xau_csv):
    rows = [r for r in golden(shared_file("XAUUSD_M1.expected_signals.csv")) if r["strategy"] == "doji_breakout"]
    config = write_config(tmp_path, xau_csv, strategies=["doji_breakout"])
    first = cli(capsys, "run-once", "--config", str(config), "--now", iso(just_after_close(rows[0]["bar_time"])),
                "--json").json()
    assert first["orders"].get("filled") == 1
    # engage by hand: positions close (the paper broker's clock is the wall clock here: the CSV's
    # last price is used), the state says why
    r = cli(capsys, "kill-switch", "engage", "--bot", "gold", "--config", str(config), "--json")
    assert r.code == 0, r.err
    assert r.json()["bots"][0]["positions_closed"] == 1
    st = cli(capsys, "kill-switch", "status", "--config", str(config), "--json").json()
    assert st["bots"][0]["engaged"] and st["bots"][0]["source"] == "manual"
    later = cli(capsys, "run-once", "--config", str(config), "--now", iso(just_after_close(rows[1]["bar_time"])),
                "--json").json()
    assert later["decisions"] == {"risk_kill_switch_engaged": later["signals"]} and later["orders_created"] == 0
    assert cli(capsys, "kill-switch", "release", "--bot", "gold", "--config", str(config)).code == 0
    st = cli(capsys, "kill-switch", "status", "--config", str(config), "--json").json()
    assert not st["bots"][0]["engaged"]
    assert cli(capsys, "kill-switch", "engage", "--config", str(config)).code == 2  # which bot?


def test_rollback_pauses_and_resume_lifts(tmp_path, capsys, xau_csv):
    rows = golden(shared_file("XAUUSD_M1.expected_signals.csv"))
    config = write_config(tmp_path, xau_csv)
    cli(capsys, "run-once", "--config", str(config), "--now", iso(just_after_close(rows[0]["bar_time"])))
    r = cli(capsys, "rollback", "--since", "3650d", "--config", str(config), "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["paused"] and doc["activity"]["signals"] >= 1
    paused = cli(capsys, "run-once", "--config", str(config), "--now", iso(just_after_close(rows[5]["bar_time"])),
                 "--json")
    assert paused.code == 0
    assert paused.json()["bots_skipped"] == [{"bot": "gold", "reason": "engine_paused",
                                              "detail": paused.json()["bots_skipped"][0]["detail"]}]
    assert paused.json()["signals"] == 0
    status = cli(capsys, "status", "--config", str(config), "--json").json()
    assert status["paused"] is True and status["last_run"]["status"] == "paused"
    items = {i["what"]: i for i in cli(capsys, "check", "--config", str(config), "--json").json()["items"]}
    assert not items["engine"]["ok"] and "resume" in items["engine"]["detail"]
    assert cli(capsys, "resume", "--config", str(config)).code == 0
    assert cli(capsys, "status", "--config", str(config), "--json").json()["paused"] is False


def test_check_reports_ok_and_problems(tmp_path, capsys):
    shutil_copy = (ROOT / "bots.yaml").read_text()
    cfg = tmp_path / "bots.yaml"
    cfg.write_text(shutil_copy)
    r = cli(capsys, "check", "--config", str(cfg), "--json")
    assert r.code == 0, r.out + r.err
    assert all(item["ok"] for item in r.json()["items"])
    bad = yaml.safe_load(shutil_copy)
    bad["feed"] = {"type": "csv", "path": str(tmp_path / "missing-{symbol}.csv")}
    cfg.write_text(yaml.safe_dump(bad))
    r = cli(capsys, "check", "--config", str(cfg), "--json")
    assert r.code != 0 and not r.json()["ok"]
    assert any("missing" in i["detail"] for i in r.json()["items"] if not i["ok"])


def test_metrics_and_loop(tmp_path, capsys):
    cfg = tmp_path / "bots.yaml"
    cfg.write_text((ROOT / "bots.yaml").read_text())
    r = cli(capsys, "loop", "--interval", "1", "--max-runs", "2", "--config", str(cfg))
    assert r.code == 0, r.err
    assert r.err.count('"run_id"') == 2
    m = cli(capsys, "metrics", "--config", str(cfg))
    assert m.code == 0
    assert 'scalper_runs_total{status="ok"} 2.0' in m.out
    assert "scalper_engine_paused 0.0" in m.out
    prom = tmp_path / "m.prom"
    assert cli(capsys, "metrics", "--config", str(cfg), "--out", str(prom)).code == 0
    assert prom.read_text().startswith("# HELP")


def test_console_script_runs_the_shipped_example_as_is(tmp_path):
    cfg = tmp_path / "bots.yaml"
    cfg.write_text((ROOT / "bots.yaml").read_text())
    p = subprocess.run([sys.executable, "-m", "scalper", "run-once", "--config", str(cfg), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    import json

    doc = json.loads(p.stdout)   # nothing else on stdout
    assert set(doc["bots_run"]) == {"gold-scalper", "eurusd-scalper", "btc-watch"}
    assert (tmp_path / "var" / "ledger.db").exists() and (tmp_path / "var" / "paper-broker.db").exists()


def test_global_options_version_and_usage_errors(tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv)
    v = cli(capsys, "--version")
    assert v.code == 0 and v.out.startswith("scalper ")
    r = cli(capsys, "--config", str(config), "status", "--json")    # --config before the command
    # read from that config: its ledger does not exist yet, which status says (exit 2, issue 9)
    assert r.code == 2 and str(tmp_path / "ledger.db") in r.json()["error"]
    assert cli(capsys, "run-once", "--bogus").code == 2                # a usage error is bad input
    future = cli(capsys, "run-once", "--config", str(config), "--now", "2099-01-01T00:00:00")
    assert future.code == 2 and "future" in future.err and not (tmp_path / "ledger.db").exists()
    bad = cli(capsys, "scan", "--data", str(xau_csv), "--from", "2025-06-01", "--to", "2025-05-01")
    assert bad.code == 2 and "swap" in bad.err


def test_rejections_are_explained_and_unsafe_rollback_needs_yes(tmp_path, capsys, xau_csv, monkeypatch):
    row = golden(shared_file("XAUUSD_M1.expected_signals.csv"))[0]
    config = write_config(tmp_path, xau_csv)
    monkeypatch.setenv("SCALPER_PAPER_FAULTS", "retcodes=10019")
    r = cli(capsys, "run-once", "--config", str(config), "--now", iso(just_after_close(row["bar_time"])))
    assert r.code == 0
    assert "order rejected" in r.out and "NO_MONEY (10019)" in r.out
    assert "orders: 1 created; now rejected 1" in r.out
    monkeypatch.delenv("SCALPER_PAPER_FAULTS")
    # closing positions from a script needs --yes (tests run without a terminal on stdin)
    r = cli(capsys, "rollback", "--close-positions", "--config", str(config))
    assert r.code == 2 and "--yes" in r.err
    assert cli(capsys, "status", "--config", str(config), "--json").json()["paused"] is False
    # releasing a switch that is not engaged says so and changes nothing
    r = cli(capsys, "kill-switch", "release", "--bot", "gold", "--config", str(config))
    assert r.code == 0 and "already off" in r.out
