"""The backtester on the real gold bars: the fill model, the risk rules, the
kill-switch, its outputs, and its agreement with the engine replayed minute by minute."""

from __future__ import annotations

import csv
import sqlite3
from collections import Counter

import numpy as np
import pytest

from scalper.backtest import DECISION_DELAY_S, INVALID_STOPS, NO_MONEY, Setup, run_backtest
from scalper.clock import bar_iso, iso
from scalper.config import RiskConfig, load_config
from scalper.core.bars import BAR_SECONDS
from scalper.core.exposure import build_exposure, day_start, kill_switch_reason
from scalper.core.scan import scan_history
from scalper.core.sizing import size_order
from scalper.core.stops import stops_valid
from scalper.core.strategies import STRATEGY_NAMES, resolve_params
from scalper.feeds.csvfile import read_bars
from scalper.services.backtest import summarize
from scalper.settings import risk_rules
from scalper.symbols import spec_for
from scalper.vocab import TradeRetcode
from tests.clikit import cli
from tests.conftest import shared_file
from tests.enginekit import ts, write_config

HALF_SPREAD = 0.10          # XAUUSD: no spread column, a typical 20 points of 0.01


@pytest.fixture(scope="module")
def bars():
    history, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    return history


def gold(**risk) -> Setup:
    return Setup(symbol="XAUUSD", spec=spec_for("XAUUSD"), strategies=STRATEGY_NAMES,
                 params={n: resolve_params(n, None, 100) for n in STRATEGY_NAMES}, lookback=100, qty=0.01,
                 rules=risk_rules(RiskConfig(**risk)), balance=10_000.0)


@pytest.fixture(scope="module")
def default_run(bars):
    return run_backtest(bars, gold())


# --- the shared rules -------------------------------------------------------------------
def test_exposure_counts_the_worst_account_and_the_correlated_symbols():
    items = [(1, "XAUUSD", "buy"), (1, "EURUSD", "sell"), (2, "XAUUSD", "buy"), (2, "XAUUSD", "buy"),
             (2, "XAGUSD.a", "sell")]
    e = build_exposure(items, symbol="XAUUSD", group_symbols=["XAUUSD", "XAGUSD"], balance=900.0,
                       pnl_today=-12.5, spread_points=18.0)
    assert (e.open_total, e.open_on_symbol) == (3, 2)
    assert e.directions_on_symbol == {"buy"} and e.group_directions == {"sell"}
    assert (e.balance, e.pnl_today, e.spread_points, e.kill_switch_engaged) == (900.0, -12.5, 18.0, False)
    assert build_exposure([], symbol="XAUUSD", balance=1.0, pnl_today=0.0, spread_points=None).open_total == 0


def test_kill_switch_reason_checks_the_floating_loss_then_the_day():
    r = risk_rules(RiskConfig(kill_switch_loss=50.0, daily_loss_limit=80.0))
    assert kill_switch_reason(unrealized=-60, realized_today=0, balance=10_000, rules=r)[0] == "unrealized_loss"
    assert kill_switch_reason(unrealized=-40, realized_today=-45, balance=10_000, rules=r)[0] == "daily_loss"
    assert kill_switch_reason(unrealized=-40, realized_today=-30, balance=10_000, rules=r) is None
    assert day_start(ts("2025-05-20 23:59:59")) == ts("2025-05-20 00:00:00")


def test_stops_must_sit_on_their_side_of_the_price():
    assert stops_valid("buy", 99.0, 102.0, bid=100.0, ask=100.2)
    assert not stops_valid("buy", 100.5, 102.0, bid=100.0, ask=100.2)        # SL above the bid
    assert not stops_valid("sell", 101.0, 100.3, bid=100.0, ask=100.2)       # TP above the ask
    assert not stops_valid("buy", 99.0, 100.05, bid=100.0, ask=100.2, min_distance=0.1)
    assert stops_valid("sell", None, None, bid=100.0, ask=100.2)


# --- the replay -----------------------------------------------------------------------------
def test_the_replay_is_deterministic(bars, default_run):
    again = run_backtest(bars, gold())
    assert again.trades == default_run.trades and again.decisions == default_run.decisions
    assert len(default_run.trades) > 500


