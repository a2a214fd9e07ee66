"""Bad input is refused up front: exit 2, a short message quoting the bad value (cut, control
characters escaped), and nothing written. And implausible prices never reach the books, nor
Infinity/NaN any JSON (issue 8: defect 7 and "Bad input")."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from scalper.clock import FixedClock, iso
from scalper.core.bars import Bars
from scalper.errors import DataError
from scalper.feeds import builtin, plausible
from scalper.feeds.csvfile import read_bars
from scalper.feeds.mt5 import Mt5Feed
from scalper.ledger import run_lock
from tests.clikit import cli
from tests.conftest import ROOT, shared_file
from tests.enginekit import golden, just_after_close, write_config
from tests.fakes.mt5_fake import demo_terminal, xauusd

SIGNAL = golden(shared_file("XAUUSD_M1.expected_signals.csv"))[0]   # 2025-05-15 09:15 trend_pullback sell


def strict_json(text: str):
    """json.loads that refuses the Infinity/NaN words Python's json writes and other parsers reject."""
    def refuse(word):
        raise ValueError(f"invalid JSON constant {word}")
    return json.loads(text, parse_constant=refuse)


def written(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")}


def scalper(*args: str, timeout: float = 60, memory_mb: int = 1500, **kw) -> subprocess.CompletedProcess:
    """The real console entry point in a child, capped in time and memory (the old code read
    /dev/zero until memory ran out and blocked on a FIFO for good)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    return subprocess.run([sys.executable, "-m", "scalper", *args], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap, **kw)


def with_line(src: Path, dest: Path, line: int, new: str) -> Path:
    lines = src.read_text().splitlines(keepends=True)
    lines[line - 1] = new + "\n"
    dest.write_text("".join(lines))
    return dest


def bar_line(src: Path, line: int) -> list[str]:
    return src.read_text().splitlines()[line - 1].split(",")


# --- defect 7: implausible prices --------------------------------------------------------------
def test_the_real_exports_still_load_whole(xau_csv, btc_csv):
    for path in (xau_csv, btc_csv):
        bars, warnings = read_bars(path)
        assert len(bars) == 20_000 and warnings == []
        plausible.check_bars(bars, path.name)     # and the feed-side check agrees


@pytest.mark.parametrize("command", ["scan", "backtest"])
@pytest.mark.parametrize("price", ["1e308", "31250.0"])   # absurd, and a slipped decimal point (10x)
def test_an_implausible_bar_is_refused_naming_its_line(command, price, tmp_path, capsys, xau_csv):
    t = bar_line(xau_csv, 101)[0]
    data = with_line(xau_csv, tmp_path / "x.csv", 101, f"{t},{price},{price},{price},{price},50")
    args = ["--symbol", "XAUUSD"] if command == "backtest" else []
    r = cli(capsys, command, "--data", str(data), *args, "--json")
    assert r.code == 2, r.err
    assert "x.csv:101" in r.err and "implausible price" in r.err
    assert strict_json(r.out)["exit_code"] == 2
    # --skip-bad-rows drops exactly that row, not its neighbours
    ok = cli(capsys, command, "--data", str(data), *args, "--skip-bad-rows", "--json")
    assert ok.code == 0, ok.err
    doc = strict_json(ok.out)
    assert len(doc["warnings"]) == 1 and "(line 101)" in doc["warnings"][0]


def test_a_bar_ten_times_wider_than_it_is_low_is_refused(tmp_path, capsys, xau_csv):
    t, o, h, lo, c, v = bar_line(xau_csv, 50)
    data = with_line(xau_csv, tmp_path / "x.csv", 50, f"{t},{o},{float(lo) * 10},{lo},{c},{v}")
    r = cli(capsys, "scan", "--data", str(data))
    assert r.code == 2 and "x.csv:50" in r.err and "more than 5x low" in r.err


def test_run_once_refuses_the_feed_file_with_an_absurd_bar(tmp_path, capsys, xau_csv):
    # the signal bar of 09:15 priced 1e308: it used to be traded and book an infinite profit
    lines = xau_csv.read_text().splitlines()
    n = next(i for i, line in enumerate(lines, 1) if line.startswith(SIGNAL["bar_time"]))
    data = with_line(xau_csv, tmp_path / "gold.csv", n, f"{SIGNAL['bar_time']},1e308,1e308,1e308,1e308,80")
    config = write_config(tmp_path, data)
    r = cli(capsys, "run-once", "--config", str(config), "--now", iso(just_after_close(SIGNAL["bar_time"])),
            "--json")
    assert r.code == 2, r.err
    doc = strict_json(r.out)
    # bad data for every symbol: refused before anything is opened (issue 8: no file, no `ok` run)
    errors = doc.get("errors") or [doc["error"]]
    assert any(f"gold.csv:{n}" in e and "implausible price" in e for e in errors), errors
    assert doc.get("signals", 0) == 0 and not doc.get("orders_created")
    assert not (tmp_path / "ledger.db").exists()


def test_the_mt5_feed_refuses_a_bad_tick_in_the_terminal_history():
    t0 = 1_747_735_200
    closes = [3000.0] * 10
    closes[6] = 1e308
    bars = Bars.from_arrays(np.arange(10) * 60 + t0 - 600, closes, closes, closes, closes,
                            volume=np.full(10, 10.0), spread=np.full(10, 20.0))
    clock = FixedClock(t0 + 20)
    term = demo_terminal(clock, symbols=[xauusd("XAUUSD")])
    term.load_bars("XAUUSD", bars)
    with pytest.raises(DataError, match=r"terminal history of XAUUSD: the bar at 2025-05-20 09:56:00 has a price "
                                        r"above"):
        Mt5Feed(module=term, server_offset_s=0).closed_bars("XAUUSD", 9, clock.now())


def test_the_mt5_feed_refuses_an_absurd_live_quote():
    clock = FixedClock(1_747_735_220)
    term = demo_terminal(clock, symbols=[xauusd("XAUUSD")])
    term.set_quote("XAUUSD", 3000.0, 3000.3)
    feed = Mt5Feed(module=term, server_offset_s=0)
    assert feed.price_at("XAUUSD", clock.now()) == pytest.approx(3000.15)
    term.set_quote("XAUUSD", 1e308, 1e308)   # bid + ask overflows to inf
    with pytest.raises(DataError, match="quote of XAUUSD: implausible price inf"):
        feed.price_at("XAUUSD", clock.now())


def test_the_builtin_feed_refuses_prices_out_of_range(monkeypatch):
    # a market table entry gone wrong (a level in the wrong unit) must not reach the books
    monkeypatch.setitem(builtin._MARKETS, "XAUUSD", builtin.Market(5e10, 0.012, False, 120))
    builtin._day_bars.cache_clear()
    try:
        with pytest.raises(DataError, match="builtin feed: the bar at .* has a price above"):
            builtin.BuiltinFeed(seed=7).closed_bars("XAUUSD", 100, 1_747_735_200)
    finally:
        builtin._day_bars.cache_clear()


def test_an_infinite_pnl_in_an_old_ledger_never_reaches_json_or_metrics(tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv, strategies=["trend_pullback"])
    r = cli(capsys, "run-once", "--config", str(config), "--now", iso(just_after_close(SIGNAL["bar_time"])),
            "--json")
    assert r.code == 0 and strict_json(r.out)["orders"].get("filled") == 1, r.err
    # what a ledger written before prices were checked holds: an infinite profit (SQLite keeps it)
    con = sqlite3.connect(tmp_path / "ledger.db")
    con.execute("UPDATE positions SET status = 'closed', closed_at = ?, profit = 9e999, unrealized = -9e999",
                (iso(time.time()),))
    con.execute("INSERT INTO pnl_daily VALUES ('2025-05-15', 'gold', 1, 9e999, 1, 1, 0)")
    con.commit()
    assert con.execute("SELECT profit FROM positions").fetchone()[0] == float("inf")
    con.close()
    for args in (["report", "--since", "2025-05-01"], ["status"]):
        r = cli(capsys, *args, "--config", str(config), "--json")
        assert r.code == 0, r.err
        strict_json(r.out)   # the old report printed Infinity here
    m = cli(capsys, "metrics", "--config", str(config))
    assert m.code == 0 and "Inf" not in m.out and "NaN" not in m.out
    assert 'scalper_realized_pnl{bot="gold"} 0.0' in m.out
    r = cli(capsys, "report", "--since", "2025-05-01", "--config", str(config), "--json")
    totals = strict_json(r.out)["totals"]
    assert totals["net_pnl"] == 0 and totals["trades_without_pnl"] == 1
    human = cli(capsys, "report", "--since", "2025-05-01", "--config", str(config))
    assert human.code == 0 and not re.search(r"(?<![a-z_])(inf|nan)(?![a-z])", human.out.lower()), human.out


def test_emit_json_writes_null_for_non_finite_numbers(capsys):
    from scalper.cli.common import emit_json

    emit_json({"a": float("inf"), "b": [float("nan"), 1.5], "c": {"d": -float("inf")}})
    assert strict_json(capsys.readouterr().out) == {"a": None, "b": [None, 1.5], "c": {"d": None}}


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "1e13"])
def test_backtest_money_options_must_be_finite_and_sane(value, capsys, xau_csv):
    for option in ("--balance", "--qty"):
        r = cli(capsys, "backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", option, value)
        assert r.code == 2 and f"'{value}'" in r.err, (option, r.err)


def test_bots_file_money_is_bounded(tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv)
    text = config.read_text().replace("initial_balance: 10000", "initial_balance: 1.0e+300")
    config.write_text(text)
    r = cli(capsys, "run-once", "--config", str(config))
    assert r.code == 2 and "initial_balance" in r.err
    assert written(tmp_path) == {"bots.yaml"}


# --- times ---------------------------------------------------------------------------------
def test_an_empty_now_is_refused_not_read_as_live(tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv)
    r = cli(capsys, "run-once", "--config", str(config), "--now", "", "--json")
    assert r.code == 2 and "--now" in r.err and "'' is empty" in r.err
    assert written(tmp_path) == {"bots.yaml"}   # no ledger, lock, paper state or log


@pytest.mark.parametrize("since, words", [("99999999999d", "reaches back before 1970"),
                                          ("0001-01-01T00:00:00+14:00", "is before 1970-01-01"),
                                          ("9999-12-31T23:59:59-14:00", "is after 9999-12-31"),
                                          ("", "cannot read ''")])
def test_since_out_of_range_is_bad_input(since, words, tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv)
    for command in ("report", "rollback"):
        r = cli(capsys, command, "--since", since, "--config", str(config))
        assert r.code == 2 and "--since" in r.err and words in r.err, (command, r.err)
        assert repr(since) in r.err
    for option in ("--from", "--to"):
        if since.endswith("d") or not since:
            continue
        r = cli(capsys, "scan", "--data", str(shared_file("XAUUSD_M1.csv")), option, since)
        assert r.code == 2 and option in r.err and words in r.err
    assert written(tmp_path) == {"bots.yaml"}


# --- data files that are not files --------------------------------------------------------------
@pytest.mark.parametrize("command", ["scan", "backtest"])
def test_data_that_is_not_a_regular_file_is_refused_without_reading_it(command, tmp_path):
    fifo = tmp_path / "bars.csv"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    extra = ["--symbol", "XAUUSD"] if command == "backtest" else []
    for data, kind in ((fifo, "a named pipe (FIFO)"), (Path("/dev/zero"), "a device"), (folder, "a directory")):
        started = time.monotonic()
        p = scalper(command, "--data", str(data), *extra, timeout=60)
        assert p.returncode == 2, (data, p.stderr)
        assert f"{data}: not a bar file: it is {kind}" in p.stderr
        assert time.monotonic() - started < 30


# --- a data error's message stays short -----------------------------------------------------
@pytest.mark.parametrize("cell, shown", [("9" * 2_000_000, "is not a finite number"),
                                         ("31\x0025.5", r"'31\x0025.5' is not a number"),
                                         ("\x00" * 2_000_000, r"'\x00\x00"),
                                         ("2025-05-15\x00 07:36:00", r"'2025-05-15\x00 07:36:00' is not a time")])
def test_a_data_error_quotes_the_cell_cut_and_escaped(cell, shown, tmp_path, capsys, xau_csv):
    t, o, h, lo, c, v = bar_line(xau_csv, 3)
    new = f"{cell},{o},{h},{lo},{c},{v}" if "2025" in cell else f"{t},{o},{cell},{lo},{c},{v}"
    data = with_line(xau_csv, tmp_path / "x.csv", 3, new)
    r = cli(capsys, "scan", "--data", str(data))
    assert r.code == 2 and "x.csv:3" in r.err
    assert shown in r.err
    assert "\x00" not in r.err and len(r.err) < 600, len(r.err)
    if len(cell) > 1000:
        assert "(2,000,000 characters)" in r.err


# --- loop ----------------------------------------------------------------------------------
@pytest.mark.parametrize("interval", ["nan", "inf", "1e309", "0", "-1"])
def test_loop_interval_must_be_a_sane_finite_number(interval, tmp_path):
    cfg = tmp_path / "bots.yaml"
    cfg.write_text((ROOT / "bots.yaml").read_text())
    p = scalper("loop", "--interval", interval, "--config", str(cfg), timeout=60)
    assert p.returncode == 2, p.stderr
    assert f"'{interval}'" in p.stderr and "--interval" in p.stderr
    assert written(tmp_path) == {"bots.yaml"}


def test_loop_stopped_by_sigterm_exits_0_even_when_its_last_pass_met_the_lock(tmp_path):
    cfg = tmp_path / "bots.yaml"
    cfg.write_text((ROOT / "bots.yaml").read_text())
    ledger = tmp_path / "var" / "ledger.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_")}
    lines: list[str] = []
    with run_lock(ledger):   # a manual run-once holds the lock for the whole life of the loop
        child = subprocess.Popen([sys.executable, "-m", "scalper", "loop", "--interval", "1", "--config", str(cfg),
                                  "--ledger", str(ledger)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env)
        reader = threading.Thread(target=lambda: lines.extend(child.stderr), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 120   # a loaded machine starts Python slowly
            while not any("holds the lock" in line for line in lines):
                assert time.monotonic() < deadline and child.poll() is None, (child.poll(), lines)
                time.sleep(0.05)
            child.send_signal(signal.SIGTERM)
            code = child.wait(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        reader.join(timeout=10)
    assert code == 0, lines
    assert any("SIGTERM received" in line for line in lines), lines


# --- ledger paths ----------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["run-once"], ["run-once", "--dry-run"], ["report"], ["status"], ["metrics"],
                                     ["kill-switch", "engage", "--bot", "gold"], ["rollback"], ["resume"]])
def test_a_ledger_path_under_a_file_or_at_a_non_ledger_says_so(command, tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv)
    note = tmp_path / "notes.txt"
    note.write_text("my trading notes\n")
    before = written(tmp_path)
    r = cli(capsys, *command, "--config", str(config), "--ledger", str(note / "ledger.db"))
    assert r.code == 2, r.err
    assert f"is under {note}, which is a file, not a folder" in r.err and "damaged" not in r.err
    r = cli(capsys, *command, "--config", str(config), "--ledger", str(note))
    assert r.code == 2, r.err
    assert f"{note} is not a scalper ledger: it is not an SQLite database (it begins 'my trading notes')" \
        in r.err and "damaged" not in r.err
    assert written(tmp_path) == before and note.read_text() == "my trading notes\n"


def test_check_lists_a_ledger_path_under_a_file(tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv)
    (tmp_path / "notes.txt").write_text("x")
    r = cli(capsys, "check", "--config", str(config), "--ledger", str(tmp_path / "notes.txt" / "l.db"), "--json")
    assert r.code == 2
    item = next(i for i in strict_json(r.out)["items"] if i["what"] == "ledger")
    assert not item["ok"] and "which is a file, not a folder" in item["detail"]


def test_the_csv_feed_names_a_fifo_instead_of_reading_it(tmp_path, capsys):
    fifo = tmp_path / "XAUUSD_M1.csv"
    os.mkfifo(fifo)
    config = write_config(tmp_path, fifo)
    r = cli(capsys, "run-once", "--config", str(config), "--now", "2025-05-15T09:16:05", "--json")
    assert r.code == 2
    doc = strict_json(r.out)
    assert any("not a bar file: it is a named pipe (FIFO)" in e for e in doc.get("errors") or [doc["error"]])


@pytest.mark.parametrize("args", [["run-once", "--bot"], ["report", "--bot"], ["kill-switch", "engage", "--bot"],
                                  ["scan", "--data", "DATA", "--strategies"], ["scan", "--data", "DATA", "--bot"]])
def test_a_huge_argument_is_quoted_cut_in_the_message(args, tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv)
    if args[0] == "report":   # report needs a ledger to look the bot up in
        cli(capsys, "run-once", "--config", str(config))
    huge = "x\x1b[31m" + "y" * 500_000
    argv = [str(xau_csv) if a == "DATA" else a for a in args]
    r = cli(capsys, *argv, huge, "--config", str(config))
    assert r.code == 2, r.err
    assert "'x\\x1b[31myyy" in r.err and "(500,006 characters)" in r.err and len(r.err) < 800, r.err[:300]
