"""What a careful tool does with files asked for, short files, float noise, time going
backwards, stale feeds, dry runs, typos and crashes (issue 9), run in-process."""

from __future__ import annotations

import csv
import io
import os
import re
import sqlite3
from pathlib import Path

import pytest

from scalper.report import charts
from tests.clikit import cli
from tests.conftest import shared_file
from tests.enginekit import write_config

XAU_ROWS = None


def _xau() -> str:
    return str(shared_file("XAUUSD_M1.csv"))


# --- outputs checked before any work -------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--trades-out", "--signals-out", "--chart"])
def test_backtest_outputs_are_checked_before_the_replay(tmp_path, capsys, option):
    name = "x.png" if option == "--chart" else "x.csv"
    folder = tmp_path / "a-folder"
    folder.mkdir()
    fifo = tmp_path / ("fifo.png" if option == "--chart" else "fifo.csv")
    os.mkfifo(fifo)
    readonly = tmp_path / name
    readonly.write_text("keep me")
    readonly.chmod(0o444)
    cases = {folder: "is a folder", fifo: "not a regular file", readonly: "read-only",
             tmp_path / "missing" / name: f"folder {tmp_path / 'missing'} does not exist"}
    for target, words in cases.items():
        r = cli(capsys, "backtest", "--data", _xau(), "--symbol", "XAUUSD", option, str(target))
        assert r.code == 2 and option in r.err and words in r.err, (target, r.err)
        assert "unexpected" not in r.err and r.out == ""                    # refused before the replay
    assert readonly.read_text() == "keep me" and not (tmp_path / "missing").exists()
    same = cli(capsys, "backtest", "--data", _xau(), "--symbol", "XAUUSD", "--trades-out", str(tmp_path / "t.csv"),
               "--signals-out", str(tmp_path / "t.csv"))
    assert same.code == 2 and "same file" in same.err


def test_scan_report_and_metrics_outputs_are_checked(tmp_path, capsys):
    r = cli(capsys, "scan", "--data", _xau(), "--out", str(tmp_path))
    assert r.code == 2 and "--out" in r.err and "is a folder" in r.err
    r = cli(capsys, "scan", "--data", _xau(), "--out", str(tmp_path / "no" / "s.csv"))
    assert r.code == 2 and "does not exist" in r.err and not (tmp_path / "no").exists()
    config = write_config(tmp_path, Path(_xau()), symbol="XAUUSD")
    assert cli(capsys, "run-once", "-c", str(config), "--now", "2025-05-15T09:16:05").code == 0
    r = cli(capsys, "report", "-c", str(config), "--since", "2025-05-01", "--chart", str(tmp_path / "no" / "r.png"))
    assert r.code == 2 and "--chart" in r.err and "does not exist" in r.err
    r = cli(capsys, "metrics", "-c", str(config), "--out", str(tmp_path))
    assert r.code == 2 and "--out" in r.err and "is a folder" in r.err


def test_chart_format_follows_the_extension_or_is_refused(tmp_path, capsys):
    args = ["backtest", "--data", _xau(), "--symbol", "XAUUSD", "--strategies", "doji_breakout",
            "--from", "2025-06-03"]
    assert cli(capsys, *args, "--chart", str(tmp_path / "c.jpg")).code == 0
    assert (tmp_path / "c.jpg").read_bytes()[:3] == b"\xff\xd8\xff"               # JPEG, not PNG bytes
    assert cli(capsys, *args, "--chart", str(tmp_path / "c.svg")).code == 0
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:500]
    r = cli(capsys, *args, "--chart", str(tmp_path / "c.gif"))
    assert r.code == 2 and ".gif" in r.err and ".png" in r.err and not (tmp_path / "c.gif").exists()


# --- backtest: too little data, the balance it starts from ----------------------------------------------------


def test_a_file_too_short_for_one_window_says_why_nothing_ran(tmp_path, capsys):
    lines = Path(_xau()).read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[:51]) + "\n")                          # header + 50 bars
    r = cli(capsys, "backtest", "--data", str(short), "--symbol", "XAUUSD", "--chart", str(tmp_path / "c.png"))
    assert r.code == 2 and "holds 50 bar(s)" in r.err and "--lookback" in r.err
    assert not (tmp_path / "c.png").exists() and "1970" not in r.out + r.err
    r = cli(capsys, "backtest", "--data", _xau(), "--symbol", "XAUUSD", "--from", "2026-01-01")
    assert r.code == 2 and "--from" in r.err
    r = cli(capsys, "backtest", "--data", _xau(), "--symbol", "XAUUSD", "--to", "2025-05-15 07:40")
    assert r.code == 2 and "--to" in r.err


