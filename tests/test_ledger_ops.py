"""The ledger's named operations on a real SQLite file and a real PostgreSQL ledger: what each
records, and that a retry finds the row instead of adding one."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalper.clock import iso
from scalper.core.exposure import day_start
from scalper.ledger import Ledger
from scalper.ledger.rows import OrderRow, PositionRow
from scalper.vocab import (
    CloseState,
    DecisionAction,
    FillEntry,
    OrderKind,
    OrderStatus,
    PositionStatus,
    RunStatus,
    Side,
)

NOW = 1_747_300_565.0          # 2025-05-15T09:16:05Z
BAR = 1_747_300_500


@pytest.fixture
def led(tmp_path: Path, ledger_engine: str):
    from scalper.ledger.postgres import LedgerUrl
    from tests import pgkit

    where = tmp_path / "ledger.db" if ledger_engine == "sqlite" else LedgerUrl.parse(pgkit.fresh_ledger_url())
    with Ledger(where) as ledger:
        yield ledger


def _signal(led: Ledger, key: str, *, bar_ts: int = BAR, bot: str = "gold") -> tuple[int, bool]:
    with led.tx() as c:
        return led.signals.record(c, dedupe_key=key, run_id="r1", bot=bot, strategy="trend_pullback",
                                  symbol="XAUUSD", bar_time=iso(bar_ts), bar_ts=bar_ts, direction="sell",
                                  entry=3300.0, sl=3310.0, tp=3280.0, score=0.5, params="{}", created_at=iso(NOW))


def _order(led: Ledger, cid: str, signal_id: int | None, account: int, kind: OrderKind = OrderKind.OPEN) -> bool:
    with led.tx() as c:
        return led.orders.record_intent(c, client_order_id=cid, signal_id=signal_id, account_id=account, bot="gold",
                                        kind=kind, symbol="XAUUSD", side="sell", volume=0.1, sl=3310.0, tp=3280.0,
                                        magic=7, position_ticket=None, run_id="r1", at=iso(NOW))


def test_runs_start_finish_and_the_interrupted_ones(led: Ledger) -> None:
    with led.tx() as c:
        led.runs.start(c, "dead", started_at=iso(NOW - 60), as_of=iso(NOW - 60), pid=1, dry_run=False, host="local")
        # a fleet's shared ledger: another host's pass is live while this host's next pass starts
        led.runs.start(c, "live-b", started_at=iso(NOW - 90), as_of=iso(NOW - 120), pid=9, dry_run=False, host="b")
    with led.tx() as c:
        [dead] = led.runs.mark_interrupted(c, noticed_at=iso(NOW), host="local")
        led.runs.start(c, "r2", started_at=iso(NOW), as_of=iso(NOW - 7200), pid=2, dry_run=False, host="local")
    running = led.query("SELECT id, host FROM runs WHERE status = 'running' ORDER BY id")
    assert [(r["id"], r["host"]) for r in running] == [("live-b", "b"), ("r2", "local")]   # b's run untouched
    with led.tx() as c:
        led.runs.finish(c, "live-b", status=RunStatus.OK, finished_at=iso(NOW - 1), duration_s=4.0, summary="{}")
    assert (dead.id, dead.pid, dead.status) == ("dead", 1, RunStatus.RUNNING)       # as it was
    assert led.runs.last() is not None and led.runs.last().id == "r2"
    assert led.runs.last(finished=True).status == RunStatus.INTERRUPTED
    with led.tx() as c:
        led.runs.finish(c, "r2", status=RunStatus.OK, finished_at=iso(NOW + 1), duration_s=1.0, summary="{}")
    last = led.runs.last(finished=True)
    assert (last.id, last.status, last.duration_s) == ("r2", "ok", 1.0)
    assert led.runs.latest_as_of() == iso(NOW - 60)


def test_a_signal_is_recorded_once_and_decided_once(led: Ledger) -> None:
    sid, created = _signal(led, "k1")
    assert created and _signal(led, "k1") == (sid, False)
    assert led.signals.get(sid).direction == Side.SELL
    assert led.signals.decision(sid) is None
    with led.tx() as c:
        led.signals.decide(c, signal_id=sid, run_id="r1", bot="gold", action=DecisionAction.OPEN, reason="open",
                           detail="", created_at=iso(NOW))
    assert led.signals.decision(sid).action == DecisionAction.OPEN


def test_unfinished_signals_are_the_undecided_and_the_approved_not_served_everywhere(led: Ledger) -> None:
    undecided, _ = _signal(led, "undecided", bar_ts=BAR - 3600)
    approved, _ = _signal(led, "approved")
    rejected, _ = _signal(led, "rejected")
    other_bot, _ = _signal(led, "other", bot="btc")
    with led.tx() as c:
        for sid, action in ((approved, DecisionAction.OPEN), (rejected, DecisionAction.REJECT)):
            led.signals.decide(c, signal_id=sid, run_id="r1", bot="gold", action=action, reason=str(action),
                               detail="", created_at=iso(NOW))
    assert _order(led, "c1", approved, 1) and not _order(led, "c1", approved, 1)
    got = led.signals.unfinished(bot="gold", symbol="XAUUSD", since_ts=NOW - 86400, approved_since_ts=BAR - 60)
    assert [(u.signal.id, u.action, u.order_accounts) for u in got] == [
        (undecided, None, frozenset()), (approved, DecisionAction.OPEN, frozenset({1}))]
    # an approved signal older than the freshness window is not resumed
    assert [u.signal.id for u in led.signals.unfinished(bot="gold", symbol="XAUUSD", since_ts=NOW - 86400,
                                                        approved_since_ts=BAR + 1)] == [undecided]
    assert other_bot not in {u.signal.id for u in got}


def test_orders_in_flight_moves_and_rollback_cancels(led: Ledger) -> None:
    sid, _ = _signal(led, "k")
    _order(led, "open-1", sid, 1)
    _order(led, "open-2", sid, 2)
    _order(led, "close-1", None, 1, OrderKind.CLOSE)
    first = led.orders.by_client_id("open-1")
    assert isinstance(first, OrderRow) and first.status == OrderStatus.NEW and first.kind == OrderKind.OPEN
    with led.tx() as c:
        led.orders.move(c, first.id, at=iso(NOW + 5), status=OrderStatus.SENT, attempts=1)
        with pytest.raises(ValueError, match="client_order_id"):
            led.orders.move(c, first.id, at=iso(NOW), client_order_id="x")
    assert led.orders.get(first.id).updated_at == iso(NOW + 5)
    assert [o.client_order_id for o in led.orders.in_flight([1])] == ["open-1", "close-1"]
    assert [o.client_order_id for o in led.orders.in_flight(kind=OrderKind.OPEN)] == ["open-1", "open-2"]
    with led.tx() as c:
        assert led.orders.cancel_unsent(c, created_since=iso(NOW), at=iso(NOW + 9), message="canceled by rollback") == 2
    assert [o.client_order_id for o in led.orders.in_flight()] == ["open-1"]      # `sent` is never canceled


def _position(led: Ledger, ticket: int, bot: str | None = "gold", account: int = 1) -> PositionRow:
    with led.tx() as c:
        led.positions.add(c, account_id=account, ticket=ticket, order_id=None, signal_id=None, bot=bot, strategy=None,
                          symbol="XAUUSD", side="sell", volume=0.1, price_open=3300.0, sl=3310.0, tp=3280.0, magic=7,
                          opened_at=iso(NOW), last_price=3300.0, unrealized=0.0, adopted=False)
        found = led.positions.find(c, account, ticket)
    assert found is not None
    return found


def test_positions_close_realized_today_and_the_daily_pnl(led: Ledger) -> None:
    a, b, c_, adopted = _position(led, 1), _position(led, 2), _position(led, 3), _position(led, 4, bot=None)
    yesterday = iso(day_start(NOW) - 60)
    with led.tx() as c:
        led.positions.close(c, a.id, closed_at=iso(NOW + 60), close_price=3290.0, close_reason="tp", profit=10.0,
                            close_state=None)
        led.positions.close(c, b.id, closed_at=yesterday, close_price=3310.0, close_reason="sl", profit=-10.0,
                            close_state=None)
        led.positions.close(c, c_.id, closed_at=iso(NOW + 90), close_price=3299.0, close_reason="expert",
                            profit=None, close_state=CloseState.CLOSING)
        led.positions.close(c, adopted.id, closed_at=iso(NOW + 90), close_price=3299.0, close_reason="client",
                            profit=-2.5, close_state=None)
        led.positions.record_fill(c, order_id=None, account_id=1, deal_ticket=99, position_ticket=1, side="buy",
                                  entry=FillEntry.OUT, price=3290.0, volume=0.1, profit=9.0, reason="tp",
                                  time=iso(NOW + 60))
        led.positions.record_fill(c, order_id=None, account_id=1, deal_ticket=99, position_ticket=1, side="buy",
                                  entry=FillEntry.OUT, price=3290.0, volume=0.1, profit=10.0, reason="tp",
                                  time=iso(NOW + 60))                      # kept as is
        led.positions.rebuild_daily_pnl(c, day_start(NOW))
    assert led.query("SELECT profit FROM fills WHERE deal_ticket = 99") == [{"profit": 9.0}]
    with led.tx() as c:
        led.positions.record_fill(c, order_id=None, account_id=1, deal_ticket=99, position_ticket=1, side="buy",
                                  entry=FillEntry.OUT, price=3290.0, volume=0.1, profit=10.0, reason="tp",
                                  time=iso(NOW + 60), replace=True)       # the broker's figures win
    assert led.query("SELECT profit FROM fills WHERE deal_ticket = 99") == [{"profit": 10.0}]
    assert led.positions.open() == []
    assert [p.ticket for p in led.positions.closing(1)] == [3]
    assert led.positions.unsettled(1, 3) is not None and led.positions.unsettled(1, 1) is None
    assert led.positions.realized_today(day_start(NOW)) == {"gold": 10.0}
    assert {(r.bot, r.realized, r.trades) for r in led.positions.daily_pnl(iso(NOW)[:10])} == {
        ("gold", 10.0, 2), ("(adopted)", -2.5, 1)}
    assert {p.status for p in led.reports.closed_positions(iso(day_start(NOW)))} == {PositionStatus.CLOSED}


def test_kill_switches_set_and_read(led: Ledger) -> None:
    with led.tx() as c:
        led.kill_switches.set(c, "gold", True, source="manual", reason="by hand", now=NOW)
        led.kill_switches.set(c, "btc", True, source="daily_loss", reason="limit", now=NOW)
        led.kill_switches.set(c, "btc", False, source="manual", reason="released", now=NOW + 1)
    assert set(led.kill_switches.engaged()) == {"gold"}
    assert led.kill_switches.get("btc") is None and led.kill_switches.get("gold").source == "manual"
    assert led.kill_switches.all()["btc"].reason == "released"
