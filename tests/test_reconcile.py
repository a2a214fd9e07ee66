"""Position reconciliation against the paper broker's own books: positions with
our magic number the ledger does not know are adopted (and audited); positions
the ledger thinks open but the broker no longer has are closed in the ledger
with the broker's closing deal (price, profit, reason) where it exists."""

from __future__ import annotations

import json
import sqlite3

import pytest

from scalper import wiring
from scalper.brokers.base import OrderRequest
from scalper.brokers.paper import PaperBroker
from scalper.clock import FixedClock, iso
from scalper.config import load_config
from scalper.orders import HISTORY_WAIT_S
from scalper.symbols import spec_for
from tests.enginekit import engine_at
from tests.test_exactly_once import NOW, SYMBOL, assert_books_agree, magic_of, rows, write_bots

QUIET = NOW + 60          # 09:17:05: the 09:16 bar holds no signal


def _paper(config, account: int, at: float) -> PaperBroker:
    cfg = load_config(config)
    broker = PaperBroker(cfg.resolve_path(cfg.paper.state), str(account), wiring.make_feed(cfg), FixedClock(at),
                         spec_for, initial_balance=10_000)
    broker.connect()
    return broker


def _open_positions(tmp_path) -> dict[int, dict]:
    return {p["account_id"]: p for p in rows(tmp_path / "ledger.db", "SELECT * FROM positions WHERE status = 'open'")}


def test_a_position_with_our_magic_unknown_to_the_ledger_is_adopted_and_audited(tmp_path):
    config = write_bots(tmp_path)
    magic = magic_of(config)
    broker = _paper(config, 1, NOW + 30)
    mine = broker.send_order(OrderRequest("by-hand-1", SYMBOL, "buy", 0.02, magic=magic))
    other = broker.send_order(OrderRequest("other-ea", SYMBOL, "sell", 0.01, magic=magic + 1))
    broker.close()
    assert mine.ok and other.ok

    s = engine_at(config, QUIET).run_once()
    assert s.exit_code == 0, s.errors
    assert s.positions == {"adopted": 1} and s.orders_created == 0
    [pos] = rows(tmp_path / "ledger.db", "SELECT * FROM positions")
    assert (pos["account_id"], pos["ticket"], pos["status"], pos["adopted"], pos["bot"]) == (
        1, mine.position_ticket, "open", 1, "gold")
    assert (pos["side"], pos["volume"], pos["magic"], pos["order_id"]) == ("buy", 0.02, magic, None)
    assert pos["price_open"] == pytest.approx(mine.price)
    [audit] = rows(tmp_path / "ledger.db", "SELECT * FROM audit WHERE kind = 'adopted'")
    assert audit["account_id"] == 1 and str(mine.position_ticket) in audit["message"]
    assert json.loads(audit["data"]) == {"ticket": mine.position_ticket, "comment": "by-hand-1"}
    assert_books_agree(tmp_path, magic)

    # Adopted once: the next run only refreshes it.
    again = engine_at(config, QUIET + 30).run_once()
    assert again.positions == {}
    assert len(rows(tmp_path / "ledger.db", "SELECT * FROM audit WHERE kind = 'adopted'")) == 1


def test_a_position_closed_behind_the_engines_back_is_closed_with_the_brokers_deal(tmp_path):
    config = write_bots(tmp_path)
    assert engine_at(config, NOW).run_once().exit_code == 0
    opened = _open_positions(tmp_path)
    assert set(opened) == {1, 2}

    broker = _paper(config, 1, NOW + 30)
    closed = broker.close_position(opened[1]["ticket"], comment="closed by hand", magic=0)
    [deal] = [d for d in broker.deals(since=NOW, position=opened[1]["ticket"]) if d.entry == "out"]
    broker.close()
    assert closed.ok

    s = engine_at(config, QUIET).run_once()
    assert s.exit_code == 0 and s.positions == {"closed": 1}
    [pos] = rows(tmp_path / "ledger.db", "SELECT * FROM positions WHERE account_id = 1")
    assert (pos["status"], pos["close_reason"], pos["closed_at"]) == ("closed", "expert", iso(NOW + 30))
    assert pos["close_price"] == pytest.approx(deal.price) and pos["profit"] == pytest.approx(deal.profit)
    [fill] = rows(tmp_path / "ledger.db", "SELECT * FROM fills WHERE entry = 'out'")
    assert (fill["account_id"], fill["deal_ticket"], fill["reason"]) == (1, deal.ticket, "expert")
    assert rows(tmp_path / "ledger.db", "SELECT * FROM audit WHERE kind = 'position_closed'")
    assert set(_open_positions(tmp_path)) == {2}
    assert_books_agree(tmp_path, magic_of(config))


def test_a_stop_loss_hit_at_the_broker_is_closed_in_the_ledger_with_reason_sl(tmp_path):
    config = write_bots(tmp_path)
    assert engine_at(config, NOW).run_once().exit_code == 0
    opened = _open_positions(tmp_path)

    # The 09:18 bar reaches the sell's stop (3128.63); at 09:20:05 the broker's sync has closed both.
    s = engine_at(config, NOW + 240).run_once()
    assert s.exit_code == 0, s.errors
    for acc, before in opened.items():
        [pos] = rows(tmp_path / "ledger.db", "SELECT * FROM positions WHERE ticket = ?", (before["ticket"],))
        assert (pos["status"], pos["close_reason"]) == ("closed", "sl")
        assert pos["close_price"] == pytest.approx(before["sl"], abs=1e-9) and pos["profit"] < 0
    assert_books_agree(tmp_path, magic_of(config))


def test_a_position_gone_at_the_broker_without_a_deal_waits_as_closing_then_is_given_up(tmp_path):
    config = write_bots(tmp_path)
    assert engine_at(config, NOW).run_once().exit_code == 0
    opened = _open_positions(tmp_path)
    con = sqlite3.connect(tmp_path / "paper.db")     # the broker lost it, and its history too
    with con:
        con.execute("DELETE FROM positions WHERE ticket = ?", (opened[1]["ticket"],))
    con.close()

    # The history may only be late: the position is closed (no exposure) but its P&L is pending.
    s = engine_at(config, QUIET).run_once()
    assert s.exit_code == 0 and s.positions == {"closing": 1}
    [pos] = rows(tmp_path / "ledger.db", "SELECT * FROM positions WHERE account_id = 1")
    assert (pos["status"], pos["close_state"], pos["profit"]) == ("closed", "closing", None)
    # No deal ever shows up: given up as missing after HISTORY_WAIT_S, without P&L.
    later = engine_at(config, QUIET + HISTORY_WAIT_S + 60).run_once()
    assert later.positions["closed"] >= 1     # (account 2's position met its SL/TP meanwhile)
    [pos] = rows(tmp_path / "ledger.db", "SELECT * FROM positions WHERE account_id = 1")
    assert (pos["status"], pos["close_state"], pos["close_reason"], pos["profit"]) == (
        "closed", None, "missing_at_broker", None)
    audits = rows(tmp_path / "ledger.db", "SELECT * FROM audit WHERE kind = 'position_closed' AND account_id = 1")
    assert len(audits) == 1 and "no closing deal in the broker's history" in audits[0]["message"]