def test_backtest_of_a_bot_says_which_balance_and_takes_balance(tmp_path, capsys):
    config = write_config(tmp_path, Path(_xau()), symbol="XAUUSD", accounts=(1, 2))
    text = config.read_text().replace("name: paper-2", "name: paper-2\n  balance: 2500")
    config.write_text(text)
    args = ["backtest", "--data", _xau(), "--bot", "gold", "-c", str(config), "--strategies", "doji_breakout",
            "--from", "2025-06-03"]
    r = cli(capsys, *args)
    assert r.code == 0 and "balance 2,500.00 →" in r.out and "smallest starting balance" in r.out
    doc = cli(capsys, *args, "--balance", "777", "--json").json()
    assert doc["start_balance"] == 777.0 and doc["balance_source"] == "--balance"


# --- float noise ------------------------------------------------------------------------------------------------


def _decimals(value) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def test_backtest_json_and_csv_carry_no_float_noise(tmp_path, capsys):
    r = cli(capsys, "backtest", "--data", _xau(), "--symbol", "XAUUSD", "--json")
    doc = r.json()
    assert re.search(r"\d\.\d*0000000\d|\d\.\d*9999999\d|-0\.0\b", r.out) is None
    for t in doc["trades"]:
        for k in ("entry", "exit", "sl", "tp", "final_sl"):
            assert _decimals(t[k]) <= 2, (k, t[k])                          # XAUUSD: 2 digits
        assert _decimals(t["pnl"]) <= 2
    for row in [doc["totals"], *doc["per_strategy"].values()]:
        for k in ("net_pnl", "expectancy", "max_drawdown", "gross_profit", "gross_loss"):
            assert row[k] is None or _decimals(row[k]) <= 2
    out = tmp_path / "t.csv"
    assert cli(capsys, "backtest", "--data", str(shared_file("BTCUSD_M1.csv")), "--symbol", "BTCUSD",
               "--trades-out", str(out)).code == 0
    text = out.read_text()
    assert re.search(r"\d\.\d*0000000\d|\d\.\d*9999999\d|-0\.0\b", text) is None
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(len(r["entry"].split(".")[-1]) <= 2 for r in rows)


# --- run-once: backwards, stale, dry run ------------------------------------------------------------------------


def test_replaying_backwards_is_refused_unless_asked(tmp_path, capsys):
    config = write_config(tmp_path, Path(_xau()), symbol="XAUUSD")
    assert cli(capsys, "run-once", "-c", str(config), "--now", "2025-05-20T10:00:05").code == 0
    r = cli(capsys, "run-once", "-c", str(config), "--now", "2025-05-15T09:16:05")
    assert r.code == 2 and "earlier than this ledger's last run" in r.err and "--allow-backwards" in r.err
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    assert cli(capsys, "run-once", "-c", str(config), "--now", "2025-05-15T09:16:05", "--dry-run").code == 0
    r = cli(capsys, "run-once", "-c", str(config), "--now", "2025-05-15T09:16:05", "--allow-backwards")
    assert r.code == 0 and "signals: 1 new" in r.out
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs WHERE dry_run = 0").fetchone()[0] == 2


def test_no_bot_able_to_run_on_stale_bars_is_feed_unavailable(tmp_path, capsys):
    config = write_config(tmp_path, Path(_xau()), symbol="XAUUSD")
    r = cli(capsys, "run-once", "-c", str(config), "--json")               # now: the file ended in 2025
    assert r.code == 3
    doc = r.json()
    assert doc["bots_skipped"] == [{"bot": "gold", "reason": "feed_stale"}] and doc["exit_code"] == 3
    assert any("days old" in e for e in doc["errors"]) and any("feed unavailable" in e for e in doc["errors"])
    # one stale symbol while another bot runs: a warning, the pass is fine
    (tmp_path / "two").mkdir()
    config = write_config(tmp_path / "two", Path(_xau()), symbol="XAUUSD",
                          extra_bots=[{"name": "btc", "symbol": "BTCUSD", "accounts": [1]}])
    text = config.read_text().replace("XAUUSD: ", f"BTCUSD: {shared_file('BTCUSD_M1.csv')}\n    XAUUSD: ")
    config.write_text(text)
    r = cli(capsys, "run-once", "-c", str(config), "--now", "2025-05-20T10:00:05")
    assert r.code == 0, r.out + r.err                                     # gold ran; BTC's file starts 05-21
    assert "warning: feed BTCUSD" in r.out and "error:" not in r.out and "bots run: 1 (gold)" in r.out
    r = cli(capsys, "run-once", "-c", str(config), "--now", "2025-05-22T10:00:05")
    assert r.code == 0 and "warning" not in r.out and "bots run: 2" in r.out   # both have bars on 05-22


