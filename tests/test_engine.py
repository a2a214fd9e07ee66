"""The engine end to end on real SQLite files and the real XAUUSD M1 export."""

from __future__ import annotations

from collections import Counter

import pytest

from scalper.brokers.paper import PaperBroker
from scalper.clock import FixedClock, iso
from scalper.config import load_config
from scalper.core.scan import scan_history
from scalper.feeds.csvfile import read_bars
from scalper.symbols import spec_for
from tests.conftest import shared_file
from tests.enginekit import engine_at, golden, just_after_close, replay, rows, ts, write_config


def _golden():
    return golden(shared_file("XAUUSD_M1.expected_signals.csv"))


def test_pinbar_on_suffixed_symbol_goes_signal_decision_order_fill(tmp_path, xau_csv):
    pin = next(r for r in _golden() if r["strategy"] == "price_action_pinbar")
    config = write_config(tmp_path, xau_csv, symbol="XAUUSDm", strategies=["price_action_pinbar"])
    now = just_after_close(pin["bar_time"])
    s = engine_at(config, now).run_once()

    assert s.exit_code == 0, s.errors
    assert s.signals == 1 and s.signals_by_strategy == {"price_action_pinbar": 1}
    assert s.decisions == {"open": 1}
    assert s.orders_created == 1 and s.orders.get("filled") == 1

    ledger = tmp_path / "ledger.db"
    [sig] = rows(ledger, "SELECT * FROM signals")
    assert sig["symbol"] == "XAUUSDm" and sig["direction"] == pin["direction"]
    assert sig["bar_time"] == iso(ts(pin["bar_time"]))
    assert sig["sl"] == pytest.approx(float(pin["sl"]), rel=1e-9)
    [dec] = rows(ledger, "SELECT * FROM decisions")
    assert dec["action"] == "open" and dec["reason"] == "open"
    [order] = rows(ledger, "SELECT * FROM orders")
    assert order["status"] == "filled" and order["code"] == 10009 and order["volume"] == 0.01
    [pos] = rows(ledger, "SELECT * FROM positions")
    assert pos["status"] == "open" and pos["ticket"] == order["position_ticket"]

    # The broker's own books agree: the fill is the forming bar's open ± half the spread.
    cfg = load_config(config)
    bars, _ = read_bars(xau_csv)
    forming = bars.index_of(int(ts(pin["bar_time"])) + 60)
    spec = spec_for("XAUUSDm")
    half = spec.spread_points * spec.point / 2
    expected = bars.open[forming] + (half if pin["direction"] == "buy" else -half)
    from scalper import wiring

    broker = PaperBroker(tmp_path / "paper.db", account="1", feed=wiring.make_feed(cfg), clock=FixedClock(now),
                         specs=spec_for)
    broker.connect()
    [bp] = broker.positions()
    assert bp.ticket == pos["ticket"] and bp.comment == order["client_order_id"]
    assert bp.price_open == pytest.approx(expected, abs=1e-9)
    assert pos["price_open"] == pytest.approx(expected, abs=1e-9)
    broker.close()


def test_trend_pullback_skips_with_insufficient_candles_on_15_bars(tmp_path, xau_csv):
    bars, _ = read_bars(xau_csv)
    config = write_config(tmp_path, xau_csv, strategies=["trend_pullback"])
    now = float(bars.time[14]) + 60 + 5          # exactly 15 closed bars exist
    s = engine_at(config, now).run_once()
    assert s.exit_code == 0
    assert s.skips == {"trend_pullback_insufficient_candles": 1}
    assert s.signals == 0 and s.orders_created == 0


