"""The scan's output shortcuts give what the plain definitions give."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.cli.common import LONG_LIST, dumps
from scalper.clock import bar_iso
from scalper.core.bars import Bars
from scalper.core.scan import format_bar_times, price_decimals


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
