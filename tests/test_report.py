"""`scalper report` on a ledger written by the real engine replaying real gold bars."""

from __future__ import annotations

import contextlib
import csv
import io
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from scalper.report import stats
from tests.clikit import cli
from tests.enginekit import rows

SINCE = "2025-05-01"


# Six hours of two-at-a-time trading that ends with the daily loss limit tripping the kill-switch,
# so the ledger holds approvals, rejections, open and close orders, closed and open positions.
# The same replay as test_backtest's parity span "two-at-a-time-and-daily-loss": made once.
REPLAY = ("2025-05-27 08:00:00", 360, {"daily_loss_limit": 4.0, "max_per_symbol": 2})


@pytest.fixture
def replayed(replayed_span) -> Path:
    return replayed_span(*REPLAY)


def ledger_rows(config: Path, sql: str, params=()) -> list[dict]:
    return rows(config.parent / "ledger.db", sql, params)


def report(capsys, config: Path, *args: str):
    return cli(capsys, "report", "--config", str(config), "--since", SINCE, *args)


def test_counts_match_the_ledger(capsys, replayed):
    r = report(capsys, replayed, "--json")
    assert r.code == 0, r.err
    doc = r.json()
    signals = {x["strategy"]: x["n"] for x in ledger_rows(
        replayed, "SELECT strategy, COUNT(*) AS n FROM signals GROUP BY strategy")}
    decided = defaultdict(Counter)
    for x in ledger_rows(replayed, "SELECT s.strategy, d.reason, COUNT(*) AS n FROM decisions d "
                                   "JOIN signals s ON s.id = d.signal_id GROUP BY 1, 2"):
        decided[x["strategy"]][x["reason"]] = x["n"]
    closed = ledger_rows(replayed, "SELECT strategy, profit FROM positions WHERE status = 'closed' "
                                   "ORDER BY closed_at, id")
    assert set(doc["per_strategy"]) == set(signals)
    for name, row in doc["per_strategy"].items():
        pnls = [c["profit"] for c in closed if c["strategy"] == name]
        assert row["signals"] == signals[name]
        assert row["approved"] == decided[name]["open"]
        assert row["rejected"] == {k: v for k, v in decided[name].items() if k != "open"}
        assert row["trades"] == len(pnls) and row["wins"] == sum(p > 0 for p in pnls)
        assert row["net_pnl"] == pytest.approx(sum(pnls))
        assert row["max_drawdown"] == pytest.approx(stats.max_drawdown(pnls))

    totals = doc["totals"]
    assert totals["signals"] == sum(signals.values()) == totals["approved"] + totals["rejected_total"]
    assert totals["trades"] == len(closed) >= 10 and totals["net_pnl"] == pytest.approx(sum(c["profit"] for c in closed))
    assert totals["rejected"]["risk_kill_switch_engaged"] > 0
    orders = defaultdict(dict)
    for x in ledger_rows(replayed, "SELECT kind, status, COUNT(*) AS n FROM orders GROUP BY 1, 2"):
        orders[x["kind"]][x["status"]] = x["n"]
    assert doc["orders"] == orders and "close" in orders            # the kill-switch closed positions
    # money is shown to the cent (the ledger keeps full precision)
    assert doc["daily_pnl"] == [{**d, "realized": round(d["realized"], 2) + 0.0} for d in ledger_rows(
        replayed, "SELECT day, bot, account_id, realized, trades, wins, losses FROM pnl_daily "
                  "ORDER BY day, bot, account_id")]
    assert len(doc["open_positions"]) == len(ledger_rows(replayed, "SELECT id FROM positions WHERE status = 'open'"))


def test_a_recent_window_still_lists_open_positions(capsys, replayed):
    doc = cli(capsys, "report", "--config", str(replayed), "--since", "24h", "--json").json()
    assert doc["totals"]["signals"] == 0 and doc["totals"]["trades"] == 0 and doc["per_strategy"] == {}
    assert doc["totals"]["profit_factor"] is None
    assert len(doc["open_positions"]) == len(ledger_rows(replayed, "SELECT id FROM positions WHERE status = 'open'"))


def test_csv_is_the_per_strategy_table(capsys, replayed):
    doc = report(capsys, replayed, "--json").json()
    r = report(capsys, replayed, "--csv")
    assert r.code == 0, r.err
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert [x["strategy"] for x in rows] == list(doc["per_strategy"])
    for x in rows:
        want = doc["per_strategy"][x["strategy"]]
        assert int(x["signals"]) == want["signals"] and int(x["trades"]) == want["trades"]
        assert float(x["net_pnl"]) == pytest.approx(want["net_pnl"])
        by_reason = {k[len("rejected_"):]: int(v) for k, v in x.items() if k.startswith("rejected_")}
        assert sum(by_reason.values()) == int(x["rejected"]) == want["rejected_total"]


def test_human_output_and_chart_leave_the_ledger_untouched(tmp_path, capsys, replayed):
    ledger = replayed.parent / "ledger.db"

    def state() -> tuple[list[str], list[str]]:
        """Every row of the ledger (its WAL read too), and the folder's files but SQLite's own
        -wal/-shm (there while any connection is open, whoever opened it)."""
        with contextlib.closing(sqlite3.connect(ledger)) as con:
            dump = list(con.iterdump())
        return dump, sorted(p.name for p in replayed.parent.iterdir() if not p.name.endswith(("-wal", "-shm")))

    before = state()
    chart = tmp_path / "report.png"
    r = report(capsys, replayed, "--bot", "gold", "--chart", str(chart))
    assert r.code == 0, r.err
    for text in ("trend_pullback", "profit factor", "decisions", "daily P&L", "open positions"):
        assert text in r.out, text
    # the terminal is 80 columns wide: a long temporary path wraps (xdist's are longer)
    assert f"wrote chart to {chart}" in r.out.replace("\n", ""), r.out
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert state() == before


def test_bad_input(tmp_path, capsys, replayed):
    missing = cli(capsys, "report", "--ledger", str(tmp_path / "nowhere.db"))
    assert missing.code == 2 and "nowhere.db" in missing.err and not (tmp_path / "nowhere.db").exists()
    assert report(capsys, replayed, "--bot", "silver").code == 2
    assert report(capsys, replayed, "--json", "--csv").code == 2
    assert cli(capsys, "report", "--config", str(replayed), "--since", "last week").code == 2