def test_per_strategy_figures_add_up_to_the_totals(default_run):
    doc = summarize(default_run)
    rows, totals = doc["per_strategy"].values(), doc["totals"]
    for key in ("signals", "approved", "rejected_total", "trades", "wins", "losses"):
        assert sum(r[key] for r in rows) == totals[key], key
    assert sum(r["net_pnl"] for r in rows) == pytest.approx(totals["net_pnl"], abs=1e-9)
    assert totals["signals"] == totals["approved"] + totals["rejected_total"] == 1_713
    # every approved signal became a trade, unless the broker refused its stops
    assert totals["approved"] == totals["trades"] + sum(doc["broker_refused"].values())
    assert doc["final_balance"] == pytest.approx(doc["start_balance"] + totals["net_pnl"])


def test_every_trade_follows_the_fill_model(bars):
    """Recomputed by hand from the bars, with trailing off so that the SL stays put."""
    result = run_backtest(bars, gold(trailing={"enabled": False}))
    t_, o, h, lo = bars.time, bars.open, bars.high, bars.low
    checked = Counter()
    for trade in result.trades:
        if trade.exit_reason == "end":
            continue
        signal_bar = int(np.searchsorted(t_, trade.signal_time))
        first = signal_bar + 1
        assert trade.entry_time == t_[signal_bar] + BAR_SECONDS + DECISION_DELAY_S
        if t_[first] == t_[signal_bar] + BAR_SECONDS:       # the next bar starts at the decision
            mid = o[first]
        else:                                                 # a gap: the last close is the price
            mid = bars.close[signal_bar]
        buy = trade.direction == "buy"
        assert trade.entry == pytest.approx(mid + HALF_SPREAD if buy else mid - HALF_SPREAD, abs=1e-9)
        sl, tp = trade.sl, trade.tp
        assert trade.final_sl == sl
        for k in range(first, len(bars)):
            if buy:
                hit = ((o[k], "sl") if o[k] <= sl else (o[k], "tp") if o[k] >= tp else
                       (sl, "sl") if lo[k] <= sl else (tp, "tp") if h[k] >= tp else None)
            else:
                hit = ((o[k], "sl") if o[k] >= sl else (o[k], "tp") if o[k] <= tp else
                       (sl, "sl") if h[k] >= sl else (tp, "tp") if lo[k] <= tp else None)
            if hit:
                break
        assert (trade.exit, trade.exit_reason) == (hit[0], hit[1])
        assert trade.exit_time == max(t_[k], trade.entry_time)
        sign = 1 if buy else -1
        assert trade.pnl == pytest.approx(sign * (trade.exit - trade.entry) * trade.volume * 100, abs=1e-9)
        checked[hit[1]] += 1
    assert checked["sl"] > 100 and checked["tp"] > 100


def test_trailing_stops_move_and_exits_use_them(default_run):
    trailed = [t for t in default_run.trades if t.final_sl != t.sl]
    assert len(trailed) > 20
    for t in trailed:
        assert (t.final_sl > t.sl) if t.direction == "buy" else (t.final_sl < t.sl)   # toward profit only
        if t.exit_reason == "sl":
            assert t.exit == t.final_sl or (t.exit < t.final_sl if t.direction == "buy" else t.exit > t.final_sl)


@pytest.mark.parametrize("per_symbol, concurrent", [(1, 2), (2, 3)])
def test_never_more_positions_than_the_limits(bars, per_symbol, concurrent):
    result = run_backtest(bars, gold(max_per_symbol=per_symbol, max_concurrent=concurrent))
    t_ = bars.time
    # The bar at whose decisions each trade opened, and the last bar at whose decisions it was still open.
    opened, last_open = [], []
    for trade in result.trades:
        opened.append(int(np.searchsorted(t_, trade.signal_time)))
        if trade.exit_reason in ("sl", "tp"):
            last_open.append(int(np.searchsorted(t_, trade.exit_time, side="right")) - 2)
        else:   # closed after the decisions of the bar it was closed at
            last_open.append(int(np.searchsorted(t_, trade.exit_time - BAR_SECONDS - DECISION_DELAY_S)))
    peak = 0
    for j in sorted(set(opened)):
        open_then = sum(1 for a, b in zip(opened, last_open) if a < j <= b) + opened.count(j)
        peak = max(peak, open_then)
        assert open_then <= per_symbol
    assert peak == per_symbol
    rejected = Counter()
    for counts in result.decisions.values():
        rejected.update(counts)
    assert rejected["risk_max_positions_per_symbol_exceeded"] > 0


