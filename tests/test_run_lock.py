"""The run lock, with real processes: one `run-once` per ledger at a time; the
others exit 75 at once with a one-line message and touch nothing; a lock left by
a SIGKILLed process never blocks the next run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from scalper.clock import iso
from scalper.ledger import Ledger, run_lock
from scalper.ledger.lock import lock_path
from tests.enginekit import engine_at, just_after_close
from tests.test_exactly_once import (
    assert_books_agree,
    books,
    broker_opens,
    child_env,
    magic_of,
    rows,
    run_cli,
    write_bots,
)

# Two signals on the 10:09 bar (trend_pullback and doji_breakout, both buy): one approved,
# the other refused by max_per_symbol, so "the orders of a single run" is not trivial.
BUSY_NOW = just_after_close("2025-05-15 10:09:00")
RUNNERS = 8

# Each runner imports everything first, says "ready", then waits on its stdin: when the test
# closes the eight stdins they all reach the lock within milliseconds of each other.
_BARRIER = textwrap.dedent("""
    import sys
    import scalper.cli, scalper.services.run, scalper.wiring, scalper.engine
    import scalper.feeds.csvfile, scalper.brokers.paper
    print("ready", flush=True)
    sys.stdin.read()
    scalper.cli.main()
""")


def _orders_of(folder: Path) -> dict:
    ledger = sorted((o["client_order_id"], o["account_id"], o["status"], o["side"], o["volume"], o["fill_price"])
                    for o in rows(folder / "ledger.db", "SELECT * FROM orders"))
    broker = sorted((o["client_order_id"], o["account"], o["side"], o["volume"], o["price"])
                    for o in broker_opens(folder))
    decisions = sorted((d["bot"], d["action"], d["reason"])
                       for d in rows(folder / "ledger.db", "SELECT * FROM decisions"))
    return {"ledger": ledger, "broker": broker, "decisions": decisions}


def _single_run(folder: Path) -> dict:
    config = write_bots(folder)
    s = engine_at(config, BUSY_NOW).run_once()
    assert s.exit_code == 0 and s.orders_created == 2 and s.decisions == {
        "open": 1, "risk_max_positions_per_symbol_exceeded": 1}
    return _orders_of(folder)


def test_eight_runs_at_the_same_moment_one_works_seven_exit_75(tmp_path):
    folder = tmp_path / "busy"
    config = write_bots(folder)
    ledger_path = folder / "ledger.db"
    Ledger(ledger_path).close()          # the file exists, as it does on any live system

    # Hold the ledger's write lock, so that whichever runner wins the run lock stays inside it
    # (in SQLite's busy wait, 10 s at most) until the seven others have been refused.
    hold = sqlite3.connect(ledger_path, isolation_level=None)
    hold.execute("BEGIN IMMEDIATE")

    cmd = [sys.executable, "-c", _BARRIER, "run-once", "--config", str(config), "--now", iso(BUSY_NOW), "--json"]
    procs = [subprocess.Popen(cmd, cwd=folder, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(RUNNERS)]
    refused: set[int] = set()                        # said "another run-once holds the lock"
    results: dict[int, tuple[int, str, str]] = {}    # exit code, stdout, stderr
    changed = threading.Condition()

    def watch(i: int, p: subprocess.Popen) -> None:
        err = []
        for line in p.stderr:
            err.append(line)
            if "holds the lock" in line:
                with changed:
                    refused.add(i)
                    changed.notify_all()
        out = p.stdout.read()
        rc = p.wait()
        with changed:
            results[i] = (rc, out, "".join(err))
            changed.notify_all()

    try:
        for p in procs:
            assert p.stdout.readline() == "ready\n"
        for p in procs:                   # the barrier falls
            p.stdin.close()
        for i, p in enumerate(procs):
            threading.Thread(target=watch, args=(i, p), daemon=True).start()
        with changed:
            assert changed.wait_for(lambda: len(refused | set(results)) >= RUNNERS - 1, timeout=60)
            [winner] = set(range(RUNNERS)) - refused - set(results)
        assert procs[winner].poll() is None          # still inside the lock
        hold.execute("ROLLBACK")
        hold.close()
        with changed:
            assert changed.wait_for(lambda: len(results) == RUNNERS, timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    rc, out, err = results[winner]
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["orders_created"] == 2 and summary["exit_code"] == 0
    for i in set(range(RUNNERS)) - {winner}:
        rc, out, err = results[i]
        assert rc == 75
        [message] = err.strip().splitlines()
        assert message.startswith("error: another run-once holds the lock") and message.endswith("nothing done")
        assert json.loads(out) == {"ok": False, "error": message.removeprefix("error: "), "exit_code": 75}

    # The seven did nothing: one run row, and exactly the orders a single run makes.
    runs = rows(ledger_path, "SELECT * FROM runs")
    assert [(r["status"], r["pid"]) for r in runs] == [("ok", procs[winner].pid)]
    assert _orders_of(folder) == _single_run(tmp_path / "single")
    assert_books_agree(folder, magic_of(config))


def test_a_live_holder_blocks_with_exit_75_and_a_one_line_message(tmp_path):
    config = write_bots(tmp_path)
    with run_lock(tmp_path / "ledger.db"):
        blocked = run_cli(config, BUSY_NOW)
    assert blocked.returncode == 75
    [line] = blocked.stderr.strip().splitlines()
    assert line == (f"error: another run-once holds the lock on {tmp_path / 'ledger.db'} (pid {os.getpid()}); "
                    "nothing done")
    assert not (tmp_path / "ledger.db").exists() and not (tmp_path / "paper.db").exists()

    after = engine_at(config, BUSY_NOW).run_once()          # the lock is free again once released
    assert after.exit_code == 0 and after.orders_created == 2


def test_the_lock_of_a_sigkilled_run_does_not_block_the_next(tmp_path):
    config = write_bots(tmp_path)
    died = run_cli(config, BUSY_NOW, SCALPER_CRASH_AT="after_intent")     # killed while holding the lock
    assert died.returncode == -signal.SIGKILL
    assert lock_path(tmp_path / "ledger.db").exists()
    owner = lock_path(tmp_path / "ledger.db").read_text().strip()
    [crashed] = rows(tmp_path / "ledger.db", "SELECT * FROM runs")
    assert owner == f"pid {crashed['pid']} run-once"                     # the dead holder's note is still there

    after = engine_at(config, BUSY_NOW).run_once()           # takes the same lock, at once
    assert after.exit_code == 0, after.errors
    assert books(tmp_path)["orders"] == {1: "filled", 2: "filled"}
    assert_books_agree(tmp_path, magic_of(config))
