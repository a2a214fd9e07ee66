"""The simulated exchange (scalper.core.sim): its rules, their vector forms against the scalar
ones, and the margin rules as the backtest and the paper broker apply them — an order the free
margin cannot hold is refused (MT5's NO_MONEY), a book whose equity falls to zero is stopped
out, and a broke account trades no more."""

from __future__ import annotations

import sqlite3
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.backtest import NO_MONEY, STOP_OUT_EXIT, Setup, run_backtest
from scalper.brokers.base import OrderRequest
from scalper.brokers.paper import PaperBroker
from scalper.clock import FixedClock, parse_instant
from scalper.config import RiskConfig
from scalper.core import sim
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.core.risk import NO_BALANCE
from scalper.core.strategies import STRATEGY_NAMES, resolve_params
from scalper.feeds.csvfile import read_bars
from scalper.symbols import spec_for
from scalper.vocab import TradeRetcode
from tests.conftest import shared_file
from tests.fakes.memory_feed import MemoryFeed
from tests.per_bar_replay import per_bar_backtest

T0 = parse_instant("2025-06-02T10:00:00Z")


# --- the rules -----------------------------------------------------------------------------
@st.composite
def gappy_bars(draw) -> Bars:
    """Bars with gaps of random length (whole minutes) and random spreads, some missing."""
    steps = draw(st.lists(st.integers(1, 4), min_size=1, max_size=40))
    times = T0 + BAR_SECONDS * np.cumsum([0, *steps[1:]])
    n = len(times)
    prices = np.array(draw(st.lists(st.floats(1000, 3000), min_size=n, max_size=n)))
    spreads = draw(st.lists(st.one_of(st.just(np.nan), st.floats(0, 80)), min_size=n, max_size=n))
    return Bars.from_arrays(times, prices, prices + 1, prices - 1, prices + 0.5, spread=spreads)


@settings(max_examples=200, deadline=None)
@given(gappy_bars(), st.integers(0, 59))
def test_the_latest_price_and_spread_after_each_close_are_the_scalar_rules(bars, delay):
    latest = sim.latest_after_close(bars)
    spreads = sim.spreads_after_close(bars, 20.0)
    for i in range(len(bars)):
        now = float(bars.time[i]) + BAR_SECONDS + delay
        assert latest[i] == sim.latest_price(bars, now)
        assert spreads[i] == sim.spread_points(bars.closed_at(now), 20.0)
    assert sim.latest_price(bars, float(bars.time[0]) - 1) is None
    assert sim.latest_price(bars, float(bars.time[0])) == bars.open[0]            # the first bar forming
    assert sim.latest_price(bars, float(bars.time[-1]) + 3600) == bars.close[-1]   # long after the last


def test_quote_sides_exit_time_and_no_change():
    bid, ask = sim.quote(2000.0, 20.0, 0.01)
    assert (bid, ask) == pytest.approx((1999.9, 2000.1))
    assert (sim.fill_price("buy", bid, ask), sim.close_price("buy", bid, ask)) == (ask, bid)
    assert (sim.fill_price("sell", bid, ask), sim.close_price("sell", bid, ask)) == (bid, ask)
    arrays = sim.quote(np.array([2000.0, 2001.0]), np.array([20.0, 40.0]), 0.01)
    assert [a.tolist() for a in arrays] == [[1999.9, 2000.8], [2000.1, 2001.2]]
    assert sim.exit_time(T0, T0 + 25) == T0 + 25 and sim.exit_time(T0 + 60, T0 + 25) == T0 + 60
    assert sim.same_level(1998.0, 1998.004, 0.01) and not sim.same_level(1998.0, 1998.005, 0.01)
    assert sim.same_level(None, None, 0.01) and not sim.same_level(None, 1998.0, 0.01)


def test_first_exit_is_bar_exit_walked_from_the_fill():
    bars = Bars.from_arrays([T0, T0 + 60, T0 + 120], [2000.0, 2000.5, 1997.0], [2000.8, 2001.0, 1997.5],
                            [1999.5, 1999.9, 1996.0], [2000.5, 2000.0, 1996.5])
    assert sim.first_exit("buy", 1999.0, 2003.0, bars, T0 + 25) == sim.Exit(2, 1997.0, "sl", T0 + 120)   # gap
    assert sim.first_exit("buy", 1999.6, None, bars, T0 + 25) == sim.Exit(0, 1999.6, "sl", T0 + 25)    # its own bar
    assert sim.first_exit("sell", None, 1999.95, bars, T0) == sim.Exit(0, 1999.95, "tp", T0)
    assert sim.first_exit("buy", 1990.0, 2010.0, bars, T0) is None