def test_the_kill_switch_closes_at_the_quote_and_rearms_the_next_day(bars):
    result = run_backtest(bars, gold(kill_switch_loss=2.0))
    assert len(result.kill_switches) >= 3
    latest = {int(t): p for t, p in zip(bars.time, np.where(np.diff(bars.time, append=0) == BAR_SECONDS,
                                                            np.roll(bars.open, -1), bars.close))}
    for event in result.kill_switches:
        closed = [t for t in result.trades if t.exit_reason == "kill_switch" and t.exit_time == event.time]
        assert len(closed) == event.positions_closed >= 1 and event.source == "unrealized_loss"
        bar = int(event.time - BAR_SECONDS - DECISION_DELAY_S)
        for t in closed:
            assert t.exit == pytest.approx(latest[bar] - HALF_SPREAD if t.direction == "buy"
                                           else latest[bar] + HALF_SPREAD)
        # halted: nothing opens again before the next UTC midnight
        midnight = day_start(event.time) + 86_400
        assert not [t for t in result.trades if event.time < t.entry_time < midnight]
    halted = sum(c["risk_kill_switch_engaged"] for c in result.decisions.values())
    assert halted > 0


def realized_before(trades, now: float, since: float = float("-inf")) -> float:
    """P&L of the trades closed in [since, now): what the book had booked when deciding at `now`."""
    return sum(t.pnl for t in trades if since <= t.exit_time < now)


def test_a_daily_loss_limit_stops_entries_for_the_day(bars):
    result = run_backtest(bars, gold(daily_loss_limit=8.0, kill_switch=False))
    assert sum(c["risk_daily_loss_limit_reached"] for c in result.decisions.values()) > 0
    # One position per symbol: nothing else is open when one opens, so today's P&L is what was realized.
    for t in result.trades:
        assert realized_before(result.trades, t.entry_time, day_start(t.entry_time)) > -8.0


def test_risk_percent_sizes_from_the_balance_at_the_decision(bars):
    result = run_backtest(bars, gold(risk_percent=0.5))
    signals = {(s.bar_time, s.strategy): s for s in scan_history(bars).signals}
    for trade in result.trades:
        balance = 10_000.0 + realized_before(result.trades, trade.entry_time)
        assert trade.volume == size_order(qty=0.01, spec=spec_for("XAUUSD"), risk_percent=0.5, balance=balance,
                                          risk_per_unit=signals[trade.signal_time, trade.strategy].risk).volume
    assert len({t.volume for t in result.trades}) > 5


def test_from_and_to_bound_the_replay(bars):
    lo, hi = ts("2025-05-20 00:00:00"), ts("2025-05-21 00:00:00")
    result = run_backtest(bars, gold(), start=lo, end=hi)
    assert result.start == ts("2025-05-20 01:00:00") and result.end <= hi
    assert result.signals and all(lo <= s.bar_time <= hi for s in result.signals)
    assert all(lo < t.entry_time and t.exit_time <= hi + BAR_SECONDS + DECISION_DELAY_S for t in result.trades)
    nothing = run_backtest(bars, gold(), start=hi, end=lo)
    assert nothing.bars == 0 and nothing.trades == [] and nothing.signals == []