def test_a_dry_run_leaves_no_file_behind(tmp_path, capsys):
    config = write_config(tmp_path, Path(_xau()), symbol="XAUUSD")
    before = sorted(p.name for p in tmp_path.iterdir())
    r = cli(capsys, "run-once", "-c", str(config), "--now", "2025-05-15T09:16:05", "--dry-run")
    assert r.code == 0 and "dry run" in r.out and "signals: 1 new" in r.out
    assert sorted(p.name for p in tmp_path.iterdir()) == before           # no ledger, lock or paper state


# --- typos and crashes ------------------------------------------------------------------------------------------


def test_a_misspelt_strategy_gets_a_did_you_mean(tmp_path, capsys):
    for command in (["scan", "--data", _xau()], ["backtest", "--data", _xau(), "--symbol", "XAUUSD"],
                    ["setup-bot", "--symbol", "XAUUSD", "-c", str(tmp_path / "b.yaml")]):
        r = cli(capsys, *command, "--strategies", "trend_pulback")
        assert r.code == 2 and "did you mean 'trend_pullback'?" in r.err, command


def test_an_unexpected_error_leaves_its_traceback_in_the_log(tmp_path, capsys, monkeypatch):
    import scalper.services.scan as scan_service

    def broken(**_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(scan_service, "run_scan", broken)
    config = write_config(tmp_path, Path(_xau()), symbol="XAUUSD")
    config.write_text(config.read_text() + "engine: {log_file: logs/scalper.log}\n")
    try:
        r = cli(capsys, "scan", "--data", _xau(), "-c", str(config))
        assert r.code == 1 and "unexpected RuntimeError: a bug" in r.err
        log = tmp_path / "logs" / "scalper.log"
        assert f"traceback in {log}" in r.err
        text = log.read_text()
        assert "Traceback (most recent call last)" in text and "RuntimeError: a bug" in text
        # no config at all: the user's cache folder holds it
        monkeypatch.chdir(tmp_path / "logs")
        r = cli(capsys, "scan", "--data", _xau())
        cached = Path(os.environ["SCALPER_CACHE_DIR"]) / "scalper.log"
        assert r.code == 1 and f"traceback in {cached}" in r.err and "RuntimeError: a bug" in cached.read_text()
    finally:
        from scalper import logsetup

        logsetup.shutdown()


# --- charts -----------------------------------------------------------------------------------------------------


def test_equity_of_closes_sharing_a_timestamp_spans_an_hour_not_years():
    from matplotlib.figure import Figure

    t = 1_748_336_400.0
    fig = Figure()
    ax, dd = fig.subplots(2, 1)
    charts._equity_and_drawdown(ax, dd, [(t, 0.0), (t, 5.0), (t, -3.0), (t, 2.0)], "realized P&L", "USD", None)
    lo, hi = ax.get_xlim()
    assert 0 < (hi - lo) * 86_400 <= 2 * 3600                             # an hour around it, not 2023→2027
    assert charts._collapse([(t, 0.0), (t, 5.0), (t + 60, 7.0)]) == [(t, 5.0), (t + 60, 7.0)]
    assert dd.get_title(loc="left") == "max drawdown 0.00 USD"


def test_signals_sit_beside_their_bar_not_under_the_entry():
    from matplotlib.figure import Figure

    from scalper.feeds.csvfile import read_bars

    bars, _ = read_bars(_xau())
    window = bars.tail(50)
    i = 20
    t = float(window.time[i])
    fig = Figure()
    ax = fig.subplots()
    charts._signals(ax, [charts.SignalMark(t, float(window.close[i]), "buy"),
                         charts.SignalMark(t, float(window.close[i]), "sell")], window, 0.5)
    buy, sell = (c.get_offsets()[0][1] for c in ax.collections)
    assert buy < window.low[i] and sell > window.high[i]


def test_report_chart_has_a_panel_per_symbol(tmp_path, capsys, monkeypatch):
    """Gold (~3,300) and bitcoin (~109,000) never share a price axis."""
    drawn = {}
    real = charts.draw_panels

    def spy(path, **kw):
        drawn.update(kw)
        return real(path, **kw)

    monkeypatch.setattr(charts, "draw_panels", spy)
    from tests.enginekit import engine_at, ts

    config = write_config(tmp_path, Path(_xau()), symbol="XAUUSD",
                          extra_bots=[{"name": "btc", "symbol": "BTCUSD", "accounts": [1]}])
    config.write_text(config.read_text().replace("XAUUSD: ", f"BTCUSD: {shared_file('BTCUSD_M1.csv')}\n    XAUUSD: "))
    engine = engine_at(config, 0.0)
    for minute in range(60):
        engine.clock.instant = ts("2025-05-27 08:00:00") + 60 * minute + 65
        engine.run_once()
    r = cli(capsys, "report", "-c", str(config), "--since", "2025-05-01", "--chart", str(tmp_path / "r.png"))
    assert r.code == 0, r.err
    panels = drawn["panels"]
    assert [p.symbol for p in panels] == ["BTCUSD", "XAUUSD"]
    assert all(p.bars is not None and len(p.bars) for p in panels)     # candles from the csv feed
    assert drawn["currency"] == "USD" and drawn["equity"][0][1] == 0.0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


# --- the shared progress bar -----------------------------------------------------------------------------------


def test_progress_is_silent_off_a_terminal(capsys):
    from scalper.cli.progress import progress

    with progress(10, "working") as bar:
        for _ in range(10):
            bar.advance()
        bar(10, 10)
    assert not bar.enabled and bar.completed == 10 and bar.total == 10
    assert capsys.readouterr() == ("", "")


def test_scan_watched_finds_what_scan_unwatched_finds():
    from scalper.services.scan import run_scan

    seen = []
    watched = run_scan(data=_xau(), progress=lambda done, total: seen.append((done, total)))
    plain = run_scan(data=_xau())
    assert watched["rows"] == plain["rows"] and watched["skips"] == plain["skips"]
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_scan_output_prices_to_the_digits(tmp_path, capsys):
    from scalper.core.scan import price_decimals
    from scalper.feeds.csvfile import read_bars

    btc = str(shared_file("BTCUSD_M1.csv"))
    assert price_decimals(read_bars(btc)[0]) == 2
    out = tmp_path / "s.csv"
    assert cli(capsys, "scan", "--data", btc, "--out", str(out)).code == 0
    text = out.read_text()
    assert re.search(r"\d\.\d*0000000\d|\d\.\d*9999999\d|-0\.0\b", text) is None
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) > 100
    assert all(len(r[k].split(".")[-1]) <= 2 for r in rows for k in ("entry", "sl", "tp"))
    assert all(len(r["score"].split(".")[-1]) <= 4 for r in rows)
    doc = cli(capsys, "scan", "--data", btc, "--json").json()
    assert all(_decimals(r["sl"]) <= 2 for r in doc["rows"])


def test_the_pnl_axis_ends_where_the_data_ends():
    from matplotlib.figure import Figure

    start = 1_748_336_400.0
    closes = [(start + k * 3600, float(k % 3 - 1)) for k in range(25)]     # a day of hourly closes
    fig = Figure()
    ax, dd = fig.subplots(2, 1)
    dd.sharex(ax)
    charts._equity_and_drawdown(ax, dd, closes, "realized P&L", "USD", None)
    lo, hi = ax.get_xlim()
    assert (lo, hi) == pytest.approx((charts._x(start), charts._x(start + 24 * 3600)), abs=1e-9)
    assert dd.get_xlim() == (lo, hi)
    line = ax.get_lines()[0]
    assert line.get_xdata()[-1] == pytest.approx(hi, abs=1e-9)      # the curve reaches the edge, no further
    # with a span (the report's: its first and last event), the axis is that span
    later = start + 30 * 3600
    fig = Figure()
    ax, dd = fig.subplots(2, 1)
    charts._equity_and_drawdown(ax, dd, closes, "realized P&L", "USD", (start, later))
    assert ax.get_xlim() == pytest.approx((charts._x(start), charts._x(later)), abs=1e-9)
