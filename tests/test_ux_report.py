"""`scalper report` as a journal of closed trades, with clean numbers (issue 9)."""

from __future__ import annotations

import csv
import io
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from scalper.report.journal import JOURNAL_FIELDS
from tests.clikit import cli
from tests.conftest import shared_file
from tests.enginekit import engine_at, ts, write_config

NOISE = re.compile(r"\d\.\d*0000000\d|\d\.\d*9999999\d|-0\.0\b")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("journal")
    config = write_config(tmp, shared_file("XAUUSD_M1.csv"), symbol="XAUUSD", risk={"max_per_symbol": 2},
                          extra_bots=[{"name": "btc", "symbol": "BTCUSD", "accounts": [1]}])
    config.write_text(config.read_text().replace(
        "XAUUSD: ", f"BTCUSD: {shared_file('BTCUSD_M1.csv')}\n    XAUUSD: "))
    engine = engine_at(config, 0.0)
    for minute in range(120):
        engine.clock.instant = ts("2025-05-27 08:00:00") + 60 * minute + 65
        assert engine.run_once().exit_code == 0
    return config


def _closed(config: Path) -> list[dict]:
    with sqlite3.connect(config.parent / "ledger.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM positions WHERE status = 'closed' "
                                            "ORDER BY closed_at, id")]


def test_the_journal_lists_every_closed_trade(ledger, capsys):
    r = cli(capsys, "report", "-c", str(ledger), "--since", "2025-05-01", "--json")
    assert r.code == 0
    doc = r.json()
    closed = _closed(ledger)
    assert len(doc["trades"]) == len(closed) >= 5
    assert {t["symbol"] for t in doc["trades"]} == {"XAUUSD", "BTCUSD"}
    for t, p in zip(doc["trades"], closed):
        assert (t["ticket"], t["entry_time"], t["exit_time"], t["exit_reason"]) == \
               (p["ticket"], p["opened_at"], p["closed_at"], p["close_reason"])
        assert t["pnl"] == round(p["profit"], 2)
        risk = abs(p["price_open"] - p["initial_sl"])
        move = (p["close_price"] - p["price_open"]) * (1 if p["side"] == "buy" else -1)
        assert t["r_multiple"] == pytest.approx(move / risk, abs=0.005)
        assert t["duration_s"] > 0 or t["entry_time"] == t["exit_time"]
    assert NOISE.search(r.out) is None


def test_human_and_csv_journal(ledger, capsys):
    r = cli(capsys, "report", "-c", str(ledger), "--since", "2025-05-01", "--journal")
    assert r.code == 0 and f"closed trades (UTC): {len(_closed(ledger))}" in r.out
    assert re.search(r"[+-]\d\.\d\dR", r.out) and NOISE.search(r.out) is None
    r = cli(capsys, "report", "-c", str(ledger), "--since", "2025-05-01", "--csv", "--journal")
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert r.code == 0 and list(rows[0]) == JOURNAL_FIELDS and len(rows) == len(_closed(ledger))
    r = cli(capsys, "report", "-c", str(ledger), "--since", "2025-05-01", "--csv")
    assert r.out.startswith("strategy,") and NOISE.search(r.out) is None


def test_trades_without_pnl_are_explained(ledger, tmp_path, capsys):
    for name in ("bots.yaml", "ledger.db"):
        shutil.copy2(ledger.parent / name, tmp_path / name)
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute("UPDATE positions SET profit = NULL WHERE id = (SELECT MIN(id) FROM positions "
                   "WHERE status = 'closed')")
    r = cli(capsys, "report", "-c", str(tmp_path / "bots.yaml"), "--since", "2025-05-01")
    assert r.code == 0 and "1 closed trade(s) without a P&L" in r.out and "left out of" in r.out


def test_reason_codes_are_never_cut_at_80_columns(tmp_path, capsys):
    """The kill-switch's close orders add a third table beside the decisions: at 80
    columns they go one under the other rather than cutting reason codes."""
    from rich.console import Console

    from scalper.cli import render

    doc = {"ledger": "l.db", "since": "2025-05-01T00:00:00Z", "bot": None, "per_strategy": {},
           "totals": {"signals": 0, "approved": 0, "rejected_total": 0, "trades": 0, "win_rate": None,
                      "profit_factor": None, "gross_profit": 0, "expectancy": None, "net_pnl": 0,
                      "max_drawdown": 0, "trades_without_pnl": 0},
           "decisions": {"risk_max_positions_per_symbol_exceeded": 1234, "risk_correlation_group_exposed": 5,
                         "open": 40},
           "orders": {"open": {"filled": 40, "rejected": 2}, "close": {"filled": 12, "failed": 1}},
           "daily_pnl": [], "trades": [], "open_positions": []}
    out = io.StringIO()
    render.report(Console(file=out, width=80, color_system=None), doc)
    text = out.getvalue()
    assert "risk_max_positions_per_symbol_exceeded" in text and "risk_correlation_group_exposed" in text
    assert "…" not in text and "1,234" in text and "close orders" in text
    assert max(len(line) for line in text.splitlines()) <= 80