# --- the command ------------------------------------------------------------------------------
def test_signals_out_is_exactly_what_scan_writes(tmp_path, capsys, xau_csv):
    window = ("--from", "2025-05-19 12:00", "--to", "2025-05-27")
    bt = cli(capsys, "backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--signals-out",
             str(tmp_path / "bt.csv"), *window, "--json")
    assert bt.code == 0, bt.err
    sc = cli(capsys, "scan", "--data", str(xau_csv), "--out", str(tmp_path / "scan.csv"), *window)
    assert sc.code == 0, sc.err
    assert (tmp_path / "bt.csv").read_bytes() == (tmp_path / "scan.csv").read_bytes()
    assert bt.json()["totals"]["signals"] == len((tmp_path / "scan.csv").read_text().splitlines()) - 1


def test_cli_json_trades_csv_and_chart(tmp_path, capsys, xau_csv):
    trades, chart = tmp_path / "out" / "trades.csv", tmp_path / "out" / "bt.png"
    (tmp_path / "out").mkdir()           # a missing folder is an error (tests/test_ux_outputs.py)
    r = cli(capsys, "backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--trades-out", str(trades),
            "--chart", str(chart), "--json")
    assert r.code == 0, r.err
    doc = r.json()                       # stdout holds the JSON document and nothing else
    assert doc["bars"] == 19_901 and doc["totals"]["trades"] > 500 and "trades" not in doc
    assert set(doc["per_strategy"]) == set(STRATEGY_NAMES)
    with open(trades, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == doc["totals"]["trades"]
    assert list(rows[0]) == ["signal_time", "entry_time", "exit_time", "strategy", "direction", "volume", "entry",
                             "exit", "sl", "tp", "final_sl", "exit_reason", "pnl"]
    assert sum(float(x["pnl"]) for x in rows) == pytest.approx(doc["totals"]["net_pnl"], abs=1e-6)
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_cli_human_output_and_bad_input(capsys, xau_csv):
    r = cli(capsys, "backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--strategies", "doji_breakout",
            "--from", "2025-05-20", "--to", "2025-05-21")
    assert r.code == 0, r.err
    assert "doji_breakout" in r.out and "profit factor" in r.out and "trend_pullback" not in r.out
    for args in (["--bot", "gold", "--symbol", "XAUUSD"], [], ["--symbol", "XAUUSD", "--strategies", "nope"],
                 ["--symbol", "XAUUSD", "--from", "soon"]):
        bad = cli(capsys, "backtest", "--data", str(xau_csv), *args)
        assert bad.code == 2, (args, bad.err)


def test_a_bot_brings_its_own_settings(tmp_path, capsys, xau_csv):
    config = write_config(tmp_path, xau_csv, strategies=["doji_breakout", "trend_pullback"],
                          risk={"max_per_symbol": 2, "max_concurrent": 2, "trailing": {"enabled": False}})
    r = cli(capsys, "backtest", "--data", str(xau_csv), "--bot", "gold", "--config", str(config), "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["bot"] == "gold" and doc["symbol"] == "XAUUSDm"
    assert doc["strategies"] == ["doji_breakout", "trend_pullback"] and doc["trailing_stop_moves"] == 0
    assert doc["start_balance"] == 10_000 and {t["volume"] for t in doc["trades"]} == {0.01}
    missing = cli(capsys, "backtest", "--data", str(xau_csv), "--bot", "silver", "--config", str(config))
    assert missing.code == 2 and "gold" in missing.err


# --- agreement with the engine -----------------------------------------------------------------
PARITY_SPANS = [
    # across the daily break and midnight, default risk settings (trailing on, kill-switch at 5%)
    pytest.param("2025-05-19 21:00:00", 300, {}, 10_000.0, id="gap-and-midnight"),
    # a tight trailing stop, and a kill-switch that trips on a floating loss
    pytest.param("2025-05-21 08:00:00", 360, {"kill_switch_loss": 3.0,
                                              "trailing": {"activate_r": 0.5, "distance_r": 0.5}}, 10_000.0,
                 id="trailing-and-unrealized-loss"),
    # two positions at a time, and the daily loss limit tripping the kill-switch with both open
    pytest.param("2025-05-27 08:00:00", 360, {"daily_loss_limit": 4.0, "max_per_symbol": 2}, 10_000.0,
                 id="two-at-a-time-and-daily-loss"),
    # sizing from the balance: an order decided on the bar where another position stopped out is
    # sized from the balance after that loss (22:53:05 on 2025-05-19: 0.74 lot), live and backtest alike
    pytest.param("2025-05-19 21:00:00", 300, {"risk_percent": 1.0}, 10_000.0, id="risk-percent-sizing"),
    # a 50 USD account: one 0.01 lot of gold (~33 USD of margin at 1:100) fits, a second one does
    # not while the first is open: the paper broker answers NO_MONEY, the backtest counts it
    pytest.param("2025-05-27 08:00:00", 360, {"max_per_symbol": 2, "kill_switch": False}, 50.0,
                 id="no-money-for-a-second-position"),
]


@pytest.mark.slow
@pytest.mark.parametrize("first_bar, count, risk, balance", PARITY_SPANS)
def test_backtest_agrees_with_the_engine_replayed_minute_by_minute(replayed_span, bars, first_bar, count, risk,
                                                                   balance):
    # the engine's replay (5 s after each close, as DECISION_DELAY_S), shared read-only with test_report
    assert DECISION_DELAY_S == 5
    config = replayed_span(first_bar, count, risk, balance)
    start = bars.index_of(int(ts(first_bar)))
    span = range(start, start + count)

    cfg = load_config(config)
    bot = cfg.bot("gold")
    setup = Setup(symbol=bot.symbol, spec=spec_for(bot.symbol), strategies=tuple(bot.strategies),
                  params={n: bot.params_for(n) for n in bot.strategies}, lookback=bot.lookback, qty=cfg.qty_of(bot),
                  rules=risk_rules(bot.risk), balance=balance)
    result = run_backtest(bars, setup, start=float(bars.time[span[0]]), end=float(bars.time[span[-1]]))

    db = sqlite3.connect(f"file:{config.parent / 'ledger.db'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    positions = [dict(r) for r in db.execute("SELECT * FROM positions ORDER BY opened_at, id")]
    engine_decisions = dict(db.execute("SELECT reason, COUNT(*) FROM decisions GROUP BY reason").fetchall())
    backtest_decisions = Counter()
    for counts in result.decisions.values():
        backtest_decisions.update(counts)
    assert engine_decisions == dict(backtest_decisions)

    trades = sorted(result.trades, key=lambda t: (t.entry_time, STRATEGY_NAMES.index(t.strategy)))
    assert len(positions) == len(trades) >= 10
    engine_reason = {"sl": "sl", "tp": "tp", "kill_switch": "expert", "stop_out": "so"}
    for p, t in zip(positions, trades):
        assert (p["opened_at"], p["strategy"], p["side"]) == (iso(t.entry_time), t.strategy, t.direction)
        assert (p["price_open"], p["volume"]) == (pytest.approx(t.entry, abs=1e-9), t.volume)
        if t.exit_reason == "end":          # still open when the replay stopped
            assert p["status"] == "open"
            continue
        assert p["status"] == "closed"
        assert (p["close_reason"], p["closed_at"]) == (engine_reason[t.exit_reason], iso(t.exit_time))
        assert p["close_price"] == pytest.approx(t.exit, abs=1e-9)
        assert p["profit"] == pytest.approx(t.pnl, abs=1e-9)
    engaged = [tuple(r) for r in db.execute("SELECT source, reason FROM kill_switches WHERE engaged = 1")]
    db.close()
    assert engaged == [(k.source, k.reason) for k in result.kill_switches]
    assert bar_iso(result.start) == first_bar
    books = sqlite3.connect(f"file:{config.parent / 'paper.db'}?mode=ro", uri=True)
    refused = dict(books.execute("SELECT code, COUNT(*) FROM orders WHERE state = 'rejected' GROUP BY code"))
    books.close()
    codes = {INVALID_STOPS: TradeRetcode.INVALID_STOPS, NO_MONEY: TradeRetcode.NO_MONEY}
    assert refused == {codes[reason]: n for reason, n in result.refused.items()}
    if balance < 10_000:
        assert result.refused[NO_MONEY] >= 5
