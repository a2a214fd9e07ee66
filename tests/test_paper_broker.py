"""The paper broker on a real SQLite state file, real gold bars and real crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalper.brokers.base import OrderRequest
from scalper.brokers.paper import FAULTS_ENV, PaperBroker, faults_from_env
from scalper.clock import FixedClock, parse_instant
from scalper.config import FaultConfig
from scalper.core.bars import Bars
from scalper.errors import BrokerUnavailable
from scalper.symbols import spec_for
from tests.conftest import shared_file
from tests.fakes.memory_feed import MemoryFeed

REPO = Path(__file__).resolve().parents[1]
T0 = parse_instant("2025-06-02T10:00:00Z")
MINUTE = 60
HALF_SPREAD = 0.10          # gold: 20 points of 0.01, halved


@pytest.fixture(autouse=True)
def _no_fault_env(monkeypatch):
    monkeypatch.delenv(FAULTS_ENV, raising=False)
    monkeypatch.delenv("SCALPER_CRASH_AT", raising=False)


def minute_bars(*rows: tuple) -> Bars:
    """Bars from (open, high, low, close[, spread]) rows, one minute apart from T0."""
    spreads = [r[4] if len(r) > 4 else np.nan for r in rows]
    return Bars.from_arrays([T0 + i * MINUTE for i in range(len(rows))], [r[0] for r in rows],
                            [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], spread=spreads)


def load_gold() -> Bars:
    df = pd.read_csv(shared_file("XAUUSD_M1.csv"))
    times = (pd.to_datetime(df["time"], utc=True) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return Bars.from_arrays(times, df["Open"], df["High"], df["Low"], df["Close"], df["Volume"])


class Rig:
    """A clock and a feed; brokers on one state file share both."""

    def __init__(self, tmp_path: Path, bars: Bars, now: float):
        self.path = tmp_path / "paper.db"
        self.clock = FixedClock(now)
        self.feed = MemoryFeed({"XAUUSD": bars})

    def broker(self, account: str = "demo", specs=spec_for, **kwargs) -> PaperBroker:
        broker = PaperBroker(self.path, account, self.feed, self.clock, specs, **kwargs)
        broker.connect()
        return broker

    def at(self, minute: float) -> None:
        self.clock.instant = T0 + minute * MINUTE


def buy(volume=0.1, sl=None, tp=None, cid="cid-1", magic=7) -> OrderRequest:
    return OrderRequest(cid, "XAUUSD", "buy", volume, sl=sl, tp=tp, magic=magic)


def sell(volume=0.1, sl=None, tp=None, cid="cid-1", magic=7) -> OrderRequest:
    return OrderRequest(cid, "XAUUSD", "sell", volume, sl=sl, tp=tp, magic=magic)


FLAT = (2000.0, 2000.5, 1999.5, 2000.0)


@pytest.fixture
def rig(tmp_path):
    """Bar 0 opens at 2000; we stand 10 s into it, so a buy fills at 2000.10."""
    bars = minute_bars(FLAT, (2000.0, 2001.0, 1999.0, 2000.5), (1999.0, 1999.5, 1997.5, 1998.0),
                       (2001.0, 2001.2, 2000.8, 2001.0), (2002.0, 2002.5, 2001.5, 2002.0), FLAT)
    return Rig(tmp_path, bars, T0 + 10)


def order_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT client_order_id, state FROM orders ORDER BY ticket").fetchall()


# --- fills ----------------------------------------------------------------------
def test_fill_price_is_forming_bar_open_plus_or_minus_half_spread_on_real_gold(tmp_path):
    gold = load_gold()
    i = 5_000
    rig = Rig(tmp_path, gold, float(gold.time[i]) + 25)
    broker = rig.broker()
    opened = broker.send_order(buy(volume=0.01))
    shorted = broker.send_order(sell(volume=0.01, cid="cid-2"))
    assert opened.code == 10009 and opened.message == "Request executed"
    assert opened.price == pytest.approx(gold.open[i] + HALF_SPREAD)
    assert shorted.price == pytest.approx(gold.open[i] - HALF_SPREAD)
    quote = broker.quote("XAUUSD")
    assert (quote.bid, quote.ask) == pytest.approx((gold.open[i] - HALF_SPREAD, gold.open[i] + HALF_SPREAD))
    assert opened.time == rig.clock.now()


def test_without_a_forming_bar_the_fill_uses_the_last_close(rig):
    rig.at(6.5)        # past the last bar: nothing forming
    assert rig.broker().send_order(buy()).price == pytest.approx(FLAT[3] + HALF_SPREAD)


def test_spread_comes_from_the_bars_when_they_carry_it(tmp_path):
    rig = Rig(tmp_path, minute_bars((2000.0, 2000.5, 1999.5, 2000.0, 30.0), FLAT), T0 + MINUTE + 5)
    assert rig.broker().send_order(buy()).price == pytest.approx(2000.15)


def test_a_fill_records_order_in_deal_and_position(rig):
    broker = rig.broker()
    result = broker.send_order(buy(sl=1998.0, tp=2003.0))
    assert result.ticket == result.position_ticket and result.deal_ticket > result.ticket
    [pos] = broker.positions()
    assert (pos.ticket, pos.side, pos.volume, pos.sl, pos.tp, pos.magic, pos.comment) == \
        (result.ticket, "buy", 0.1, 1998.0, 2003.0, 7, "cid-1")
    assert pos.price_open == pytest.approx(2000.10)
    found = broker.find_order("cid-1", 7, since=T0)
    assert found.state == "filled" and found.position_ticket == result.ticket
    [deal] = found.deals
    assert (deal.ticket, deal.entry, deal.side, deal.profit, deal.reason) == \
        (result.deal_ticket, "in", "buy", 0.0, "expert")


# --- SL / TP --------------------------------------------------------------------
def test_sl_hit_closes_at_the_sl_with_an_mt5_style_comment(rig):
    broker = rig.broker()
    ticket = broker.send_order(buy(sl=1998.0, tp=2003.0)).position_ticket
    rig.at(5)
    broker.sync()
    assert broker.positions() == []
    [out] = broker.deals(since=T0, position=ticket)[1:]
    assert (out.entry, out.side, out.reason, out.price, out.comment) == ("out", "sell", "sl", 1998.0, "[sl 1998.00]")
    assert out.time == T0 + 2 * MINUTE
    assert out.profit == pytest.approx((1998.0 - 2000.10) * 0.1 * 100)


def _closing_deal(rig, order):
    """The last deal of `order`'s position after the broker synced at the rig's minute 5."""
    broker = rig.broker()
    ticket = broker.send_order(order).position_ticket
    rig.at(5)
    broker.sync()
    return broker.deals(since=T0, position=ticket)[-1]


def test_tp_hit_closes_at_the_tp(rig):
    out = _closing_deal(rig, buy(sl=1990.0, tp=2000.8))
    assert (out.reason, out.price, out.time) == ("tp", 2000.8, T0 + MINUTE)


def test_sell_tp_hit(rig):
    out = _closing_deal(rig, sell(sl=2010.0, tp=1998.5))
    assert (out.side, out.reason, out.price) == ("buy", "tp", 1998.5)
    assert out.profit == pytest.approx((1999.90 - 1998.5) * 0.1 * 100)


def test_a_bar_touching_both_levels_counts_as_the_sl(rig):
    broker = rig.broker()
    ticket = broker.send_order(buy(sl=1999.2, tp=2000.9)).position_ticket    # bar 1 spans 1999–2001
    rig.at(5)
    broker.sync()
    assert broker.deals(since=T0, position=ticket)[-1].reason == "sl"


def test_a_gap_through_the_sl_exits_at_the_open(tmp_path):
    rig = Rig(tmp_path, minute_bars((2000.0, 2000.5, 1999.8, 2000.2), (1997.0, 1997.5, 1996.5, 1997.2)), T0 + 10)
    broker = rig.broker()
    ticket = broker.send_order(buy(sl=1999.0)).position_ticket
    rig.at(2)
    broker.sync()
    out = broker.deals(since=T0, position=ticket)[-1]
    assert (out.reason, out.price, out.comment) == ("sl", 1997.0, "[sl 1997.00]")
    assert out.profit == pytest.approx((1997.0 - 2000.10) * 0.1 * 100)


def test_the_bar_the_position_opened_in_is_checked(rig):
    broker = rig.broker()
    ticket = broker.send_order(buy(tp=2000.4)).position_ticket      # bar 0 reaches 2000.5
    rig.at(1)
    broker.sync()
    assert broker.deals(since=T0, position=ticket)[-1].price == 2000.4


def test_sync_walks_each_bar_once(rig):
    broker = rig.broker()
    rig.at(2)                                    # bar 2 forming at 1999: buy at 1999.10
    ticket = broker.send_order(buy(sl=1990.0)).position_ticket
    rig.at(4.5)
    broker.sync()                                # bars 2 and 3 checked, no hit
    with sqlite3.connect(rig.path) as db:
        assert db.execute("SELECT checked_until FROM positions").fetchone()[0] == T0 + 3 * MINUTE
    # Bar 2 (low 1997.5) would hit this SL, but it was checked under the old one.
    assert broker.modify_stops(ticket, 1997.8, None).code == 10009
    broker.sync()
    assert [p.sl for p in broker.positions()] == [1997.8]
    rig.at(6.5)                                  # bars 4 and 5 stay above it too
    broker.sync()
    assert len(broker.positions()) == 1


def test_sync_on_real_gold_exits_where_a_plain_scan_says(tmp_path):
    gold = load_gold()
    i = 12_345
    rig = Rig(tmp_path, gold, float(gold.time[i]) + 5)
    broker = rig.broker()
    sl, tp = gold.open[i] - 2.0, gold.open[i] + 2.0
    fill = broker.send_order(buy(volume=0.01, sl=sl, tp=tp))
    j = next(k for k in range(i, len(gold)) if gold.low[k] <= sl or gold.high[k] >= tp)
    o = gold.open[j]
    expected = o if (o <= sl or o >= tp) else (sl if gold.low[j] <= sl else tp)
    rig.clock.instant = float(gold.time[j]) + 3 * MINUTE
    broker.sync()
    out = broker.deals(since=0, position=fill.position_ticket)[-1]
    assert out.price == pytest.approx(expected)
    assert out.profit == pytest.approx((expected - fill.price) * 0.01 * 100)
    assert broker.account_info().balance == pytest.approx(10_000 + out.profit)


# --- money ----------------------------------------------------------------------
def test_pnl_balance_and_equity(rig):
    broker = rig.broker()
    ticket = broker.send_order(buy(volume=0.1)).position_ticket
    rig.at(4.5)                                       # bar 4 forming at 2002
    [pos] = broker.positions()
    assert pos.price_current == 2002.0
    assert pos.profit == pytest.approx((2002.0 - 2000.10) * 0.1 * 100)        # 19.0
    info = broker.account_info()
    assert (info.balance, info.equity, info.currency) == (10_000, pytest.approx(10_019.0), "USD")
    assert info.margin_free == pytest.approx(10_019.0 - 2000.10 * 0.1 * 100 / 100)

    closed = broker.close_position(ticket, comment="exit-1", magic=7)
    assert closed.code == 10009 and closed.price == pytest.approx(2002.0 - HALF_SPREAD)    # a buy closes at the bid
    out = broker.deals(since=T0, position=ticket)[-1]
    assert (out.entry, out.side, out.reason, out.comment, out.order) == ("out", "sell", "expert", "exit-1",
                                                                         closed.ticket)
    assert out.profit == pytest.approx(18.0)
    info = broker.account_info()
    assert info.balance == pytest.approx(10_018.0) and info.equity == pytest.approx(10_018.0)
    assert broker.close_position(ticket).code == 10036
    assert broker.close_position(999).code == 10036


def test_deals_filter_by_time_and_position(rig):
    broker = rig.broker()
    first = broker.send_order(buy(cid="a")).position_ticket
    rig.at(1)
    second = broker.send_order(buy(cid="b")).position_ticket
    broker.close_position(first)
    assert [d.position_id for d in broker.deals(since=T0)] == [first, second, first]
    assert [d.position_id for d in broker.deals(since=T0, until=T0 + 30)] == [first]
    assert [d.entry for d in broker.deals(since=T0 + 30)] == ["in", "out"]
    assert [d.entry for d in broker.deals(since=T0, position=first)] == ["in", "out"]
    assert broker.positions(magic=7)[0].ticket == second and broker.positions(magic=8) == []


# --- state ------------------------------------------------------------------------
def test_state_survives_a_restart(rig):
    before = rig.broker()
    ticket = before.send_order(buy(sl=1998.0)).position_ticket
    before.close()

    after = rig.broker()
    assert [p.ticket for p in after.positions()] == [ticket]
    assert after.find_order("cid-1", 7, since=T0).position_ticket == ticket
    rig.at(5)
    after.sync()
    balance = after.account_info().balance
    assert balance == pytest.approx(10_000 + (1998.0 - 2000.10) * 10)
    after.close()
    assert rig.broker(initial_balance=50_000).account_info().balance == balance   # created once only
    assert rig.broker().send_order(buy(cid="next")).ticket > ticket


def test_two_accounts_in_one_file_are_independent(rig):
    alice = rig.broker("alice")
    bob = rig.broker("bob", initial_balance=5_000)
    a = alice.send_order(buy(cid="same-id"))
    b = bob.send_order(sell(cid="same-id"))
    assert b.ticket > a.deal_ticket                   # one ticket sequence for the whole server
    assert [p.side for p in alice.positions()] == ["buy"] and [p.side for p in bob.positions()] == ["sell"]
    assert bob.close_position(a.position_ticket).code == 10036
    assert bob.modify_stops(a.position_ticket, 1990.0, None).code == 10036
    assert bob.find_order("same-id", 7, since=T0).ticket == b.ticket
    alice.close_position(a.position_ticket)
    assert bob.account_info().balance == 5_000
    assert alice.account_info().balance == pytest.approx(10_000 - 0.2 * 10)
    assert [d.position_id for d in bob.deals(since=T0)] == [b.position_ticket]


def test_concurrent_writers_never_share_a_ticket(rig):
    """Four connections race from the very creation of the file (which once failed: see _use_wal)."""
    tickets: dict[str, list] = {account: [] for account in "abcd"}

    def trade(account: str):
        broker = rig.broker(account)
        tickets[account] = [broker.send_order(buy(volume=0.01, cid=f"{account}-{k}")).ticket for k in range(15)]
        broker.close()

    threads = [threading.Thread(target=trade, args=(account,)) for account in tickets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [t for account in tickets.values() for t in account]
    assert len(set(everything)) == 60 and None not in everything
    assert all(sorted(ts) == ts for ts in tickets.values())
    assert all(s == "filled" for _, s in order_rows(rig.path))


def test_state_file_is_owner_only(rig):
    old = os.umask(0o022)
    try:
        rig.broker().send_order(buy())
    finally:
        os.umask(old)
    files = [p for p in rig.path.parent.iterdir() if p.name.startswith(rig.path.name)]
    assert {p.name for p in files} >= {"paper.db", "paper.db-wal", "paper.db-shm"}
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name


def test_a_foreign_file_is_reported_as_unavailable(tmp_path):
    junk = tmp_path / "paper.db"
    junk.write_bytes(b"not a database at all" * 100)
    broker = PaperBroker(junk, "demo", MemoryFeed({}), FixedClock(T0), spec_for)
    with pytest.raises(BrokerUnavailable, match="paper.db"):
        broker.connect()


def test_calls_before_connect_fail_clearly(rig):
    broker = PaperBroker(rig.path, "demo", rig.feed, rig.clock, spec_for)
    with pytest.raises(RuntimeError, match="connect"):
        broker.positions()


# --- validation -------------------------------------------------------------------
@pytest.mark.parametrize("request_, code", [
    (buy(volume=0.001), 10014),                 # below the minimum
    (buy(volume=0.015), 10014),                 # not a multiple of the step
    (buy(volume=150.0), 10014),                 # above the maximum
    (buy(volume=0.0), 10014),
    (OrderRequest("cid-1", "XAGUSD", "buy", 0.01), 10021),      # the feed has no silver
    (OrderRequest("cid-1", "XAGUSD", "buy", 0.001), 10014),     # volume is checked before the price
    (buy(sl=2000.0), 10016),                    # a buy's SL must be below the bid (1999.90)
    (buy(tp=1999.8), 10016),                    # … and its TP above it
    (sell(sl=2000.0), 10016),                   # a sell's SL must be above the ask (2000.10)
    (sell(tp=2000.2), 10016),
    (buy(volume=50.0), 10019),                  # 50 lots of gold need ~100,005 of margin
])
def test_each_server_rule_has_its_retcode(rig, request_, code):
    broker = rig.broker()
    result = broker.send_order(request_)
    assert (result.code, result.ticket) == (code, None)
    assert broker.positions() == []
    refused = broker.find_order("cid-1", request_.magic, since=T0)
    assert (refused.state, refused.price, refused.deals) == ("rejected", None, ())


def test_valid_volumes_and_stops_pass(rig):
    broker = rig.broker(initial_balance=100_000)
    for k, volume in enumerate((0.01, 0.07, 0.29, 1.0, 12.34)):
        assert broker.send_order(buy(volume=volume, sl=1999.8, tp=2000.0, cid=f"v{k}")).code == 10009


def test_stops_level_keeps_levels_at_a_distance(rig):
    broker = rig.broker(specs=lambda s: replace(spec_for(s), stops_level=50))     # 0.50 from the bid
    assert broker.send_order(buy(sl=1999.5)).code == 10016
    assert broker.send_order(buy(sl=1999.3, cid="cid-2")).code == 10009


def test_used_margin_counts_against_new_orders(rig):
    broker = rig.broker(initial_balance=1_000)        # 0.4 lot of gold at 2000 needs ~800
    assert broker.send_order(buy(volume=0.4)).code == 10009
    assert broker.send_order(buy(volume=0.4, cid="cid-2")).code == 10019


def test_a_refusal_then_a_fill_under_one_client_id_finds_the_fill(rig):
    broker = rig.broker()
    assert broker.send_order(buy(volume=0.001)).code == 10014
    filled = broker.send_order(buy())
    assert broker.find_order("cid-1", 7, since=T0).ticket == filled.ticket
    assert broker.find_order("cid-1", 8, since=T0) is None
    assert broker.find_order("cid-1", 7, since=T0 + 3600) is None


def test_modify_stops_codes(rig):
    broker = rig.broker()
    ticket = broker.send_order(buy(sl=1998.0, tp=2003.0)).position_ticket
    assert broker.modify_stops(ticket + 1000, 1998.0, 2003.0).code == 10036
    assert broker.modify_stops(ticket, 1998.0, 2003.0).code == 10025
    assert broker.modify_stops(ticket, 1999.95, 2003.0).code == 10016       # above the bid
    assert broker.modify_stops(ticket, 1998.0, 1999.0).code == 10016        # TP below the bid
    assert broker.modify_stops(ticket, 1999.0, None).code == 10009
    [pos] = broker.positions()
    assert (pos.sl, pos.tp) == (1999.0, None)


# --- faults -----------------------------------------------------------------------
def test_scripted_codes_are_returned_in_order_without_executing(rig):
    broker = rig.broker(faults=FaultConfig(retcodes=[10004, 10021]))
    assert [broker.send_order(buy()).code for _ in range(3)] == [10004, 10021, 10009]
    assert order_rows(rig.path) == [("cid-1", "filled")]
    assert rig.broker().send_order(buy(cid="other")).code == 10009     # consumed by that broker only


@pytest.mark.parametrize("code", [10012, 10031])
def test_a_scripted_uncertain_code_executes_the_order(rig, code):
    broker = rig.broker(faults=FaultConfig(retcodes=[code]))
    result = broker.send_order(buy())
    assert (result.code, result.kind, result.ticket) == (code, "uncertain", None)
    assert broker.find_order("cid-1", 7, since=T0).state == "filled"
    assert len(broker.positions()) == 1


def test_lost_answer_executes_reports_timeout_and_find_order_finds_it(rig):
    broker = rig.broker(faults=FaultConfig(lost_answer=True))
    lost = broker.send_order(buy())
    assert (lost.code, lost.message, lost.ticket) == (10012, "Request timed out", None)
    found = broker.find_order("cid-1", 7, since=T0)
    assert found.state == "filled" and [p.ticket for p in broker.positions()] == [found.position_ticket]
    assert [d.entry for d in found.deals] == ["in"]
    assert broker.send_order(buy(cid="cid-2")).code == 10009        # only the first answer is lost


def test_a_late_answer_comes_after_the_fill_is_at_the_broker(rig):
    import threading
    import time

    broker = rig.broker(faults=FaultConfig(answer_delay_s=0.6))
    seen: list = []

    def look() -> None:   # another connection to the state file, while the answer is on its way
        time.sleep(0.3)
        other = rig.broker()
        seen.append(other.find_order("cid-1", 7, since=T0))
        other.close()

    watcher = threading.Thread(target=look)
    began = time.monotonic()
    watcher.start()
    result = broker.send_order(buy())
    took = time.monotonic() - began
    watcher.join()
    assert result.ok and 0.6 <= took < 5
    assert seen[0] is not None and seen[0].state == "filled" and seen[0].ticket == result.ticket


def test_unreachable_raises_broker_unavailable(rig):
    broker = PaperBroker(rig.path, "demo", rig.feed, rig.clock, spec_for, faults=FaultConfig(unreachable=True))
    with pytest.raises(BrokerUnavailable, match="injected fault"):
        broker.connect()
    assert not rig.path.exists()


def test_quote_without_a_price_is_a_clear_error(rig):
    with pytest.raises(BrokerUnavailable, match="no price for XAGUSD"):
        rig.broker().quote("XAGUSD")


def test_faults_from_env_overrides_the_config(monkeypatch):
    base = FaultConfig(retcodes=[10024], crash_at="before_fill")
    assert faults_from_env(base) is base
    monkeypatch.setenv(FAULTS_ENV, "retcodes=10004, 10004; lost_answer=1;crash_at=after_fill;unreachable=yes;")
    assert faults_from_env(base) == FaultConfig(retcodes=[10004, 10004], crash_at="after_fill",
                                                unreachable=True, lost_answer=True)
    monkeypatch.setenv(FAULTS_ENV, "retcodes=;crash_at=none")
    assert faults_from_env(base) == FaultConfig()
    monkeypatch.setenv(FAULTS_ENV, "lost_answer=1")
    assert faults_from_env(None) == FaultConfig(lost_answer=True)
    monkeypatch.setenv(FAULTS_ENV, "answer_delay_s=2.5")
    assert faults_from_env(base) == base.model_copy(update={"answer_delay_s": 2.5})


@pytest.mark.parametrize("spec, complaint", [
    ("retcodes=abc", "retcodes must be"),
    ("retcodes=1004", "retcodes must be"),
    ("crash_at=sometime", "crash_at must be"),
    ("lost_answer=maybe", "lost_answer must be"),
    ("lost_answer", "not key=value"),
    ("colour=red", "unknown key 'colour'"),
    ("answer_delay_s=soon", "answer_delay_s must be"),
    ("answer_delay_s=-1", "answer_delay_s must be"),
    ("answer_delay_s=nan", "answer_delay_s must be"),
    ("unreachable=1;unreachable=0", "given twice"),
])
def test_bad_fault_specs_are_refused(monkeypatch, spec, complaint):
    monkeypatch.setenv(FAULTS_ENV, spec)
    with pytest.raises(ValueError, match=complaint) as info:
        faults_from_env(None)
    assert FAULTS_ENV in str(info.value)


def test_the_environment_reaches_the_broker(rig, monkeypatch):
    monkeypatch.setenv(FAULTS_ENV, "unreachable=1")
    with pytest.raises(BrokerUnavailable):
        rig.broker()


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from scalper.brokers.base import OrderRequest
    from scalper.brokers.paper import PaperBroker
    from scalper.clock import FixedClock
    from scalper.core.bars import Bars
    from scalper.symbols import spec_for
    from tests.fakes.memory_feed import MemoryFeed

    t0 = float(sys.argv[2])
    feed = MemoryFeed({"XAUUSD": Bars.from_arrays([t0], [2000.0], [2001.0], [1999.0], [2000.5])})
    broker = PaperBroker(Path(sys.argv[1]), "demo", feed, FixedClock(t0 + 10), spec_for)
    broker.connect()
    print(broker.send_order(OrderRequest("crash-1", "XAUUSD", "buy", 0.1, magic=7)), flush=True)
""")


@pytest.mark.parametrize("env, filled", [
    ({FAULTS_ENV: "crash_at=after_fill"}, 1),
    ({FAULTS_ENV: "crash_at=before_fill"}, 0),
    ({"SCALPER_CRASH_AT": "after_fill"}, 1),
    ({"SCALPER_CRASH_AT": "during_send"}, 0),
], ids=["fault-after_fill", "fault-before_fill", "crash_point-after_fill", "crash_point-during_send"])
def test_a_real_crash_leaves_a_sound_state_file(rig, env, filled):
    child_env = {**os.environ, **env,
                 "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.run([sys.executable, "-c", CHILD, str(rig.path), str(T0)], env=child_env,
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout == ""                                   # it never answered
    with sqlite3.connect(rig.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert order_rows(rig.path) == [("crash-1", "filled")] * filled

    # What reconciliation sees after the restart.
    found = rig.broker().find_order("crash-1", 7, since=T0)
    assert (found is not None) == bool(filled)
    if found:
        assert found.price == pytest.approx(2000.10) and len(rig.broker().positions()) == 1
