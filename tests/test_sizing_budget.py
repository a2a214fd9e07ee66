"""Order sizing never risks more than the settings allow.

A volume below the symbol's minimum was once raised to the minimum: a bot set to
risk 0.1 % could lose several times that at its stop. Now it is refused with
`risk_volume_below_minimum` (per order), or, for a fixed qty under a known minimum,
at validation time; rounding goes down to the volume step, never up.
"""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scalper.backtest import Setup, run_backtest
from scalper.config import RiskConfig, load_config
from scalper.core import risk
from scalper.core.sim import profit
from scalper.core.sizing import floor_volume, size_order
from scalper.core.strategies import STRATEGY_NAMES, resolve_params
from scalper.errors import BadInput, ConfigError
from scalper.feeds.csvfile import read_bars
from scalper.settings import risk_rules
from scalper.symbols import SymbolSpec, default_qty, spec_for
from tests.conftest import shared_file
from tests.enginekit import engine_at, golden, just_after_close, rows, write_config

STEPS = st.sampled_from([0.001, 0.01, 0.1, 1.0])


@st.composite
def specs(draw) -> SymbolSpec:
    """Any spec bots.yaml's `symbols:` accepts, its minimum a whole number of steps."""
    step = draw(STEPS)
    volume_min = step * draw(st.integers(1, 50))
    volume_max = volume_min + step * draw(st.integers(0, 100_000))
    return SymbolSpec("X", digits=draw(st.integers(0, 5)),
                      contract_size=draw(st.sampled_from([1.0, 5.0, 100.0, 5000.0, 100_000.0])),
                      volume_min=round(volume_min, 3), volume_max=round(volume_max, 3), volume_step=step)


def on_step_grid(volume: float, step: float) -> bool:
    return abs(volume / step - round(volume / step)) < 1e-6


@settings(max_examples=400, deadline=None)
@given(spec=specs(), balance=st.floats(1.0, 1e9), risk_percent=st.floats(1e-4, 10.0),
       entry=st.floats(0.5, 1e5), distance_share=st.floats(1e-5, 0.5), direction=st.sampled_from(["buy", "sell"]))
def test_the_money_at_risk_at_the_stop_never_exceeds_the_budget(spec, balance, risk_percent, entry, distance_share,
                                                                direction):
    sl = entry * (1 - distance_share) if direction == "buy" else entry * (1 + distance_share)
    distance = entry - sl if direction == "buy" else sl - entry
    assume(distance > 0)
    budget = balance * risk_percent / 100.0
    sized = size_order(qty=0.01, spec=spec, risk_percent=risk_percent, balance=balance, risk_per_unit=distance)
    if sized.ok:
        v = sized.volume
        assert v * distance * spec.contract_size <= budget                      # exactly, as sized
        assert -profit(direction, entry, sl, v, spec.contract_size) <= budget * (1 + 1e-12)   # as the fill books it
        assert spec.volume_min - 1e-9 <= v <= spec.volume_max and on_step_grid(v, spec.volume_step)
        # …and no smaller than it needs to be: one more step breaks the budget or the maximum.
        more = v + spec.volume_step
        assert more * distance * spec.contract_size > budget * (1 - 1e-9) or more > spec.volume_max + 1e-9
    else:
        assert (sized.volume, sized.reason) == (0.0, risk.VOLUME_BELOW_MIN)
        # refused only when even the smallest order would lose more than the budget
        assert spec.volume_min * distance * spec.contract_size > budget * (1 - 1e-9)
        assert spec.symbol in sized.detail and f"{spec.volume_min:g}" in sized.detail


@settings(max_examples=300, deadline=None)
@given(spec=specs(), qty=st.floats(1e-4, 1e5))
def test_a_fixed_qty_is_rounded_down_never_up(spec, qty):
    sized = size_order(qty=qty, spec=spec)
    if sized.ok:
        assert spec.volume_min - 1e-9 <= sized.volume <= min(qty, spec.volume_max)
        assert on_step_grid(sized.volume, spec.volume_step)
        assert min(qty, spec.volume_max) - sized.volume < spec.volume_step + 1e-9
    else:
        assert sized.reason == risk.VOLUME_BELOW_MIN and qty < spec.volume_min + spec.volume_step
        assert floor_volume(qty, spec) < spec.volume_min - 1e-9


