"""Engine behaviour around the order path: fan-out, sharing bars, correlation,
auto_trade off, stale feeds, and position upkeep (SL/TP, trailing, kill-switch)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from scalper import wiring
from scalper.brokers.paper import PaperBroker
from scalper.clock import FixedClock
from scalper.config import load_config
from scalper.symbols import spec_for
from tests.conftest import shared_file
from tests.enginekit import engine_at, golden, just_after_close, replay, rows, ts, write_config


def first(strategy):
    return next(r for r in golden(shared_file("XAUUSD_M1.expected_signals.csv")) if r["strategy"] == strategy)


def test_fan_out_one_order_per_account(tmp_path, xau_csv):
    row = first("doji_breakout")
    config = write_config(tmp_path, xau_csv, accounts=(1, 2, 3), strategies=["doji_breakout"])
    s = engine_at(config, just_after_close(row["bar_time"])).run_once()
    assert s.decisions == {"open": 1} and s.orders_created == 3 and s.orders["filled"] == 3
    orders = rows(tmp_path / "ledger.db", "SELECT * FROM orders")
    assert sorted(o["account_id"] for o in orders) == [1, 2, 3]
    assert len({o["client_order_id"] for o in orders}) == 3
    assert all(len(o["client_order_id"]) <= 27 and o["client_order_id"].isalnum() for o in orders)
    assert len(rows(tmp_path / "ledger.db", "SELECT * FROM positions WHERE status = 'open'")) == 3


def test_bars_are_fetched_once_per_symbol(tmp_path, xau_csv, btc_csv):
    config = write_config(tmp_path, xau_csv, extra_bots=[
        {"name": "gold2", "symbol": "XAUUSDm", "accounts": [1]},
        {"name": "gold3", "symbol": "XAUUSDm", "accounts": [1], "lookback": 150},
        {"name": "btc", "symbol": "BTCUSD", "accounts": [1], "auto_trade": False},
    ])
    cfg = yaml.safe_load(config.read_text())
    cfg["feed"]["files"]["BTCUSD"] = str(btc_csv)
    config.write_text(yaml.safe_dump(cfg))
    eng = engine_at(config, ts("2025-05-28 12:00:05"))
    calls = []
    real = eng.feed.closed_bars

    def counting(symbol, count, now):
        calls.append((symbol, count))
        return real(symbol, count, now)

    eng.feed.closed_bars = counting
    s = eng.run_once()
    assert s.exit_code == 0 and len(s.bots_run) == 4
    # the engine's window fetches (the paper broker shares this feed for its quotes: 1-bar reads)
    windows = sorted(c for c in calls if c[1] > 1)
    assert windows == [("BTCUSD", 100), ("XAUUSDm", 150)]


def test_auto_trade_off_records_signals_and_decisions_only(tmp_path, xau_csv):
    row = first("trend_pullback")
    config = write_config(tmp_path, xau_csv, auto_trade=False)
    s = engine_at(config, just_after_close(row["bar_time"])).run_once()
    assert s.signals >= 1 and sum(s.decisions.values()) == s.signals
    assert s.orders_created == 0 and rows(tmp_path / "ledger.db", "SELECT * FROM orders") == []
    assert not rows(tmp_path / "paper.db", "SELECT * FROM orders")
    # the run says why the approved signals were not sent
    approved = s.decisions.get("open", 0)
    assert approved and s.not_sent == {"gold": approved}


def test_run_once_says_which_bots_approved_signals_were_not_sent(tmp_path, xau_csv, capsys):
    from scalper.cli import main

    row = first("trend_pullback")
    config = write_config(tmp_path, xau_csv, auto_trade=False)
    now = just_after_close(row["bar_time"])
    with pytest.raises(SystemExit) as done:
        main(["run-once", "--config", str(config), "--now", datetime.fromtimestamp(now, UTC).isoformat()])
    out = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0
    assert "decisions: open 1" in out and "not sent (auto_trade: false): gold 1 approved" in out


def test_correlation_group_blocks_the_same_direction(tmp_path, xau_csv):
    row = first("doji_breakout")
    config = write_config(tmp_path, xau_csv, symbol="XAUUSD", strategies=["doji_breakout"], extra_bots=[
        {"name": "silver", "symbol": "XAGUSD", "accounts": [1], "strategies": ["doji_breakout"],
         "correlation_group": "usd_metals"}])
    cfg = yaml.safe_load(config.read_text())
    cfg["bots"][0]["correlation_group"] = "usd_metals"
    cfg["correlation_groups"] = {"usd_metals": ["XAUUSD", "XAGUSD"]}
    cfg["feed"]["files"]["XAGUSD"] = str(xau_csv)   # same prices: both bots see the same setup
    config.write_text(yaml.safe_dump(cfg))
    s = engine_at(config, just_after_close(row["bar_time"])).run_once()
    assert s.decisions == {"open": 1, "risk_correlation_group_exposed": 1}
    dec = rows(tmp_path / "ledger.db", "SELECT bot, reason FROM decisions ORDER BY id")
    assert dec == [{"bot": "gold", "reason": "open"}, {"bot": "silver", "reason": "risk_correlation_group_exposed"}]


def test_stale_bars_are_refused(tmp_path, xau_csv):
    config = write_config(tmp_path, xau_csv)
    s = engine_at(config, ts("2025-07-01 00:00:05")).run_once()   # a month after the file ends
    assert s.bots_skipped == [{"bot": "gold", "reason": "feed_stale"}]
    assert s.signals == 0 and any("old" in e for e in s.errors)
    assert s.exit_code == 3 and any("feed unavailable" in e for e in s.errors)   # no bot could run


def _broker(tmp_path, config, now, account="1"):
    cfg = load_config(config)
    b = PaperBroker(tmp_path / "paper.db", account=account, feed=wiring.make_feed(cfg), clock=FixedClock(now),
                    specs=spec_for)
    b.connect()
    return b


def _doji_replay(tmp_path, xau_csv, trailing: dict, *, minutes: int):
    """A doji_breakout bot replayed minute by minute from just after its first golden signal's bar
    → (its bots file, the start, its ledger)."""
    config = write_config(tmp_path, xau_csv, strategies=["doji_breakout"], risk={"trailing": trailing})
    start = just_after_close(first("doji_breakout")["bar_time"])
    replay(engine_at(config, start), [start + 60 * k for k in range(minutes)])
    return config, start, tmp_path / "ledger.db"


def test_sl_tp_closes_reach_the_ledger_with_pnl(tmp_path, xau_csv):
    config, start, ledger = _doji_replay(tmp_path, xau_csv, {"enabled": False}, minutes=240)
    closed = rows(ledger, "SELECT * FROM positions WHERE status = 'closed'")
    assert closed, "expected at least one SL/TP close in four hours"
    broker = _broker(tmp_path, config, start + 60 * 240)
    for p in closed:
        assert p["close_reason"] in ("sl", "tp") and p["profit"] is not None
        deals = [d for d in broker.deals(since=0, position=p["ticket"]) if d.entry == "out"]
        assert len(deals) == 1 and abs(deals[0].profit - p["profit"]) < 1e-9
        assert abs(deals[0].price - p["close_price"]) < 1e-9
    day = rows(ledger, "SELECT SUM(realized) AS r, SUM(trades) AS n FROM pnl_daily")[0]
    assert day["n"] == len(closed) and abs(day["r"] - sum(p["profit"] for p in closed)) < 1e-6
    broker.close()


def test_trailing_stop_moves_the_broker_sl(tmp_path, xau_csv):
    config, start, ledger = _doji_replay(tmp_path, xau_csv, {"enabled": True, "activate_r": 0.2, "distance_r": 0.8},
                                         minutes=120)
    trails = rows(ledger, "SELECT * FROM audit WHERE kind = 'trailing_stop'")
    assert trails, "the trailing stop never moved in two hours"
    moved = rows(ledger, "SELECT * FROM positions WHERE sl != initial_sl")
    assert moved
    for p in moved:   # only ever toward profit
        assert (p["sl"] > p["initial_sl"]) if p["side"] == "buy" else (p["sl"] < p["initial_sl"])


def test_unrealized_loss_trips_the_kill_switch_and_closes(tmp_path, xau_csv):
    row = first("doji_breakout")
    config = write_config(tmp_path, xau_csv, strategies=["doji_breakout"],
                          risk={"kill_switch_loss": 0.5, "kill_switch_loss_pct": None,
                                "trailing": {"enabled": False}})
    start = just_after_close(row["bar_time"])
    eng = engine_at(config, start)
    summaries = replay(eng, [start + 60 * k for k in range(0, 180)])
    tripped = [s for s in summaries if s.kill_switches]
    assert tripped, "a 0.50 USD loss limit should trip within three hours"
    assert tripped[0].kill_switches[0]["source"] == "unrealized_loss"
    ledger = tmp_path / "ledger.db"
    assert rows(ledger, "SELECT * FROM kill_switches")[0]["engaged"] == 1
    after = summaries[summaries.index(tripped[0]) + 1:]
    assert all(s.orders_created == 0 for s in after)
    assert all(set(s.decisions) <= {"risk_kill_switch_engaged"} for s in after)
    broker = _broker(tmp_path, config, start + 60 * 180)
    assert broker.positions() == []
    broker.close()
