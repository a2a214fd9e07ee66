"""The replay's trades kept as their fields (scalper.backtest.TradeLog): the Trade objects built
from them on asking, the trade rows made from the columns equal to trade_row of each Trade."""

from __future__ import annotations

import dataclasses

import pytest

from scalper.backtest import TRADE_NAMES, Setup, Trade, TradeLog, run_backtest
from scalper.config import RiskConfig
from scalper.core.strategies import STRATEGY_NAMES, resolve_params
from scalper.feeds.csvfile import read_bars
from scalper.services.backtest import trade_row, trades_to_rows
from scalper.settings import risk_rules
from scalper.symbols import spec_for
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def gold():
    bars, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    return bars


def _setup(risk_settings: dict) -> Setup:
    return Setup(symbol="XAUUSD", spec=spec_for("XAUUSD"), strategies=STRATEGY_NAMES,
                 params={n: resolve_params(n, None, 100) for n in STRATEGY_NAMES}, lookback=100, qty=0.01,
                 rules=risk_rules(RiskConfig(**risk_settings)), balance=10_000.0)


def test_the_trade_log_keeps_trades_as_their_fields(gold):
    # the replay appends each trade's fields (TradeLog); the Trade objects are built from them on asking
    result = run_backtest(gold, _setup({}))
    log = result.trade_log
    assert tuple(f.name for f in dataclasses.fields(Trade)) == TRADE_NAMES
    trades = result.trades
    assert len(log) == len(trades) > 500 and result.trades is trades   # built once
    assert all(type(t) is Trade for t in trades)
    columns = log.columns()
    assert all(columns[n] == [getattr(t, n) for t in trades] for n in TRADE_NAMES)
    assert trades_to_rows(log, 2) == trades_to_rows(trades, 2) == [trade_row(t, 2) for t in trades]
    again = TradeLog(trades)   # from Trade objects (the per-bar replay's): the same objects back
    assert again.trades is trades and again.rows == log.rows
    empty = TradeLog()
    assert empty.trades == [] and empty.columns() == {n: [] for n in TRADE_NAMES} and trades_to_rows(empty) == []


def test_the_columns_follow_trades_appended_after_a_reading():
    log = TradeLog()
    row = ("trend_pullback", "buy", 60, 125, 185, 0.01, 3000.0, 3001.0, 2999.0, 3001.0, 2999.0, "tp", 1.0)
    log.rows.append(row)
    assert log.columns()["pnl"] == [1.0] and log.columns() is log.columns()
    log.rows.append(row[:-1] + (-2.0,))
    assert log.columns()["pnl"] == [1.0, -2.0] and [t.pnl for t in log.trades] == [1.0, -2.0]
