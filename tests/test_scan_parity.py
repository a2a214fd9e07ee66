"""The history scan: the golden file, and live/fast parity on every bar of the shared data."""

from __future__ import annotations

from collections import Counter

import pytest

from scalper.core import strategies
from scalper.core.scan import ScanResult, scan_history
from scalper.core.signals import Signal
from scalper.services.scan import signals_to_rows
from tests.strategy_data import BTC, XAU, bars_from_rows, load_bars, load_expected_signals

LOOKBACK = 100
VALUES = ("entry", "sl", "tp", "score")


def keyed(signals):
    return {(s.bar_time, s.strategy, s.direction): s for s in signals}


def assert_same_values(got: dict, want: dict, rel=1e-9):
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=rel, abs=0), key


@pytest.fixture(scope="module")
def xau_scan() -> ScanResult:
    return scan_history(load_bars(XAU), lookback=LOOKBACK)


def test_golden_file(xau_scan):
    expected = load_expected_signals()
    assert xau_scan.evaluated == 19_901
    got = keyed(xau_scan.signals)
    want = {(int(r.bar_time), r.strategy, r.direction): r for r in expected.itertuples()}
    assert set(got) == set(want)
    for key, row in want.items():
        s = got[key]
        assert_same_values({f: getattr(s, f) for f in VALUES}, {f: getattr(row, f) for f in VALUES})


def test_golden_counts(xau_scan):
    counts = Counter((s.strategy, s.direction) for s in xau_scan.signals)
    assert counts == {("price_action_pinbar", "buy"): 9, ("price_action_pinbar", "sell"): 3,
                      ("trend_pullback", "buy"): 665, ("trend_pullback", "sell"): 483,
                      ("doji_breakout", "buy"): 219, ("doji_breakout", "sell"): 231,
                      ("range_reversion", "buy"): 53, ("range_reversion", "sell"): 50}
    assert len(xau_scan.signals) == 1_713


def test_signals_sorted_by_bar_then_canonical_order(xau_scan):
    order = {name: i for i, name in enumerate(strategies.STRATEGY_NAMES)}
    keys = [(s.bar_time, order[s.strategy]) for s in xau_scan.signals]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)   # at most one direction per strategy and bar


def test_skips_account_for_every_evaluated_bar(xau_scan):
    for name in strategies.STRATEGY_NAMES:
        skipped = sum(n for reason, n in xau_scan.skips.items() if reason.startswith(name + "_"))
        fired = sum(1 for s in xau_scan.signals if s.strategy == name)
        assert skipped + fired == xau_scan.evaluated
    assert set(xau_scan.skips) <= {f"{n}_{r}" for n in strategies.STRATEGY_NAMES
                                   for r in ("no_setup", "invalid_stop", "insufficient_candles")}


@pytest.mark.parametrize("name", strategies.STRATEGY_NAMES)
@pytest.mark.parametrize("data", [XAU, BTC])
def test_live_and_fast_paths_agree_on_every_bar(data, name):
    bars = load_bars(data)
    module = strategies.get(name)
    params = strategies.resolve_params(name, lookback=LOOKBACK)
    fast = module.scan(bars, params, LOOKBACK)
    live_signals, live_skips = [], Counter()
    for t in range(LOOKBACK - 1, len(bars)):
        outcome = module.evaluate(bars.window(t, LOOKBACK), params)
        if isinstance(outcome, Signal):
            live_signals.append(outcome)
        else:
            live_skips[outcome.reason] += 1
    assert fast.evaluated == len(bars) - LOOKBACK + 1
    assert fast.skips == dict(live_skips)
    got, want = keyed(fast.signals), keyed(live_signals)
    assert set(got) == set(want)
    for key, s in want.items():
        assert_same_values({f: getattr(got[key], f) for f in VALUES}, {f: getattr(s, f) for f in VALUES})
        assert got[key].params == s.params


def test_parity_with_a_window_as_short_as_the_atr():
    # lookback 14: the ATR spans the whole window, whose first TR is its own range.
    bars = load_bars(BTC).slice(0, 3000)
    params = strategies.resolve_params("doji_breakout", {"min_bars": 14}, lookback=14)
    module = strategies.get("doji_breakout")
    fast = keyed(module.scan(bars, params, 14).signals)
    live = keyed(o for t in range(13, len(bars))
                 if isinstance(o := module.evaluate(bars.window(t, 14), params), Signal))
    assert fast and set(fast) == set(live)
    for key, s in live.items():
        assert_same_values({f: getattr(fast[key], f) for f in VALUES}, {f: getattr(s, f) for f in VALUES})


def test_scan_history_with_chosen_strategies_and_params():
    bars = load_bars(XAU)
    result = scan_history(bars, ["range_reversion", "doji_breakout"],
                          {"doji_breakout": {"rr": 3.0}}, lookback=LOOKBACK)
    assert {s.strategy for s in result.signals} == {"range_reversion", "doji_breakout"}
    doji = [s for s in result.signals if s.strategy == "doji_breakout"]
    assert all(s.params["rr"] == 3.0 for s in doji)
    assert all(abs(s.tp - s.entry) == pytest.approx(3.0 * s.risk, rel=1e-9) for s in doji)


def test_scan_history_rejects_bad_input():
    bars = load_bars(XAU)
    with pytest.raises(strategies.UnknownStrategy):
        scan_history(bars, ["pinbar"])
    with pytest.raises(strategies.UnknownStrategy):
        scan_history(bars, params={"pinbar": {}})
    with pytest.raises(ValueError, match="level_lookback=50 reaches 51 bars"):
        scan_history(bars, params={"price_action_pinbar": {"level_lookback": 50}})
    with pytest.raises(ValueError, match="exceeds the bot's lookback=50"):
        scan_history(bars, lookback=50)
    with pytest.raises(ValueError, match="lookback"):
        scan_history(bars, lookback=0)


def test_scan_of_a_history_shorter_than_a_window():
    bars = load_bars(XAU).slice(0, 99)
    result = scan_history(bars, lookback=LOOKBACK)
    assert (result.signals, result.skips, result.evaluated) == ([], {}, 0)


def test_strategy_scan_with_too_short_a_lookback_skips_every_bar():
    bars = load_bars(XAU).slice(0, 500)
    p = strategies.resolve_params("trend_pullback")
    result = strategies.get("trend_pullback").scan(bars, p, 40)
    assert result.signals == []
    assert result.skips == {"trend_pullback_insufficient_candles": 461}
    assert result.evaluated == 461


def test_signals_to_rows_formats_the_files_clock():
    bars = bars_from_rows([(1.0, 2.0, 0.5, 1.5)], start=1_747_294_500)   # 2025-05-15 07:35:00
    assert bars.time[0] == 1_747_294_500
    signal = Signal("doji_breakout", "buy", 1_747_294_500, 3129.32, 3125.2702142857142,
                    3135.394678571429, 0.9121621621622431, {"rr": 1.5})
    assert signals_to_rows([signal]) == [{
        "bar_time": "2025-05-15 07:35:00", "strategy": "doji_breakout", "direction": "buy",
        "entry": 3129.32, "sl": 3125.2702142857142, "tp": 3135.394678571429,
        "score": 0.9121621621622431}]


def test_rows_round_trip_the_golden_file(xau_scan):
    expected = load_expected_signals()
    rows = signals_to_rows(xau_scan.signals)
    assert [r["bar_time"] for r in rows][:3] == ["2025-05-15 09:15:00", "2025-05-15 09:18:00",
                                                  "2025-05-15 09:29:00"]
    assert len(rows) == len(expected)
    assert all(isinstance(r[f], float) for r in rows for f in VALUES)
