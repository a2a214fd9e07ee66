"""Every command as a trader runs it: once in a real terminal (a pseudo-terminal of
80 or 100 columns) and once piped, through the installed `python -m scalper` (issue 9).

The world: a bots file on the real gold and bitcoin exports (csv feed, paper broker),
and a ledger the real engine wrote replaying two hours of both."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, shared_file
from tests.enginekit import replay_minutes, write_config
from tests.ptykit import in_terminal, piped

pytestmark = pytest.mark.slow


def _two_symbol_config(tmp: Path) -> Path:
    xau, btc = shared_file("XAUUSD_M1.csv"), shared_file("BTCUSD_M1.csv")
    cfg = write_config(tmp, xau, symbol="XAUUSD", risk={"max_per_symbol": 2},
                       extra_bots=[{"name": "btc", "symbol": "BTCUSD", "accounts": [1],
                                    "risk": {"max_per_symbol": 1}}])
    doc = yaml.safe_load(cfg.read_text())
    doc["feed"]["files"]["BTCUSD"] = str(btc)
    doc["engine"] = {"log_file": "scalper.log"}
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    return cfg


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """bots.yaml + ledger.db + paper.db after 150 one-minute passes on 2025-05-27."""
    tmp = tmp_path_factory.mktemp("world")
    cfg = _two_symbol_config(tmp)
    replay_minutes(cfg, shared_file("XAUUSD_M1.csv"), "2025-05-27 08:00:00", 150)
    return cfg


@pytest.fixture
def copy_of(world, tmp_path):
    """A private copy of the world (commands that change the ledger)."""
    for name in ("bots.yaml", "ledger.db", "paper.db"):
        shutil.copy2(world.parent / name, tmp_path / name)
    return tmp_path / "bots.yaml"


XAU = str(ROOT.parent / "shared" / "data" / "XAUUSD_M1.csv")


def _no_crash(seen) -> None:
    assert "Traceback" not in seen.text + seen.err and "unexpected" not in seen.text + seen.err, seen.text + seen.err


# --- long work: the progress bar in a terminal, nothing on a pipe ------------------------------------------


def test_backtest_in_a_terminal_shows_a_progress_bar_then_the_summary(tmp_path):
    seen = in_terminal("backtest", "--data", XAU, "--symbol", "XAUUSD", "--chart", tmp_path / "bt.png",
                       cwd=tmp_path, columns=80)
    _no_crash(seen)
    assert seen.code == 0
    assert "replaying" in seen.text and "ETA" in seen.text               # the bar was drawn on the terminal
    assert "per strategy" in seen.text and "profit factor" in seen.text
    assert "wrote chart to" in seen.text and (tmp_path / "bt.png").read_bytes()[:4] == b"\x89PNG"


def test_backtest_piped_prints_no_progress(tmp_path):
    seen = piped("backtest", "--data", XAU, "--symbol", "XAUUSD", "--strategies", "doji_breakout", cwd=tmp_path)
    _no_crash(seen)
    assert seen.code == 0 and "per strategy" in seen.out
    assert seen.err == "" and "\x1b" not in seen.out                     # no bar, no escape codes on a pipe
    seen = piped("backtest", "--data", XAU, "--symbol", "XAUUSD", "--json", cwd=tmp_path)
    assert seen.code == 0 and json.loads(seen.out)["bars"] == 19_901 and seen.err == ""


def test_scan_in_a_terminal_and_piped(tmp_path):
    seen = in_terminal("scan", "--data", XAU, cwd=tmp_path, columns=80)
    _no_crash(seen)
    assert seen.code == 0 and "scanning" in seen.raw and "trend_pullback" in seen.text
    assert "19,889" in seen.text                                          # thousands separators
    seen = piped("scan", "--data", XAU, "--out", tmp_path / "s.csv", cwd=tmp_path)
    assert seen.code == 0 and seen.err == "" and "wrote 1,713 rows" in seen.out


# --- every other command, in a terminal and piped ------------------------------------------------------------


def test_run_once_in_a_terminal_and_piped(tmp_path):
    cfg = write_config(tmp_path, Path(XAU), symbol="XAUUSD")
    seen = in_terminal("run-once", "-c", cfg, "--now", "2025-05-15T09:16:05", cwd=tmp_path, columns=80)
    _no_crash(seen)
    assert seen.code == 0 and "signals: 1 new (trend_pullback 1)" in seen.text
    seen = piped("run-once", "-c", cfg, "--now", "2025-05-15T09:17:05", "--json", cwd=tmp_path)
    assert seen.code == 0 and json.loads(seen.out)["bots_run"] == ["gold"]


def test_setup_bot_in_a_terminal(copy_of):
    seen = in_terminal("setup-bot", "--symbol", "EURUSD", "-c", copy_of, columns=80)
    _no_crash(seen)
    assert seen.code == 0 and "added bot eurusd-scalper" in seen.text and "qty: 0.1" in seen.text
    seen = piped("setup-bot", "--symbol", "GOLD", "--name", "gold", "-c", copy_of)
    assert seen.code == 2 and "--update" in seen.err


def test_report_in_80_columns_reads_whole_words(world):
    seen = in_terminal("report", "-c", world, "--since", "2025-05-01", cwd=world.parent, columns=80)
    _no_crash(seen)
    assert seen.code == 0
    for whole in ("risk_max_concurrent_positions_exceeded", "profit factor", "max drawdown", "closed trades",
                  "price_action_" if "price_action_pinbar" in seen.text else "trend_", "open positions"):
        assert whole in seen.text, whole
    assert "…" not in seen.text                                            # nothing cut
    seen = piped("report", "-c", world, "--since", "2025-05-01", "--csv", cwd=world.parent)
    assert seen.code == 0 and seen.out.startswith("strategy,signals,approved")


def test_status_in_a_terminal_and_piped(copy_of):
    import sqlite3

    d = copy_of.parent
    seen = in_terminal("status", "-c", copy_of, cwd=d, columns=80)
    _no_crash(seen)
    assert seen.code == 0 and seen.text.startswith("engine: running (last run ok")   # the replay just ran
    for word in ("accounts", "balance", "equity", "auto_trade", "today", "risk", "DD", "open positions"):
        assert word in seen.text, word
    assert "…" not in seen.text
    doc = json.loads(piped("status", "-c", copy_of, "--json", cwd=d).out)
    assert doc["engine"]["state"] == "running" and doc["accounts"][0]["balance"] is not None
    assert doc["accounts"][0]["equity"] == pytest.approx(
        doc["accounts"][0]["balance"] + sum(p["unrealized"] for p in doc["open_positions"]), abs=0.011)
    assert {b["bot"] for b in doc["bots"]} == {"gold", "btc"}
    # "running" is not "not paused": a loop that stopped an hour ago, or a last run that failed, say so
    with sqlite3.connect(d / "ledger.db") as db:
        db.execute("UPDATE runs SET started_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 hour')")
    doc = json.loads(piped("status", "-c", copy_of, "--json", cwd=d).out)
    assert doc["engine"]["state"] == "stalled" and "60 min ago" in doc["engine"]["detail"]
    with sqlite3.connect(d / "ledger.db") as db:
        db.execute("UPDATE runs SET started_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), status = 'unavailable'")
    seen = in_terminal("status", "-c", copy_of, cwd=d, columns=80)
    assert seen.text.startswith("engine: failing (last run ended unavailable")
    missing = piped("status", "-c", copy_of, "--ledger", d / "nope.db", cwd=d)
    assert missing.code == 2 and "no ledger at" in missing.err and not (d / "nope.db").exists()


def test_kill_switch_rollback_resume_in_a_terminal(copy_of):
    d = copy_of.parent
    seen = in_terminal("kill-switch", "engage", "--bot", "gold", "--no-close", "-c", copy_of, cwd=d, columns=80)
    _no_crash(seen)
    assert seen.code == 0 and "kill-switch engaged for gold" in seen.text
    seen = in_terminal("kill-switch", "status", "-c", copy_of, cwd=d, columns=80)
    assert seen.code == 0 and "engaged" in seen.text and "by hand" in seen.text
    assert piped("kill-switch", "release", "--bot", "gold", "-c", copy_of, cwd=d).code == 0
    # rollback asks before closing positions: the trader answers no at the terminal
    seen = in_terminal("rollback", "--since", "30m", "--close-positions", "-c", copy_of, cwd=d, typed="n\n")
    assert seen.code == 0 and "CLOSE every position" in seen.text and "nothing done" in seen.text
    seen = in_terminal("rollback", "--since", "30m", "-c", copy_of, cwd=d, columns=80)
    assert seen.code == 0 and "engine paused" in seen.text
    seen = in_terminal("resume", "-c", copy_of, cwd=d, columns=80)
    assert seen.code == 0 and "engine resumed" in seen.text


def test_check_metrics_loop_help_version_in_a_terminal(world, tmp_path):
    seen = in_terminal("check", "-c", world, cwd=world.parent, columns=80)
    _no_crash(seen)
    assert seen.code in (0, 3) and (("all good" in seen.text) == (seen.code == 0))
    seen = in_terminal("metrics", "-c", world, cwd=world.parent, columns=80)
    assert seen.code == 0 and "scalper_" in seen.text
    assert piped("metrics", "-c", world, "--out", tmp_path / "m.prom", cwd=world.parent).code == 0
    shipped = tmp_path / "bots.yaml"
    shipped.write_text((ROOT / "bots.yaml").read_text())
    seen = in_terminal("loop", "--max-runs", "1", "--interval", "5", "-c", shipped, cwd=tmp_path, columns=80)
    _no_crash(seen)
    assert seen.code == 0
    for command in ("backtest", "scan", "report", "setup-bot", "run-once", "status", "loop", "metrics"):
        seen = in_terminal(command, "--help", columns=80)
        assert seen.code == 0 and "<str>" not in seen.text and "<int>" not in seen.text, command
    assert "-scalper" in in_terminal("setup-bot", "--help", columns=80).text
    assert "[default: -scalper]" not in in_terminal("setup-bot", "--help", columns=80).text
    assert in_terminal("--version").text.startswith("scalper ")


# --- the reader leaves: no traceback, the work done, exit 0 ---------------------------------------------------


@pytest.mark.parametrize("command", [
    ["report", "--since", "2025-05-01", "--journal"],
    ["status"],
])
def test_output_into_a_reader_that_left_exits_0(world, command):
    args = " ".join([sys.executable, "-m", "scalper", *command, "-c", str(world)])
    p = subprocess.run(["bash", "-c", f"sleep 0.2 | true; {args} | true; echo \"rc=${{PIPESTATUS[0]}}\" >&2"],
                       cwd=world.parent, capture_output=True, text=True, timeout=120)
    assert "rc=0" in p.stderr and "Traceback" not in p.stderr and "error" not in p.stderr, p.stderr


def test_run_once_json_into_true_records_its_work(tmp_path):
    cfg = write_config(tmp_path, Path(XAU), symbol="XAUUSD")
    args = f"{sys.executable} -m scalper run-once -c {cfg} --now 2025-05-15T09:16:05 --json"
    p = subprocess.run(["bash", "-c", f"{args} | true; echo \"rc=${{PIPESTATUS[0]}}\" >&2"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert "rc=0" in p.stderr and "Traceback" not in p.stderr, p.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert db.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == 1
        assert db.execute("SELECT status FROM runs").fetchall() == [("ok",)]