def test_margin_free_margin_and_stop_out():
    held = sim.margin(2000.0, 0.4, 100, 100)
    assert held == pytest.approx(800.0)
    equity = sim.equity(1000.0, [sim.profit("buy", 2000.0, 1995.0, 0.4, 100)])
    assert equity == pytest.approx(800.0)
    free = sim.free_margin(equity, [held])
    assert free == pytest.approx(0.0)
    assert sim.no_money(0.01, free) and not sim.no_money(free, free)
    assert sim.stopped_out(0.0) and sim.stopped_out(-1.0) and not sim.stopped_out(0.01)
    assert sim.stopped_out(np.array([1.0, 0.0, -2.0])).tolist() == [False, True, True]


# --- the backtest --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def markets():
    return {name: read_bars(shared_file(f"{name}_M1.csv"))[0] for name in ("XAUUSD", "BTCUSD")}


def _setup(symbol: str, *, balance: float, qty: float, leverage: float, **risk) -> Setup:
    return Setup(symbol=symbol, spec=spec_for(symbol), strategies=STRATEGY_NAMES,
                 params={n: resolve_params(n, None, 100) for n in STRATEGY_NAMES}, lookback=100, qty=qty,
                 risk=RiskConfig(**risk), balance=balance, leverage=leverage)


def _approved(result) -> int:
    return sum(c["open"] for c in result.decisions.values())


def test_an_account_that_cannot_margin_one_order_trades_nothing(markets):
    # 0.01 lot of gold near 3,300 needs ~33 of margin at 1:100; 30 cannot hold it, 1:200 can
    poor = run_backtest(markets["XAUUSD"], _setup("XAUUSD", balance=30.0, qty=0.01, leverage=100))
    assert poor.trades == [] and poor.final_balance == 30.0
    assert poor.refused == Counter({NO_MONEY: _approved(poor)}) and _approved(poor) > 100
    levered = run_backtest(markets["XAUUSD"], _setup("XAUUSD", balance=30.0, qty=0.01, leverage=200))
    assert levered.trades and levered.refused[NO_MONEY] < _approved(levered)


def test_a_book_whose_equity_falls_to_zero_is_stopped_out_and_trades_no_more(markets):
    # 0.5 BTC on a 100 account at 1:2000: a move of 200 against it wipes the account out
    setup = _setup("BTCUSD", balance=100.0, qty=0.5, leverage=2000, kill_switch=False, max_per_symbol=2,
                   max_concurrent=2)
    result = run_backtest(markets["BTCUSD"], setup)
    [out] = [t for t in result.trades if t.exit_reason == STOP_OUT_EXIT]
    assert out.pnl <= -100.0 + sum(t.pnl for t in result.trades if t.exit_time < out.exit_time)
    bars = markets["BTCUSD"]
    i = bars.index_of(int(out.exit_time) - BAR_SECONDS - 5)      # the pass that stopped it out
    bid, ask = sim.quote(sim.latest_after_close(bars)[i], sim.spreads_after_close(bars, 1500)[i], 0.01)
    assert out.exit == sim.close_price(out.direction, bid, ask)
    assert all(t.entry_time < out.exit_time for t in result.trades)     # nothing after
    assert result.final_balance <= 0.0
    refused_after = sum(c[NO_BALANCE] for c in result.decisions.values()) + result.refused[NO_MONEY]
    assert refused_after > 1000


MARGIN_SETUPS = [
    ("XAUUSD", dict(balance=50.0, qty=0.01, leverage=100, max_per_symbol=2, max_concurrent=2, kill_switch=False)),
    ("XAUUSD", dict(balance=300.0, qty=0.1, leverage=500, max_per_symbol=3, max_concurrent=3, kill_switch=False)),
    ("XAUUSD", dict(balance=100.0, qty=0.3, leverage=1000, kill_switch_loss_pct=60.0,
                    trailing={"enabled": False})),
    ("BTCUSD", dict(balance=500.0, qty=0.5, leverage=100, risk_percent=5.0, kill_switch=False, max_per_symbol=3,
                    max_concurrent=3)),
    ("BTCUSD", dict(balance=100.0, qty=0.5, leverage=2000, kill_switch=False, max_per_symbol=2, max_concurrent=2)),
    ("BTCUSD", dict(balance=1000.0, qty=5.0, leverage=1000, kill_switch_loss_pct=90.0, max_per_symbol=3,
                    max_concurrent=3)),
]


@pytest.mark.parametrize("symbol, settings_", MARGIN_SETUPS, ids=[f"{s}-{k}" for s, k in MARGIN_SETUPS])
def test_margin_and_stop_out_in_the_event_driven_replay_equal_the_per_bar_replay(markets, symbol, settings_):
    setup = _setup(symbol, **settings_)
    bars = markets[symbol]
    new, old = run_backtest(bars, setup), per_bar_backtest(bars, setup)
    assert (new.trades, new.refused, new.decisions, new.kill_switches, new.trailed, new.final_balance) == \
        (old.trades, old.refused, old.decisions, old.kill_switches, old.trailed, old.final_balance)
    assert new.refused[NO_MONEY] or any(t.exit_reason == STOP_OUT_EXIT for t in new.trades)