@given(step=STEPS, k=st.integers(0, 10**6))
def test_a_whole_number_of_steps_stays_itself(step, k):
    written = round(k * step, 3)
    assert floor_volume(written, SymbolSpec("X", 2, 1.0, volume_step=step)) == written


def test_the_case_that_lost_three_times_its_budget_is_refused():
    gold = spec_for("XAUUSD")                          # 100 oz a lot, minimum 0.01
    budget = 1_000.0 * 0.1 / 100                       # 0.1 % of 1,000 = 1.00 USD
    sized = size_order(qty=0.01, spec=gold, risk_percent=0.1, balance=1_000.0, risk_per_unit=3.0)
    assert 0.01 * 3.0 * gold.contract_size == pytest.approx(3 * budget)   # the minimum lot would lose 3.00
    assert not sized.ok and sized.reason == "risk_volume_below_minimum" and sized.volume == 0.0
    assert "0.1% of 1000.00" in sized.detail and "minimum is 0.01" in sized.detail
    # one cent more risk allowed per lot, and the minimum fits: it is sent
    assert size_order(qty=0.01, spec=gold, risk_percent=0.3, balance=1_000.0, risk_per_unit=3.0).volume == 0.01


def test_sizing_without_a_balance_is_refused_not_guessed():
    sized = size_order(qty=0.01, spec=spec_for("XAUUSD"), risk_percent=1.0, balance=None, risk_per_unit=2.0)
    assert (sized.ok, sized.reason) == (False, risk.NO_BALANCE)
    assert risk.VOLUME_BELOW_MIN in risk.SIZING_REASONS and risk.VOLUME_BELOW_MIN not in risk.REASONS


# --- a fixed qty below a known minimum is a config error -----------------------------------------
def _bots_file(tmp_path, bot: dict, symbols: dict | None = None, feed: dict | None = None):
    doc = {"accounts": [{"id": 1}], "bots": [{"name": "index", "accounts": [1], **bot}]}
    if symbols:
        doc["symbols"] = symbols
    if feed:
        doc["feed"] = feed
    path = tmp_path / "bots.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_fixed_qty_below_the_tables_minimum_names_the_bot_the_symbol_and_the_minimum(tmp_path):
    path = _bots_file(tmp_path, {"symbol": "US30.cash", "qty": 0.05})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    e = err.value
    qty_line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "qty:" in text)
    assert e.where == "bots[0].qty" and e.line == qty_line
    assert "'index'" in e.message and "US30.cash" in e.message and "minimum volume 0.1" in e.message
    assert "qty 0.05" in e.message and "built-in symbol table" in e.message
    assert "qty: 0.1" in e.fix and "symbols:" in e.fix


def test_the_minimum_of_the_files_own_symbols_table_counts(tmp_path):
    symbols = {"GER40": {"digits": 1, "contract_size": 1, "volume_min": 0.5, "volume_step": 0.5}}
    with pytest.raises(ConfigError) as err:
        load_config(_bots_file(tmp_path, {"symbol": "GER40", "qty": 0.4}, symbols))
    assert "GER40's minimum volume 0.5 (from `symbols:`" in err.value.message
    # without a qty, the default is the minimum the file's own table gives (never below it)
    cfg = load_config(_bots_file(tmp_path, {"symbol": "GER40"}, symbols))
    assert cfg.qty_of(cfg.bots[0]) == 0.5
    cfg = load_config(_bots_file(tmp_path, {"symbol": "GER40", "qty": 1.0}, symbols))
    assert cfg.qty_of(cfg.bots[0]) == 1.0


def test_what_is_not_a_fixed_qty_below_a_known_minimum_passes(tmp_path):
    assert default_qty("US30") == 0.1 and default_qty("EURUSD") == 0.1 and default_qty("XAUUSD") == 0.01
    cfg = load_config(_bots_file(tmp_path, {"symbol": "US30"}))
    assert cfg.qty_of(cfg.bots[0]) == 0.1   # the default fits
    # sized per order from the balance: checked per order instead
    load_config(_bots_file(tmp_path, {"symbol": "US30", "qty": 0.01, "risk": {"risk_percent": 1}}))
    # an unlisted symbol's rules are only a guess: the broker's own spec decides at order time
    # (on a csv feed: the built-in feed refuses a symbol it does not know)
    (tmp_path / "zztop.csv").write_text("")
    load_config(_bots_file(tmp_path, {"symbol": "ZZTOP", "qty": 0.001}, feed={"type": "csv", "path": "zztop.csv"}))


