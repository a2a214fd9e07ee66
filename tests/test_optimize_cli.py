"""`scalper optimize` as a trader runs it: JSON, human output in a pseudo-terminal and
on a pipe, Ctrl-C (a real SIGINT) keeping the finished trials, resuming a study,
--apply editing bots.yaml, exit 2 with the fix."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clikit import cli

SCALPER = [sys.executable, "-m", "scalper"]
SPACE = "doji_breakout.rr=1.0..3.0:0.25,doji_breakout.sl_buffer_atr=0.0..0.5:0.05"
BASE = ["--symbol", "XAUUSD", "--strategies", "doji_breakout", "--space", SPACE, "--min-trades", "5"]

BOTS = """\
# the trader's own notes stay
ledger: var/ledger.db
accounts:
  - id: 1
    broker: paper   # paper money
    balance: 10000
bots:
  - name: gold
    symbol: XAUUSD
    accounts: [1]
    strategies: [doji_breakout, trend_pullback]
    strategy_params:
      trend_pullback: {rr: 2.0}   # tuned by hand
  - name: other
    symbol: BTCUSD
    accounts: [1]
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return env


def test_json_search_is_reproducible_and_complete(capsys, xau_csv):
    args = ["optimize", "--data", str(xau_csv), *BASE, "--trials", "8", "--seed", "4", "--json"]
    first = cli(capsys, *args)
    assert first.code == 0, first.err
    doc = first.json()
    assert first.err == ""                                    # no progress bar off a terminal
    assert "Infinity" not in first.out and "NaN" not in first.out   # strict JSON for other tools
    assert doc["trials_done"] == 8 and len(doc["trials"]) == 8
    for key in ("best", "best_trials", "verdict", "chosen", "equity", "space", "objective"):
        assert key in doc
    assert set(doc["chosen"]) == {"doji_breakout.rr", "doji_breakout.sl_buffer_atr"}
    assert doc["verdict"]["label"] in ("likely overfit", "likely genuine", "no proven edge", "inconclusive")
    assert doc["verdict"]["dsr"]["trials"] >= 2 and 0 <= doc["verdict"]["pbo"]["pbo"] <= 1
    again = cli(capsys, *args).json()
    assert [t["params"] for t in again["trials"]] == [t["params"] for t in doc["trials"]]
    assert again["best"] == doc["best"]


def test_walk_forward_json_has_folds_and_the_stitched_curve(capsys, xau_csv, tmp_path):
    chart = tmp_path / "wf.png"
    r = cli(capsys, "optimize", "--data", str(xau_csv), *BASE, "--trials", "6", "--walk-forward", "3",
            "--anchored", "--chart", str(chart), "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert [f["fold"] for f in doc["folds"]] == [1, 2, 3]
    assert all(f["in_sample"]["from"] == doc["folds"][0]["in_sample"]["from"] for f in doc["folds"])  # anchored
    for a, b in zip(doc["folds"], doc["folds"][1:]):
        assert a["out_of_sample"]["to"] < b["out_of_sample"]["from"]
    oos_net = sum(f["out_of_sample"]["net_pnl"] for f in doc["folds"])
    assert doc["walk_forward_totals"]["out_of_sample_net"] == pytest.approx(oos_net)
    assert doc["equity"][-1][1] == pytest.approx(10_000 + oos_net)
    assert doc["chosen"] == doc["folds"][-1]["chosen"]
    assert chart.stat().st_size > 20_000 and chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, words", [
    (["--space", "doji_breakout.rr=0..2"], "rr=0"),
    (["--space", "doji_breakout.min_bars=10..40"], "min_bars"),
    (["--space", "trend_pullback.rr=1..2"], "not among those replayed"),
    (["--space", SPACE, "--objective", "luck"], "unknown objective"),
    (["--space", SPACE, "--anchored"], "--walk-forward"),
    (["--space", SPACE, "--apply"], "--bot"),
    (["--space", SPACE, "--walk-forward", "500"], "fewer folds"),
])
def test_bad_input_exits_2_with_the_fix(capsys, xau_csv, args, words):
    r = cli(capsys, "optimize", "--data", str(xau_csv), "--symbol", "XAUUSD", "--strategies", "doji_breakout", *args)
    assert r.code == 2
    assert words in r.err


def test_the_change_is_shown_and_written_only_with_apply(capsys, xau_csv, tmp_path):
    cfg = tmp_path / "bots.yaml"
    cfg.write_text(BOTS)
    args = ["optimize", "--data", str(xau_csv), "--bot", "gold", "--strategies", "doji_breakout", "--space", SPACE,
            "--min-trades", "5", "--trials", "5", "-c", str(cfg)]
    shown = cli(capsys, *args)
    assert shown.code == 0, shown.err
    assert "+      doji_breakout:" in shown.out and "add --apply" in shown.out
    # the objective, expectancy, is money: to the cent, like net
    assert re.search(r"winner: #\d+ .* expectancy -?[\d,]+\.\d\d net -?[\d,]+\.\d\d over", " ".join(shown.out.split()))
    assert cfg.read_text() == BOTS                                 # nothing written
    applied = cli(capsys, *args, "--apply", "--json")
    assert applied.code == 0, applied.err
    doc = applied.json()
    assert doc["change"]["applied"] is True
    # five trials prove nothing: the write is done as asked, with a warning that cannot be missed
    assert doc["verdict"]["label"] != "likely genuine"
    assert f"verdict: {doc['verdict']['label']}" in doc["change"]["warning"]
    assert doc["change"]["warning"] in doc["warnings"]
    human_cfg = tmp_path / "human.yaml"
    human_cfg.write_text(BOTS)
    loud = cli(capsys, *args[:-1], str(human_cfg), "--apply")
    assert loud.code == 0 and "WARNING: --apply wrote parameters the search did not show to have an edge" in \
        " ".join(loud.out.split())
    text = cfg.read_text()
    for line in ("# the trader's own notes stay", "broker: paper   # paper money", "trend_pullback: {rr: 2.0}   # tuned by hand",
                 "  - name: other"):
        assert line in text
    from scalper.config import load_config

    bot = load_config(cfg).bot("gold")
    assert bot.strategy_params["doji_breakout"] == {"rr": doc["chosen"]["doji_breakout.rr"],
                                                    "sl_buffer_atr": doc["chosen"]["doji_breakout.sl_buffer_atr"]}
    assert bot.strategy_params["trend_pullback"] == {"rr": 2.0}
    again = cli(capsys, *args, "--apply", "--json").json()         # the same search again: nothing to change
    assert again["change"]["unchanged"] is True


