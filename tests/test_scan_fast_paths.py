"""The scan's output shortcuts give what the plain definitions give."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.cli.common import LONG_LIST, dumps
from scalper.clock import bar_iso, format_bar_times
from scalper.core.bars import Bars
from scalper.core.scan import price_decimals
from scalper.core.signals import Signal, many_signals


def _decimals_by_definition(bars: Bars, most: int = 8) -> int:
    prices = np.concatenate([bars.open, bars.high, bars.low, bars.close]) if len(bars) else np.zeros(1)
    scale = max(1.0, float(np.abs(prices).max()))
    for d in range(most + 1):
        if np.allclose(np.round(prices, d), prices, rtol=0, atol=scale * 1e-12 + 10.0 ** -(d + 6)):
            return d
    return most


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 60), digits=st.integers(0, 8), scale=st.sampled_from([1e-3, 1.0, 1e2, 1e4, 1e6]),
       seed=st.integers(0, 2**32 - 1), nudge=st.booleans())
def test_price_decimals_is_the_allclose_definition(n, digits, scale, seed, nudge):
    rng = np.random.default_rng(seed)
    cols = [np.round((rng.random(n) - 0.3) * scale, digits) for _ in range(4)]
    if nudge and n:
        cols[rng.integers(0, 4)][rng.integers(0, n)] += rng.random() * 10.0 ** -int(rng.integers(1, 12))
    zeros = np.zeros(n)
    bars = Bars(np.arange(n, dtype=np.int64) * 60, *cols, zeros, zeros)
    assert price_decimals(bars) == _decimals_by_definition(bars)


@given(st.lists(st.integers(0, 253_402_300_799), max_size=50))
def test_bar_times_format_as_one_by_one(epochs):
    assert format_bar_times(np.array(epochs, dtype=np.int64)) == [bar_iso(e) for e in epochs]


def test_a_long_list_with_a_non_finite_value_still_writes_null():
    rows = [{"k": i, "v": float(i)} for i in range(LONG_LIST)]
    rows[7]["v"] = float("nan")
    rows[9]["v"] = float("-inf")
    doc = json.loads(dumps({"rows": rows}))
    assert doc["rows"][7]["v"] is None and doc["rows"][9]["v"] is None and doc["rows"][8]["v"] == 8.0


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 3000), data=st.data(), seed=st.integers(0, 2**32 - 1), with_nan=st.booleans())
def test_rolling_min_max_equal_the_window_by_window_reduction(n, data, seed, with_nan):
    from numpy.lib.stride_tricks import sliding_window_view

    from scalper.core.indicators import rolling_max, rolling_min

    count = data.draw(st.integers(1, n))
    values = np.round(np.random.default_rng(seed).random(n) * 100, 2)
    if with_nan:
        values[n // 2] = np.nan
    windows = sliding_window_view(values, count)
    assert np.array_equal(rolling_min(values, count), windows.min(axis=1), equal_nan=True)
    assert np.array_equal(rolling_max(values, count), windows.max(axis=1), equal_nan=True)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(alphabet="{}, ab\"\\\0é"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet="{}, ab", max_size=3), inner,
                                                               max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(alphabet="{}, ab", max_size=4), _JSON_VALUES, max_size=4) | _JSON_VALUES,
                max_size=12))
def test_a_long_list_is_encoded_as_item_by_item(items):
    from scalper.cli import output

    encode = output._item_encoder()
    block = output.BLOCK
    try:
        for output.BLOCK in (3, block):
            assert list(output._encoded_items(items)) == [encode(item) for item in items]
    finally:
        output.BLOCK = block


def _round_by_definition(values: list[float], decimals: int) -> list:
    """rounding._round of each: round(), no -0.0, a non-finite value None."""
    import math

    out = [round(v, decimals) if math.isfinite(v) else None for v in values]
    return [0.0 if v == 0 else v for v in out]


def _same_floats(a: list[float], b: list[float]) -> bool:
    import math

    return len(a) == len(b) and all((x is None and y is None) or (type(x) is float and x == y
                                                                   and math.copysign(1, x) == math.copysign(1, y))
                                    for x, y in zip(a, b))


_TIES = [2.675, 0.125, 1.005, 2.5, -2.5, 0.5, -0.5, 1.5, 0.0, -0.0, 0.015, 0.025, 1.115, 1.125, 1234.5678,
         2.0**52 + 0.5, 2.0**53, 1e300, -1e300, 1e-300, 5e-324, float("inf"), -float("inf"), float("nan"), -1e-9]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(_TIES)
                       | st.integers(-10**9, 10**9).map(lambda k: (k + 0.5) / 100), max_size=40),
       decimals=st.integers(0, 15))
def test_rounding_a_column_is_round_of_each_value(values, decimals):
    from scalper import rounding

    assert _same_floats(rounding.values(values, decimals), _round_by_definition(values, decimals))
    assert _same_floats(rounding.values(np.array(values, dtype=np.float64), decimals),
                        _round_by_definition(values, decimals))


def test_rounding_many_prices_and_halves_is_round_of_each_value():
    from scalper import rounding

    rng = np.random.default_rng(15)
    for values in (rng.uniform(-5000, 5000, 50_000), rng.uniform(0, 1, 50_000),
                   (rng.integers(0, 10**7, 50_000) + 0.5) / 10**4, rng.normal(size=50_000) * 1e12):
        for decimals in (0, 1, 2, 3, 4, 5, 8):
            assert _same_floats(rounding.values(values, decimals), _round_by_definition(values.tolist(), decimals))


_CELLS = st.one_of(st.text(alphabet="ab \"\\\x7f\x1fé%{}", max_size=3), st.floats(), st.integers(), st.booleans(),
                   st.none())


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(_CELLS, _CELLS, _CELLS), min_size=1, max_size=6),
       keys=st.lists(st.text(alphabet="a%\"é", min_size=1, max_size=2), min_size=3, max_size=3, unique=True),
       typed=st.booleans())
def test_a_table_of_rows_is_encoded_as_item_by_item(rows, keys, typed):
    # a scan's rows go through a %-template when they are a uniform table (scalper.cli.output)
    from scalper.cli import output

    if typed:   # columns of one type each, mostly plain: the template's own case
        rows = [(f"s{i}", float(i) / 3, i) for i in range(len(rows))] + [(str(r[0]), 1.5, 7) for r in rows]
    items = [dict(zip(keys, row)) for row in rows]
    encode = output._item_encoder()
    assert list(output._encoded_items(items)) == [encode(item) for item in items]


def test_a_scans_rows_are_a_table_for_the_template():
    from scalper.cli import output

    rows = [{"bar_time": "2025-05-15 07:35:00", "strategy": "price_action_pinbar", "direction": "buy",
             "entry": 3145.5, "sl": 3144.1, "tp": 3148.3, "score": 0.4321}] * 3
    template, values = output._uniform_rows(rows)
    assert [template % v for v in values] == [json.dumps(r) for r in rows]
    assert output._uniform_rows([{**rows[0], "score": float("nan")}]) is None
    assert output._uniform_rows([rows[0], {**rows[0], "tp": 3148}]) is None       # an int among floats
    assert output._uniform_rows([rows[0], dict(reversed(rows[0].items()))]) is None   # another key order


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.booleans(), st.integers(0, 2**40), *[st.floats(allow_nan=True)] * 4),
                     max_size=30))
def test_many_signals_are_the_signals_signal_builds(rows):
    params = {"rr": 1.5, "min_bars": 30}
    made = many_signals("trend_pullback", [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                        [r[3] for r in rows], [r[4] for r in rows], [r[5] for r in rows], params, len(rows))
    plain = [Signal("trend_pullback", "buy" if b else "sell", t, e, s, tp, sc, params)
             for b, t, e, s, tp, sc in rows]
    assert [type(s) for s in made] == [Signal] * len(rows)
    assert [repr(s) for s in made] == [repr(s) for s in plain]
    assert [dataclasses.astuple(s) for s in made] == [dataclasses.astuple(s) for s in plain]
    for s, p in zip(made, plain):
        assert s.params is params
        assert s.risk == p.risk or (np.isnan(s.risk) and np.isnan(p.risk))
        assert s == p
    if made:
        with pytest.raises(dataclasses.FrozenInstanceError):
            made[0].sl = 0.0   # type: ignore[misc]


def test_bar_times_before_1970_format_as_one_by_one():
    epochs = [-86_400 * 365 * 30 + 59, -1, 0, 86_399, 86_400]
    assert format_bar_times(np.array(epochs, dtype=np.int64)) == [bar_iso(e) for e in epochs]
