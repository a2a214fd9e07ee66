"""The event-driven replay gives exactly what stepping through every bar gives (the per-bar
replay of tests/per_bar_replay.py, the backtester as it was): the same trades, stops, exits,
decisions, kill-switches and balance, over risk settings that make every rule act."""

from __future__ import annotations

import numpy as np
import pytest

from scalper.backtest import Setup, _round_prices, run_backtest
from scalper.config import RiskConfig
from scalper.core.exposure import kill_switch_reason, kill_switch_trips
from scalper.core.sim import bar_exit, exit_bars
from scalper.core.stops import stops_valid
from scalper.core.strategies import STRATEGY_NAMES, resolve_params
from scalper.core.upkeep import trailing_candidates, trailing_stop
from scalper.feeds.csvfile import read_bars
from scalper.settings import risk_rules
from scalper.symbols import spec_for
from tests.conftest import shared_file
from tests.per_bar_replay import per_bar_backtest

RISKS = [
    {},
    {"kill_switch_loss": 5.0},
    {"kill_switch_loss": 20.0, "max_per_symbol": 3, "max_concurrent": 3},
    {"daily_loss_limit": 10.0},
    {"daily_loss_limit": 30.0, "max_per_symbol": 2, "max_concurrent": 2},
    {"trailing": {"activate_r": 0.0, "distance_r": 0.3}},
    {"trailing": {"activate_r": 0.5, "distance_r": 0.5}, "kill_switch_loss": 8.0},
    {"trailing": {"enabled": False}},
    {"risk_percent": 1.0, "daily_loss_limit_pct": 1.0},
    {"kill_switch": False, "max_per_symbol": 4, "max_concurrent": 4},
    {"kill_switch_loss_pct": 0.1},
]


@pytest.fixture(scope="module", params=["XAUUSD", "BTCUSD"])
def market(request):
    bars, _ = read_bars(shared_file(f"{request.param}_M1.csv"))
    return request.param, bars


def _outcome(r):
    return (r.trades, dict(r.refused), {k: dict(c) for k, c in r.decisions.items()}, r.kill_switches, r.trailed,
            r.final_balance, r.bars, r.start, r.end)


@pytest.mark.slow
@pytest.mark.parametrize("risk", RISKS, ids=[str(r) for r in RISKS])
def test_event_driven_replay_equals_the_per_bar_replay(market, risk):
    symbol, bars = market
    setup = Setup(symbol=symbol, spec=spec_for(symbol), strategies=STRATEGY_NAMES,
                  params={n: resolve_params(n, None, 100) for n in STRATEGY_NAMES}, lookback=100,
                  qty=0.01 if symbol == "XAUUSD" else 0.1, rules=risk_rules(RiskConfig(**risk)), balance=10_000.0)
    for start, end in ((None, None), (float(bars.time[3000]), float(bars.time[9000]))):
        new = run_backtest(bars, setup, start=start, end=end)
        old = per_bar_backtest(bars, setup, start=start, end=end)
        assert _outcome(new) == _outcome(old)
        assert new.trades


def test_the_rules_vector_forms_agree_with_the_scalar_rules():
    rng = np.random.default_rng(7)
    n = 4000
    o, h, lo = 100 + rng.normal(0, 1, n), None, None
    h = o + rng.exponential(0.5, n)
    lo = o - rng.exponential(0.5, n)
    for direction in ("buy", "sell"):
        sl = 100 + rng.normal(0, 1.5, n)
        tp = 100 + rng.normal(0, 1.5, n)
        for k in range(0, n, 97):
            expect = bar_exit(direction, float(sl[k]), float(tp[k]), float(o[k]), float(h[k]), float(lo[k])) is not None
            assert exit_bars(direction, sl[k:k + 1], float(tp[k]), o[k:k + 1], h[k:k + 1], lo[k:k + 1])[0] == expect
        bid, ask = o - 0.1, o + 0.1
        got = stops_valid(direction, sl, tp, bid=bid, ask=ask, min_distance=0.05)
        assert got.tolist() == [stops_valid(direction, float(a), float(b), bid=float(c), ask=float(d),
                                            min_distance=0.05) for a, b, c, d in zip(sl, tp, bid, ask)]
        cand = trailing_candidates(direction, 100.0, 99.0 if direction == "buy" else 101.0, o, activate_r=0.5,
                                   distance_r=0.7)
        for k in range(0, n, 13):
            one = trailing_stop(direction, 100.0, 99.0 if direction == "buy" else 101.0, None, float(o[k]),
                                activate_r=0.5, distance_r=0.7)
            assert (one is None and np.isnan(cand[k])) or one == cand[k]
    prices = np.round(rng.uniform(1, 5000, 20000), 3) + 0.005   # many ties at 2 digits
    assert _round_prices(prices, 2).tolist() == [round(x, 2) for x in prices.tolist()]
    r = risk_rules(RiskConfig(kill_switch_loss=50.0, daily_loss_limit=80.0))
    u, d = rng.uniform(-120, 40, n), rng.uniform(-90, 30, n)
    got = kill_switch_trips(unrealized=u, realized_today=d, balance=10_000.0, rules=r)
    assert got.tolist() == [kill_switch_reason(unrealized=float(a), realized_today=float(b), balance=10_000.0,
                                               rules=r) is not None for a, b in zip(u, d)]


@pytest.mark.parametrize("name", ["XAUUSD", "BTCUSD"])
def test_a_history_ema_is_the_recurrence_bit_for_bit(name):
    from itertools import accumulate

    from scalper.core.indicators import LONG_SERIES, ema

    bars, _ = read_bars(shared_file(f"{name}_M1.csv"))
    assert len(bars) >= LONG_SERIES
    closes = bars.close.tolist()
    for period in (2, 9, 20, 21, 50, 100, 200, 2000):
        a = 2.0 / (period + 1)
        loop = list(accumulate(closes[1:], lambda e, c, a=a: a * c + (1.0 - a) * e, initial=closes[0]))
        assert ema(bars.close, period).tolist() == loop


@pytest.mark.parametrize("name", ["XAUUSD", "BTCUSD"])
def test_a_scan_in_parts_is_the_scan_in_one_pass(monkeypatch, name):
    from scalper.core import scan

    bars, _ = read_bars(shared_file(f"{name}_M1.csv"))
    whole = scan.scan_history(bars)
    monkeypatch.setattr(scan, "SEGMENT_WINDOWS", 997)
    parts = scan.scan_history(bars)
    assert parts.signals == whole.signals and parts.skips == whole.skips
    assert parts.evaluated == whole.evaluated == len(bars) - 99
