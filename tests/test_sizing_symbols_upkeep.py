"""Symbols, sizing, the fill model and the upkeep rules (pure core)."""

from __future__ import annotations

import pytest

from scalper.core import sim, upkeep
from scalper.core.sizing import order_volume
from scalper.symbols import default_qty, is_metal, root_symbol, round_volume, spec_for


@pytest.mark.parametrize("name, root, metal, qty", [
    ("XAUUSD", "XAUUSD", True, 0.01), ("XAUUSDm", "XAUUSD", True, 0.01), ("XAUUSD.a", "XAUUSD", True, 0.01),
    ("GOLD", "XAUUSD", True, 0.01), ("SILVER", "XAGUSD", True, 0.01), ("XAGUSD.p", "XAGUSD", True, 0.01),
    ("EURUSD", "EURUSD", False, 0.10), ("EURUSDm", "EURUSD", False, 0.10), ("GBPJPY.pro", "GBPJPY", False, 0.10),
    ("BTCUSD", "BTCUSD", False, 0.01),
])
def test_broker_suffixes_are_understood(name, root, metal, qty):
    assert root_symbol(name) == root and is_metal(name) is metal and default_qty(name) == qty


def test_specs_keep_the_broker_name_and_contract_sizes():
    s = spec_for("XAUUSDm")
    assert s.symbol == "XAUUSDm" and s.contract_size == 100 and s.digits == 2 and s.point == pytest.approx(0.01)
    assert spec_for("EURUSD").contract_size == 100_000 and spec_for("USDJPY").digits == 3


def test_volume_rounds_down_to_the_step_and_clamps():
    s = spec_for("XAUUSD")
    assert round_volume(0.037, s) == 0.03
    assert round_volume(0.001, s) == 0.01          # clamped up to the minimum
    assert round_volume(1e6, s) == s.volume_max
    assert round_volume(0.07, s) == 0.07           # no float drift below the step


def test_risk_percent_sizing():
    s = spec_for("XAUUSD")
    # 1% of 10,000 = 100 USD at risk; SL 2.00 away; 100 oz per lot → 0.5 lot
    assert order_volume(qty=0.01, spec=s, risk_percent=1.0, balance=10_000, risk_per_unit=2.0) == 0.5
    assert order_volume(qty=0.02, spec=s) == 0.02


def test_fill_model():
    bid, ask = sim.quote(100.0, 20, 0.01)
    assert (bid, ask) == pytest.approx((99.9, 100.1))
    assert (sim.fill_price("buy", bid, ask), sim.fill_price("sell", bid, ask)) == (ask, bid)
    assert (sim.close_price("buy", bid, ask), sim.close_price("sell", bid, ask)) == (bid, ask)
    assert sim.bar_exit("buy", 99.0, 102.0, 100.0, 102.5, 98.5) == (99.0, "sl")   # both touched: SL
    assert sim.bar_exit("buy", 99.0, 102.0, 100.0, 102.5, 99.5) == (102.0, "tp")
    assert sim.bar_exit("buy", 99.0, 102.0, 98.0, 100.0, 97.0) == (98.0, "sl")    # gap through SL
    assert sim.bar_exit("sell", 101.0, 98.0, 100.0, 100.5, 99.0) is None
    assert sim.bar_exit("sell", 101.0, 98.0, 97.5, 98.0, 97.0) == (97.5, "tp")    # gap through TP
    assert sim.profit("buy", 100.0, 102.0, 0.5, 100) == pytest.approx(100.0)
    assert sim.profit("sell", 100.0, 102.0, 0.5, 100) == pytest.approx(-100.0)


def test_trailing_stop_only_tightens():
    kw = dict(activate_r=1.0, distance_r=1.0)
    assert upkeep.trailing_stop("buy", 100, 99, 99, 100.5, **kw) is None           # < 1R in profit
    assert upkeep.trailing_stop("buy", 100, 99, 99, 101.5, **kw) == pytest.approx(100.5)
    assert upkeep.trailing_stop("buy", 100, 99, 100.6, 101.5, **kw) is None        # would loosen
    assert upkeep.trailing_stop("sell", 100, 101, 101, 98.0, **kw) == pytest.approx(99.0)
    assert upkeep.trailing_stop("sell", 100, 100, None, 98.0, **kw) is None         # zero R


def test_kill_switch_rule():
    assert upkeep.kill_switch_tripped(-60, 1000, loss_limit=None, loss_limit_pct=5) is not None
    assert upkeep.kill_switch_tripped(-49, 1000, loss_limit=None, loss_limit_pct=5) is None
    assert upkeep.kill_switch_tripped(-25, 1000, loss_limit=20, loss_limit_pct=None) is not None
    assert upkeep.kill_switch_tripped(+500, 1000, loss_limit=1, loss_limit_pct=1) is None
