"""The replay's chain of one-position trades (`_Replay._chain`) and its decisions from precomputed
parts (`_Parts`: `risk.book_refusals`, `risk.quote_refusals`, `risk.reason_of`) give what the
per-bar replay gives, under risk settings that break the chain in each of its ways: the
kill-switch (on, off, tripping), daily loss limits, risk-percent sizing, a too-wide spread, no
balance left, a stop-out; and a book of more than one position (no chain)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scalper.backtest import Setup, _Replay, run_backtest
from scalper.config import RiskConfig
from scalper.core import risk
from scalper.core.scan import scan_history
from scalper.core.strategies import STRATEGY_NAMES, resolve_params
from scalper.feeds.csvfile import read_bars
from scalper.settings import risk_rules
from scalper.symbols import spec_for
from tests.conftest import shared_file
from tests.per_bar_replay import per_bar_backtest


@pytest.fixture(scope="module")
def gold():
    bars, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    return bars


@pytest.fixture(scope="module")
def btc():
    bars, _ = read_bars(shared_file("BTCUSD_M1.csv"))
    return bars


def _setup(symbol: str, risk_settings: dict, balance: float = 10_000.0, qty: float = 0.01,
           leverage: float = 100) -> Setup:
    return Setup(symbol=symbol, spec=spec_for(symbol), strategies=STRATEGY_NAMES,
                 params={n: resolve_params(n, None, 100) for n in STRATEGY_NAMES}, lookback=100, qty=qty,
                 rules=risk_rules(RiskConfig(**risk_settings)), balance=balance, leverage=leverage)


def _outcome(r):
    return (r.trades, dict(r.refused), {k: dict(c) for k, c in r.decisions.items()}, r.kill_switches, r.trailed,
            r.final_balance, r.bars, r.start, r.end)


def _reasons(result) -> set[str]:
    return {r for c in result.decisions.values() for r, n in c.items() if n}


# (risk settings, balance, qty, what the run must show)
GOLD = [
    ({}, 10_000.0, 0.01, {risk.MAX_PER_SYMBOL}),
    ({"kill_switch": False}, 10_000.0, 0.01, {risk.MAX_PER_SYMBOL}),
    ({"kill_switch_loss": 2.0}, 10_000.0, 0.01, {risk.KILL_SWITCH}),
    ({"daily_loss_limit": 8.0, "kill_switch": False}, 10_000.0, 0.01, {risk.DAILY_LOSS}),
    ({"daily_loss_limit_pct": 0.08}, 10_000.0, 0.01, {risk.KILL_SWITCH}),
    ({"risk_percent": 0.5}, 10_000.0, 0.01, {risk.MAX_PER_SYMBOL}),
    ({"risk_percent": 0.1}, 2_000.0, 0.01, {risk.MAX_PER_SYMBOL}),       # some orders below the minimum volume
    ({"max_concurrent": 1, "max_per_symbol": 3}, 10_000.0, 0.01, {risk.MAX_CONCURRENT}),
    ({"min_balance": 9_995.0, "kill_switch": False}, 10_000.0, 0.01, {risk.NO_BALANCE}),
    ({"max_per_symbol": 2, "max_concurrent": 3}, 10_000.0, 0.01, {risk.MAX_PER_SYMBOL}),   # no chain
    ({"decision_min_score": 0.6, "daily_loss_limit": 5.0}, 10_000.0, 0.01, {risk.LOW_SCORE}),
]


@pytest.mark.slow
@pytest.mark.parametrize("risk_settings, balance, qty, shown", GOLD, ids=[str(g[0]) for g in GOLD])
def test_the_chain_equals_the_per_bar_replay(gold, risk_settings, balance, qty, shown):
    setup = _setup("XAUUSD", risk_settings, balance, qty)
    for start, end in ((None, None), (float(gold.time[3000]), float(gold.time[9000]))):
        new = run_backtest(gold, setup, start=start, end=end)
        assert _outcome(new) == _outcome(per_bar_backtest(gold, setup, start=start, end=end))
    full = run_backtest(gold, setup)
    assert shown <= _reasons(full) and len(full.trades) > 20


def test_the_chain_runs_only_when_a_book_of_one_refuses_every_signal(gold):
    def parts(risk_settings):
        setup = _setup("XAUUSD", risk_settings)
        signals = scan_history(gold.slice(0, 3000), list(setup.strategies), setup.params, setup.lookback).signals
        return _Replay(gold.slice(0, 3000), setup, signals, None, None).fast
    assert parts({}).full == {True: True, False: True}
    assert parts({"max_concurrent": 1, "max_per_symbol": 2}).full == {True: True, False: True}
    assert parts({"max_per_symbol": 2, "max_concurrent": 3}).full == {True: False, False: False}


def test_sizing_below_the_minimum_is_refused_in_the_chain(gold):
    result = run_backtest(gold, _setup("XAUUSD", {"risk_percent": 0.1}, 2_000.0))
    assert result.refused[risk.VOLUME_BELOW_MIN] > 0 and len(result.trades) > 100


@pytest.mark.slow
def test_a_spread_too_wide_at_some_bars_equals_the_per_bar_replay(gold):
    # the gold file carries no spread column: every third bar's spread set wide
    wide = dataclasses.replace(gold, spread=np.where(np.arange(len(gold)) % 3 == 0, 30.0, 15.0))
    setup = _setup("XAUUSD", {"max_spread_points": 20.0})
    new = run_backtest(wide, setup)
    assert _outcome(new) == _outcome(per_bar_backtest(wide, setup))
    assert {risk.SPREAD, risk.MAX_PER_SYMBOL} <= _reasons(new) and len(new.trades) > 100


@pytest.mark.slow
@pytest.mark.parametrize("risk_settings", [{}, {"kill_switch": False}, {"daily_loss_limit": 50.0, "kill_switch": False}])
def test_a_stop_out_in_the_chain_equals_the_per_bar_replay(btc, risk_settings):
    # bitcoin on a small account at 1:2000: the broker stops a position out
    setup = _setup("BTCUSD", risk_settings, balance=600.0, qty=0.3, leverage=2000)
    new = run_backtest(btc, setup)
    assert _outcome(new) == _outcome(per_bar_backtest(btc, setup))
    if not risk_settings:
        assert new.kill_switches
    elif "daily_loss_limit" in risk_settings:
        assert risk.DAILY_LOSS in _reasons(new)
    else:
        assert any(t.exit_reason == "stop_out" for t in new.trades)


# --- the chain's routine steps taken without objects (`_Replay._leap`) -------------------------------
def _leaping(monkeypatch) -> list[int]:
    """Trades each _leap call closed, recorded while the replay runs."""
    closed: list[int] = []
    leap = _Replay._leap

    def counting(self, leaps, i, next_signal):
        before = len(self.trade_log)
        out = leap(self, leaps, i, next_signal)
        closed.append(len(self.trade_log) - before)
        return out
    monkeypatch.setattr(_Replay, "_leap", counting)
    return closed


def _without_leaps(monkeypatch, bars, setup, **span):
    with monkeypatch.context() as m:
        m.setattr(_Replay, "LEAP", False)
        return run_backtest(bars, setup, **span)


def _replayed(bars, setup, leap: bool, start=None, end=None):
    """The outcome of a replay, its realized P&L by day (bit for bit) and every progress call."""
    calls: list[tuple[int, int]] = []
    signals = scan_history(bars, list(setup.strategies), setup.params, setup.lookback).signals
    replay = _Replay(bars, setup, signals, start, end)
    replay.LEAP = leap
    result = replay.run(lambda done, total: calls.append((done, total)))
    realized = sorted((day, value.hex()) for day, value in replay.realized_by_day.items())
    return _outcome(result), realized, calls


def test_the_default_chain_is_taken_by_leaps_and_gives_what_the_chain_gave(gold, monkeypatch):
    closed = _leaping(monkeypatch)
    setup = _setup("XAUUSD", {})
    result = run_backtest(gold, setup)
    # nearly every trade of the default setup is a routine step; the kill-switch's bound stops some
    assert sum(closed) > 0.9 * len(result.trades) and len(result.trades) > 500
    assert _outcome(result) == _outcome(_without_leaps(monkeypatch, gold, setup))


@pytest.mark.slow
@pytest.mark.parametrize("symbol, risk_settings, balance, qty, leverage", [
    *(("XAUUSD", g[0], g[1], g[2], 100) for g in GOLD),
    ("BTCUSD", {}, 600.0, 0.3, 2000),                                   # the kill-switch trips
    ("BTCUSD", {"kill_switch": False}, 600.0, 0.3, 2000),               # a stop-out
    ("BTCUSD", {"kill_switch": False}, 60.0, 0.01, 1),                  # the margin refuses orders
    ("BTCUSD", {"daily_loss_limit": 50.0, "kill_switch": False}, 600.0, 0.3, 2000),
    ("BTCUSD", {"min_balance": 550.0, "kill_switch": False}, 600.0, 0.3, 2000),   # no balance after an exit
    ("BTCUSD", {"min_balance": 550.0}, 600.0, 0.3, 2000),
], ids=str)
def test_leaps_give_what_the_chain_gives_step_by_step(gold, btc, monkeypatch, symbol, risk_settings, balance, qty,
                                                      leverage):
    bars = gold if symbol == "XAUUSD" else btc
    setup = _setup(symbol, risk_settings, balance, qty, leverage)
    for span in ({}, {"start": float(bars.time[3000]), "end": float(bars.time[9000])},
                 {"start": float(bars.time[len(bars) // 3]), "end": float(bars.time[len(bars) // 3 + 777])}):
        assert _replayed(bars, setup, True, **span) == _replayed(bars, setup, False, **span)


def test_a_leap_stops_where_the_chain_stops_when_the_balance_runs_out(btc):
    # the chain checks the balance first at an exit bar; a leap reporting progress there before it
    # found the balance too small made one progress call the chain never makes
    setup = _setup("BTCUSD", {"min_balance": 550.0, "kill_switch": False}, 600.0, 0.3, 2000)
    span = {"start": float(btc.time[len(btc) // 3]), "end": float(btc.time[len(btc) // 3 + 777])}
    leapt, chained = _replayed(btc, setup, True, **span), _replayed(btc, setup, False, **span)
    assert leapt == chained
    assert risk.NO_BALANCE in {r for c in leapt[0][2].values() for r in c}
