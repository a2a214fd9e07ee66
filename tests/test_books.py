"""The ledger never loses a live position (issue 8): each reproduced defect, on the real engine and
operator services, with several bots sharing accounts and symbols (tests/bookkit.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scalper.orders import CLOSING
from tests.bookkit import GOLD, World
from tests.enginekit import ts

# Both gold bots take the trend_pullback sell of the 09:15 bar; gold-a on accounts 1 and 2, gold-b on 1.
SIGNAL_AT = ts("2025-05-15 09:16:05")
SHARED = [
    {"name": "gold-a", "symbol": GOLD, "accounts": [1, 2], "strategies": ["trend_pullback"],
     "risk": {"max_concurrent": 4, "max_per_symbol": 3, "kill_switch": False}},
    {"name": "gold-b", "symbol": GOLD, "accounts": [1], "strategies": ["trend_pullback"],
     "risk": {"max_concurrent": 4, "max_per_symbol": 3, "kill_switch": False}},
]


def shared_world(tmp_path, kind="paper", bots=SHARED, **kw) -> World:
    w = World(tmp_path / kind, kind, SIGNAL_AT, bots=bots, **kw)
    s = w.run_once()
    assert s.exit_code == 0, s.errors
    held = {(p["bot"], p["account_id"]) for p in w.ledger("SELECT * FROM positions WHERE status = 'open'")}
    assert held == {("gold-a", 1), ("gold-a", 2), ("gold-b", 1)}
    assert w.check_books() == []
    return w


def open_of(w: World, bot: str) -> list[dict]:
    return w.ledger("SELECT * FROM positions WHERE status = 'open' AND bot = ?", (bot,))


# --- 1. one bot's kill-switch, rollback or automatic switch closes only its own positions -----------
@pytest.mark.parametrize("kind", ["paper", "mt5"])
@pytest.mark.parametrize("how", ["kill_switch", "rollback", "auto"])
def test_closing_one_bot_leaves_the_other_bots_positions_on_the_shared_account(tmp_path, kind, how):
    if how == "auto":   # gold-b trips its switch on any floating loss (the spread alone is one)
        bots = [SHARED[0], {**SHARED[1], "risk": {**SHARED[1]["risk"], "kill_switch": True,
                                                  "kill_switch_loss": 0.01}}]
        w = World(tmp_path / kind, kind, SIGNAL_AT, bots=bots)
        s = w.run_once()
        assert [k["bot"] for k in s.kill_switches] == ["gold-b"], s.kill_switches
        assert s.kill_switches[0]["positions_closed"] == 1
    elif how == "kill_switch":
        w = shared_world(tmp_path, kind)
        out = w.kill_switch("engage", "gold-b")
        assert out["bots"][0]["positions_closed"] == 1
    else:
        # gold-a opens at 09:11:05 (the 09:10 bar's sell), gold-b a minute later; roll back the last 30 s
        w = World(tmp_path / kind, kind, ts("2025-05-15 09:11:05"), bots=SHARED)
        assert w.run_once(["gold-a"]).exit_code == 0
        w.advance(60)
        assert w.run_once(["gold-b"]).exit_code == 0
        assert {p["bot"] for p in w.ledger("SELECT * FROM positions WHERE status = 'open'")} == {"gold-a", "gold-b"}
        w.advance(10)
        out = w.rollback("30s", True)
        assert out["positions_closed"] == 1
        w.resume()
    assert w.check_books() == []
    assert open_of(w, "gold-b") == []
    assert {p["account_id"] for p in open_of(w, "gold-a")} == {1, 2}
    assert set(w.broker_positions(1)) == {p["ticket"] for p in open_of(w, "gold-a") if p["account_id"] == 1}
    closed = w.ledger("SELECT * FROM positions WHERE status = 'closed'")
    assert closed and all(p["close_reason"] != "missing_at_broker" for p in closed)
    assert all(p["profit"] is not None or p["close_state"] == CLOSING for p in closed)
    # The other bot's later exits still reach the ledger, with P&L.
    w.advance(3 * 3600)
    w.run_once()
    assert w.check_books() == []
    assert all(p["profit"] is not None for p in w.ledger("SELECT * FROM positions WHERE status = 'closed'"))


def test_kill_switch_all_counts_every_bots_positions(tmp_path):
    w = shared_world(tmp_path)
    out = w.kill_switch("engage")
    assert {b["bot"]: b["positions_closed"] for b in out["bots"]} == {"gold-a": 2, "gold-b": 1}
    assert w.ledger("SELECT * FROM positions WHERE status = 'open'") == [] and w.check_books() == []