# --- the paper broker ----------------------------------------------------------------------
def _paper(tmp_path, bars: Bars, now: float, balance: float) -> tuple[PaperBroker, FixedClock]:
    clock = FixedClock(now)
    broker = PaperBroker(tmp_path / "paper.db", "demo", MemoryFeed({"XAUUSD": bars}), clock, spec_for,
                         initial_balance=balance)
    broker.connect()
    return broker, clock


def _buy(volume: float, cid: str = "cid-1") -> OrderRequest:
    return OrderRequest(cid, "XAUUSD", "buy", volume, magic=7)


def test_the_paper_broker_refuses_exactly_what_the_free_margin_cannot_hold(tmp_path):
    bars = Bars.from_arrays([T0, T0 + 60], [2000.0, 2000.0], [2000.5, 2000.5], [1999.5, 1999.5], [2000.0, 2000.0])
    broker, _ = _paper(tmp_path, bars, T0 + 10, balance=1_000.0)
    # a buy fills at 2000.10: 0.49 lot holds 980.05 of margin, 0.50 would hold 1000.05
    assert broker.send_order(_buy(0.50)).code == TradeRetcode.NO_MONEY
    filled = broker.send_order(_buy(0.49, "cid-2"))
    assert filled.code == TradeRetcode.DONE
    info = broker.account_info()
    assert info.margin_free == pytest.approx(info.equity - sim.margin(filled.price, 0.49, 100, sim.DEFAULT_LEVERAGE))
    assert broker.send_order(_buy(0.01, "cid-3")).code == TradeRetcode.NO_MONEY
    refused = broker.find_order("cid-3", 7, since=T0)
    assert (refused.state, refused.deals) == ("rejected", ())


def test_the_paper_broker_stops_out_a_book_whose_equity_falls_to_zero(tmp_path):
    # 0.4 lot of gold: 40 per dollar; the third bar opens 30 below the fill, past the 1,000 balance
    bars = Bars.from_arrays([T0, T0 + 60, T0 + 120, T0 + 180], [2000.0, 1995.0, 1970.0, 1969.0],
                            [2000.5, 1995.5, 1970.5, 1969.5], [1994.0, 1990.0, 1968.0, 1968.0],
                            [1995.0, 1990.0, 1969.0, 1969.0])
    broker, clock = _paper(tmp_path, bars, T0 + 10, balance=1_000.0)
    opened = broker.send_order(_buy(0.4))
    assert opened.code == TradeRetcode.DONE
    clock.instant = T0 + 65
    broker.sync()
    assert len(broker.positions()) == 1          # a loss, equity still above zero
    clock.instant = T0 + 125
    broker.sync()
    assert broker.positions() == []
    [out] = [d for d in broker.deals(since=T0) if d.entry == "out"]
    assert (out.reason, out.price, out.time) == ("so", pytest.approx(1970.0 - 0.10), T0 + 125)
    assert out.profit == pytest.approx(sim.profit("buy", opened.price, 1969.90, 0.4, 100))
    info = broker.account_info()
    assert info.balance == pytest.approx(1_000.0 + out.profit) and info.balance <= 0
    assert broker.send_order(_buy(0.01, "cid-2")).code == TradeRetcode.NO_MONEY
    with sqlite3.connect(tmp_path / "paper.db") as db:
        assert db.execute("SELECT COUNT(*) FROM positions").fetchone() == (0,)


# --- the command -----------------------------------------------------------------------------
def test_backtest_leverage_option_and_its_documented_default(capsys, xau_csv):
    import inspect
    import json

    from scalper.cli.commands import backtest
    from tests.clikit import cli

    # --help names the default (written out there: the CLI does not import numpy to start)
    option = inspect.signature(backtest).parameters["leverage"].default
    assert f"(default {sim.DEFAULT_LEVERAGE:g}, as the paper broker)" in option.help
    base = ["backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--from", "2025-05-20", "--to", "2025-05-21",
            "--balance", "30", "--json"]
    poor = json.loads(cli(capsys, *base).out)
    assert poor["broker_refused"] == {NO_MONEY: poor["totals"]["approved"]} and poor["final_balance"] == 30
    levered = json.loads(cli(capsys, *base, "--leverage", "500").out)
    assert NO_MONEY not in levered["broker_refused"] and levered["totals"]["trades"] > 0
    assert cli(capsys, *base, "--leverage", "0").code == 2
