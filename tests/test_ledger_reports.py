"""What the reports read from the ledger: the journal says what closed a trade, the metrics
give money to the cent and a kill-switch gauge for every configured bot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scalper.clock import iso
from scalper.ledger import Ledger
from scalper.report import journal, metrics
from scalper.vocab import CloseReason, PositionStatus
from tests.bookkit import World
from tests.enginekit import ts
from tests.test_books import SHARED, SIGNAL_AT, shared_world


def _trades(w: World) -> dict[tuple[str, int], dict]:
    with Ledger(w.ledger_path, readonly=True) as led:
        return {(t["bot"], t["account_id"]): t for t in journal.closed_trades(led, since=0)}


@pytest.mark.parametrize("how", ["kill_switch", "rollback"])
def test_the_journal_says_why_scalper_closed_a_trade(tmp_path: Path, how: str) -> None:
    if how == "kill_switch":
        w = shared_world(tmp_path)
        assert w.kill_switch("engage", "gold-b")["bots"][0]["positions_closed"] == 1
    else:
        w = World(tmp_path / "paper", "paper", ts("2025-05-15 09:11:05"), bots=SHARED)
        assert w.run_once(["gold-a"]).exit_code == 0
        w.advance(60)
        assert w.run_once(["gold-b"]).exit_code == 0
        w.advance(10)
        assert w.rollback("30s", True)["positions_closed"] == 1
    trades = _trades(w)
    assert set(trades) == {("gold-b", 1)}
    assert trades[("gold-b", 1)]["exit_reason"] == how
    # the ledger keeps the broker's word; the journal adds scalper's reason for sending the close
    [closed] = [p for p in w.ledger("SELECT * FROM positions WHERE status = 'closed'")]
    assert closed["close_reason"] == CloseReason.EXPERT


def test_the_journal_keeps_the_brokers_reason_for_what_scalper_did_not_close(tmp_path: Path) -> None:
    w = shared_world(tmp_path)
    w.advance(3 * 3600)          # the sells run into their stops or targets at the broker
    w.run_once()
    reasons = {t["exit_reason"] for t in _trades(w).values()}
    assert reasons and reasons <= {"sl", "tp"}


def _sample(text: str, name: str, bot: str) -> float | None:
    m = re.search(rf'^{name}{{bot="{re.escape(bot)}"}} (\S+)$', text, re.MULTILINE)
    return float(m.group(1)) if m else None


def test_metrics_give_a_kill_switch_gauge_for_every_configured_bot(tmp_path: Path) -> None:
    w = shared_world(tmp_path)
    with Ledger(w.ledger_path, readonly=True) as led:
        before = metrics.render(led, bots=["gold-a", "gold-b"])
    assert _sample(before, "scalper_kill_switch_engaged", "gold-a") == 0
    assert _sample(before, "scalper_kill_switch_engaged", "gold-b") == 0
    w.kill_switch("engage", "gold-b")
    with Ledger(w.ledger_path, readonly=True) as led:
        after = metrics.render(led, bots=["gold-a", "gold-b"])
    assert _sample(after, "scalper_kill_switch_engaged", "gold-a") == 0
    assert _sample(after, "scalper_kill_switch_engaged", "gold-b") == 1


def test_metrics_give_realized_pnl_to_the_cent(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    profits = [0.1, 0.2, 0.4]            # summed as floats: 0.7000000000000001
    assert sum(profits) != round(sum(profits), 2)
    with Ledger(db) as led, led.tx() as c:
        for ticket, profit in enumerate(profits, start=1):
            led.positions.add(c, account_id=1, ticket=ticket, order_id=None, signal_id=None, bot="gold",
                              strategy=None, symbol="XAUUSD", side="buy", volume=0.01, price_open=3300.0, sl=None,
                              tp=None, magic=7, opened_at=iso(SIGNAL_AT), last_price=None, unrealized=None,
                              adopted=False)
            [row] = [p for p in led.positions.open() if p.ticket == ticket]
            led.positions.close(c, row.id, closed_at=iso(SIGNAL_AT + 60), close_price=3300.0, close_reason="tp",
                                profit=profit, close_state=None)
    with Ledger(db, readonly=True) as led:
        assert {p.status for p in led.reports.closed_positions("")} == {PositionStatus.CLOSED}
        text = metrics.render(led, bots=["gold"])
    assert _sample(text, "scalper_realized_pnl", "gold") == 0.7
    assert _sample(text, "scalper_kill_switch_engaged", "gold") == 0