# --- at order time --------------------------------------------------------------------------------
def test_run_once_records_the_refusal_and_sends_nothing(tmp_path, xau_csv):
    pin = next(r for r in golden(shared_file("XAUUSD_M1.expected_signals.csv"))
               if r["strategy"] == "price_action_pinbar")
    distance = abs(float(pin["entry"]) - float(pin["sl"]))
    config = write_config(tmp_path, xau_csv, strategies=["price_action_pinbar"], risk={"risk_percent": 0.01})
    assert 0.01 * distance * 100 > 10_000 * 0.01 / 100      # 1.00 USD budget; the minimum lot risks more
    s = engine_at(config, just_after_close(pin["bar_time"])).run_once()

    assert s.decisions == {"open": 1} and s.orders_created == 1
    [order] = rows(tmp_path / "ledger.db", "SELECT * FROM orders")
    assert order["status"] == "error" and order["volume"] == 0.0
    assert order["message"].startswith("risk_volume_below_minimum: 0.01% of 10000.00 at a stop")
    assert rows(tmp_path / "ledger.db", "SELECT * FROM positions") == []
    # the broker never saw it: no order, no deal in its own books
    assert rows(tmp_path / "paper.db", "SELECT * FROM orders") == []
    assert rows(tmp_path / "paper.db", "SELECT * FROM deals") == []


def test_a_bot_without_qty_sends_the_minimum_of_the_files_symbols_table(tmp_path, xau_csv):
    """The default qty (0.01 for gold) is raised to the minimum `symbols:` gives the symbol,
    at validation and when run-once sizes the order alike."""
    pin = next(r for r in golden(shared_file("XAUUSD_M1.expected_signals.csv"))
               if r["strategy"] == "price_action_pinbar")
    config = write_config(tmp_path, xau_csv, strategies=["price_action_pinbar"])
    doc = yaml.safe_load(config.read_text())
    doc["symbols"] = {"XAUUSDm": {"digits": 2, "contract_size": 100, "volume_min": 0.05, "volume_step": 0.01}}
    assert "qty" not in doc["bots"][0]
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    s = engine_at(config, just_after_close(pin["bar_time"])).run_once()

    assert s.decisions == {"open": 1} and s.orders_created == 1
    [order] = rows(tmp_path / "ledger.db", "SELECT * FROM orders")
    assert order["status"] == "filled" and order["volume"] == 0.05
    [deal] = rows(tmp_path / "paper.db", "SELECT * FROM deals")
    assert deal["volume"] == 0.05


def _gold_setup(qty: float, **risk_settings) -> Setup:
    return Setup(symbol="XAUUSD", spec=spec_for("XAUUSD"), strategies=STRATEGY_NAMES,
                 params={n: resolve_params(n, None, 100) for n in STRATEGY_NAMES}, lookback=100, qty=qty,
                 rules=risk_rules(RiskConfig(**risk_settings)), balance=10_000.0)


@pytest.mark.parametrize("percent", [0.01, 0.05])
def test_the_backtester_refuses_alike_and_never_trades_past_the_budget(percent):
    bars, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    result = run_backtest(bars, _gold_setup(0.01, risk_percent=percent))
    approved = sum(c[risk.APPROVED] for c in result.decisions.values())
    # 1 or 5 USD of 10,000: the stops too far for 0.01 lot are refused, the others traded
    assert result.trades and result.refused[risk.VOLUME_BELOW_MIN] > 0
    assert approved == len(result.trades) + sum(result.refused.values())
    signals = {(x.bar_time, x.strategy): x for x in result.signals}
    for t in result.trades:   # the signal's stop distance, against the balance when deciding
        balance = 10_000.0 + sum(x.pnl for x in result.trades if x.exit_time < t.entry_time)
        assert t.volume * signals[t.signal_time, t.strategy].risk * 100.0 <= balance * percent / 100


def test_backtest_qty_below_the_minimum_is_refused_up_front():
    from scalper.services.backtest import resolve_setup

    with pytest.raises(BadInput) as err:
        resolve_setup(bot=None, symbol="US30", strategies=None, balance=None, qty=0.05, lookback=None, config=None)
    assert err.value.where == "--qty" and "minimum volume 0.1" in str(err.value)
    setup, _ = resolve_setup(bot=None, symbol="US30", strategies=None, balance=None, qty=None, lookback=None,
                             config=None)
    assert setup.qty == 0.1 and math.isclose(setup.spec.volume_min, 0.1)