def test_per_symbol_limit_rejects_without_creating_an_order(tmp_path, xau_csv):
    # A busy morning: signals come faster than the first position closes.
    config = write_config(tmp_path, xau_csv, risk={"max_concurrent": 5, "max_per_symbol": 1})
    bars, _ = read_bars(xau_csv)
    start = bars.index_of(int(ts("2025-05-15 09:10:00")))
    instants = [float(bars.time[i]) + 65 for i in range(start, start + 120)]
    summaries = replay(engine_at(config, 0), instants)
    assert all(s.exit_code == 0 for s in summaries), [s.errors for s in summaries if s.errors]

    ledger = tmp_path / "ledger.db"
    rejected = rows(ledger, "SELECT signal_id FROM decisions WHERE reason = 'risk_max_positions_per_symbol_exceeded'")
    assert rejected, "expected at least one per-symbol rejection in this span"
    ids = tuple(r["signal_id"] for r in rejected)
    marks = ",".join("?" * len(ids))
    assert rows(ledger, f"SELECT * FROM orders WHERE signal_id IN ({marks})", ids) == []
    # and every approved signal has exactly one order on the single account
    approved = rows(ledger, "SELECT signal_id FROM decisions WHERE action = 'open'")
    per_signal = Counter(r["signal_id"] for r in rows(ledger, "SELECT signal_id FROM orders WHERE kind = 'open'"))
    assert approved and all(per_signal[a["signal_id"]] == 1 for a in approved)


def test_second_run_on_the_same_bars_creates_nothing(tmp_path, xau_csv):
    row = next(r for r in _golden() if r["strategy"] == "doji_breakout")
    config = write_config(tmp_path, xau_csv, accounts=(1, 2))
    now = just_after_close(row["bar_time"])
    first = engine_at(config, now).run_once()
    assert first.signals >= 1 and first.orders_created == 2 * first.decisions.get("open", 0)
    ledger = tmp_path / "ledger.db"
    counts = {t: rows(ledger, f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]
              for t in ("signals", "decisions", "orders", "positions", "fills")}
    second = engine_at(config, now + 20).run_once()
    assert second.signals == 0 and second.orders_created == 0 and second.decisions == {}
    assert second.duplicate_signals == first.signals
    assert counts == {t: rows(ledger, f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in counts}


def test_minute_by_minute_replay_of_a_day_matches_the_fast_path(tmp_path, xau_csv):
    config = write_config(tmp_path, xau_csv, auto_trade=False)
    bars, _ = read_bars(xau_csv)
    # The busier half of the day (79 signals of the day's 121, all four strategies, the daily
    # break): the property is per minute, so half the passes test the same thing.
    day_lo, day_hi = ts("2025-05-20 12:00:00"), ts("2025-05-21 00:00:00")
    idx = [i for i in range(99, len(bars)) if day_lo <= bars.time[i] < day_hi]
    assert len(idx) > 600
    summaries = replay(engine_at(config, 0), [float(bars.time[i]) + 60 + 3 for i in idx])
    assert all(s.exit_code == 0 for s in summaries)

    live = {(r["bar_ts"], r["strategy"], r["direction"]): r
            for r in rows(tmp_path / "ledger.db", "SELECT * FROM signals")}
    fast = {(s.bar_time, s.strategy, s.direction): s for s in scan_history(bars).signals
            if day_lo <= s.bar_time < day_hi}
    assert len(fast) > 50 and len({k[1] for k in fast}) == 4
    assert set(live) == set(fast)
    for k, s in fast.items():
        assert live[k]["sl"] == pytest.approx(s.sl, rel=1e-9)
        assert live[k]["tp"] == pytest.approx(s.tp, rel=1e-9)
        assert live[k]["score"] == pytest.approx(s.score, rel=1e-9)


def test_dry_run_records_nothing(tmp_path, xau_csv):
    row = next(r for r in _golden() if r["strategy"] == "trend_pullback")
    config = write_config(tmp_path, xau_csv)
    s = engine_at(config, just_after_close(row["bar_time"]), dry_run=True).run_once()
    assert s.dry_run and s.signals >= 1 and s.orders_created == 0
    assert not (tmp_path / "ledger.db").exists()