def _read_until_exit(fd: int, proc: subprocess.Popen, timeout: float) -> bytes:
    out, end = b"", time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def test_progress_bar_with_eta_in_a_terminal_and_nothing_on_a_pipe(xau_csv, tmp_path):
    args = [*SCALPER, "optimize", "--data", str(xau_csv), *BASE, "--trials", "6"]
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=_env(), cwd=tmp_path)
    os.close(slave)
    seen = _read_until_exit(master, proc, 240).decode(errors="replace")
    os.close(master)
    assert proc.wait(30) == 0, seen
    assert "trials" in seen and "ETA" in seen and "verdict:" in seen
    piped = subprocess.run(args, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=240)
    assert piped.returncode == 0
    assert piped.stderr == ""                                      # no progress, no escape codes
    assert "verdict:" in piped.stdout and "\x1b[" not in piped.stdout


@pytest.mark.parametrize("jobs, whole_group", [("2", True), ("1", False)])
def test_ctrl_c_keeps_finished_trials_reports_the_best_and_resumes(xau_csv, tmp_path, jobs, whole_group):
    study = tmp_path / "study.db"
    args = [*SCALPER, "optimize", "--data", str(xau_csv), *BASE, "--trials", "400", "--jobs", jobs,
            "--study", str(study), "--json"]
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches the workers too.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp_path,
                            start_new_session=True)
    import optuna

    deadline = time.monotonic() + 240
    done = 0
    while time.monotonic() < deadline and done < 6:
        time.sleep(0.5)
        if proc.poll() is not None:                                # died before the signal: say why
            raise AssertionError(f"optimize exited {proc.returncode} early: {proc.stderr.read()[-2000:]}")
        if study.exists():
            # read-only: optuna.load_study here would race the command's own schema creation
            # (both insert alembic_version) and fail the command, not the test
            try:
                with contextlib.closing(sqlite3.connect(f"file:{study}?mode=ro", uri=True)) as db:
                    done = db.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
            except sqlite3.Error:
                done = 0
    assert done >= 6, "the search did not start"
    # Ctrl-C in a terminal signals the whole foreground group (workers included); `kill -INT` the one process.
    (os.killpg if whole_group else os.kill)(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["interrupted"] is True
    kept = doc["trials_done"]
    assert 6 <= kept < 400 and doc["best"] is not None
    s = optuna.load_study(study_name="search", storage=f"sqlite:///{study}")
    from scalper.optimize.search import REPEAT_OF

    # every finished trial is in the study (beside them, TPE's proposals of points already tried: told
    # the first one's value, marked, never backtested again, and not counted)
    complete = [t for t in s.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    backtested = [t for t in complete if REPEAT_OF not in t.user_attrs]
    assert len(backtested) == kept
    assert all(t.value == next(b.value for b in backtested if b.number == t.user_attrs[REPEAT_OF])
               for t in complete if REPEAT_OF in t.user_attrs)
    assert all(t.state.name in ("COMPLETE",) for t in s.get_trials(deepcopy=False))   # none left dangling
    # The same command resumes: up to --trials in all, the earlier trials kept.
    resumed = subprocess.run([*args[:args.index("--trials") + 1], str(kept + 4), *args[args.index("--trials") + 2:]],
                             capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["trials_resumed"] == kept and again["trials_done"] == kept + 4
    assert again["best"]["value"] >= doc["best"]["value"]


def test_a_study_of_another_search_is_refused(capsys, xau_csv, tmp_path):
    study = tmp_path / "s.db"
    assert cli(capsys, "optimize", "--data", str(xau_csv), *BASE, "--trials", "2", "--study", str(study)).code == 0
    other = cli(capsys, "optimize", "--data", str(xau_csv), *BASE, "--objective", "net", "--trials", "2",
                "--study", str(study))
    assert other.code == 2 and "another --study file" in other.err


def test_without_optuna_the_command_says_how_to_install_it(capsys, xau_csv, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)               # import optuna -> ImportError
    r = cli(capsys, "optimize", "--data", str(xau_csv), *BASE)
    assert r.code == 2 and "optuna" in r.err and "'.[optimize]'" in r.err


def test_run_once_never_imports_optuna(tmp_path):
    code = ("import sys; from scalper.cli import main\n"
            "try:\n    main(['run-once', '--json'])\nexcept SystemExit:\n    pass\n"
            "assert 'optuna' not in sys.modules and 'scalper.optimize.search' not in sys.modules, 'imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=tmp_path,
                       timeout=120)
    assert r.returncode == 0, r.stderr
