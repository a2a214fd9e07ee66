"""The history EMAs kept beside the bar cache (scalper.feeds.bar_cache.DerivedStore, read by
scalper.core.scan): a scan of the same closes reads them back instead of running the recurrence,
and finds exactly the signals it found when it computed them; other closes, other settings, a
damaged entry or a cache turned off compute them again, and never fail because of the store."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalper.core import scan as scan_module
from scalper.core.scan import scan_history
from scalper.core.strategies import STRATEGY_NAMES
from scalper.feeds import bar_cache
from scalper.feeds.csvfile import read_bars
from tests.conftest import BARS_CACHE_SWITCH_ENV, ROOT, shared_file

SHARED = Path(shared_file("XAUUSD_M1.csv")).parent.parent


@pytest.fixture(scope="module")
def gold():
    bars, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    return bars


@pytest.fixture
def small_parts(monkeypatch):
    """Parts of 4,096 windows: the gold file's 19,901 are scanned in five, the last (3,517 bars)
    shorter than indicators.LONG_SERIES, so its EMA runs the short-series loop."""
    monkeypatch.setattr(scan_module, "SEGMENT_WINDOWS", 4096)


@pytest.fixture
def computed(monkeypatch):
    """The periods the scan ran the EMA recurrence for."""
    seen: list[int] = []
    real = scan_module.ema
    monkeypatch.setattr(scan_module, "ema", lambda close, period: seen.append(period) or real(close, period))
    return seen


def derived() -> list[Path]:
    return sorted(bar_cache.bars_dir().glob("*.derived"))


def test_a_scan_reads_its_emas_back_and_finds_the_same_signals(gold, small_parts, computed):
    plain = scan_history(gold, list(STRATEGY_NAMES))
    assert computed and set(computed) == {21, 50}   # the periods the default strategies read
    computed.clear()
    store = bar_cache.DerivedStore(gold.close)
    first = scan_history(gold, list(STRATEGY_NAMES), emas=store)
    assert set(computed) == {21, 50} and len(derived()) == 2
    computed.clear()
    again = scan_history(gold, list(STRATEGY_NAMES), emas=bar_cache.DerivedStore(gold.close.copy()))
    assert computed == []   # every EMA read back
    assert plain.signals == first.signals == again.signals and len(plain.signals) > 1000
    assert plain.skips == first.skips == again.skips


def test_other_closes_or_another_lookback_compute_their_own(gold, small_parts, computed):
    scan_history(gold, list(STRATEGY_NAMES), emas=bar_cache.DerivedStore(gold.close))
    computed.clear()
    changed = gold.close.copy()
    changed[-1] += 0.01
    other = dataclasses.replace(gold, close=changed)
    assert scan_history(other, list(STRATEGY_NAMES), emas=bar_cache.DerivedStore(changed)).signals \
        == scan_history(other, list(STRATEGY_NAMES)).signals
    assert set(computed) == {21, 50}
    computed.clear()
    scan_history(gold, list(STRATEGY_NAMES), lookback=120, emas=bar_cache.DerivedStore(gold.close))
    assert computed   # the parts' bounds move with the lookback: another key
    assert len(derived()) == 6


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "meta"])
def test_a_damaged_entry_is_a_miss_and_is_replaced(gold, small_parts, computed, damage):
    plain = scan_history(gold, list(STRATEGY_NAMES)).signals
    scan_history(gold, list(STRATEGY_NAMES), emas=bar_cache.DerivedStore(gold.close))
    for entry in derived():
        data = bytearray(entry.read_bytes())
        if damage == "truncate":
            data = data[:-8]
        elif damage == "flip":
            data[-3] ^= 0x40
        elif damage == "magic":
            data[:4] = b"junk"
        else:
            data[data.index(b'"rows": ') + 8] ^= 0x01
        entry.write_bytes(bytes(data))
    computed.clear()
    store = bar_cache.DerivedStore(gold.close)
    assert scan_history(gold, list(STRATEGY_NAMES), emas=store).signals == plain
    assert set(computed) == {21, 50}
    key = scan_module._RunningEma(gold.close, store, 100)._key(21)
    assert store.get(key) is not None   # written again, whole


def test_an_unwritable_store_only_costs_speed(gold, small_parts, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(bar_cache, "write_cache_file", refuse)
    plain = scan_history(gold, list(STRATEGY_NAMES)).signals
    assert scan_history(gold, list(STRATEGY_NAMES), emas=bar_cache.DerivedStore(gold.close)).signals == plain
    assert derived() == []


def test_the_store_is_kept_for_long_series_while_the_cache_is_on(monkeypatch):
    long = np.linspace(1.0, 2.0, bar_cache.MIN_DERIVED_ROWS)
    assert bar_cache.derived_store(long[:-1]) is None
    assert bar_cache.derived_store(long) is not None
    monkeypatch.setenv(BARS_CACHE_SWITCH_ENV, "0")
    assert bar_cache.derived_store(long) is None


def test_derived_entries_are_pruned_apart_from_the_bars(monkeypatch):
    monkeypatch.setattr(bar_cache, "MAX_DERIVED_ENTRIES", 2)
    stores = [bar_cache.DerivedStore(np.full(10, float(k))) for k in range(4)]
    for k, store in enumerate(stores):
        store.put("ema/test", np.arange(10.0) + k)
        os.utime(store._entry("ema/test"), ns=(k * 10**9, k * 10**9))   # oldest first
    assert len(derived()) == 2
    assert stores[0].get("ema/test") is None and stores[3].get("ema/test").tolist() == (np.arange(10.0) + 3).tolist()


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """60,000 tiled gold bars: long enough for the store (MIN_DERIVED_ROWS)."""
    out = tmp_path_factory.mktemp("tiled") / "xau_60k.csv"
    subprocess.run([sys.executable, str(SHARED / "tools" / "tile_bars.py"), str(shared_file("XAUUSD_M1.csv")),
                    str(out), "60000"], check=True, capture_output=True)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("command", [["scan", "--json"], ["backtest", "--symbol", "XAUUSD", "--json"]])
def test_a_second_run_prints_what_a_run_without_any_cache_prints(long_file, command):
    def run(**env) -> dict:
        proc = subprocess.run([sys.executable, "-m", "scalper", command[0], "--data", str(long_file), *command[1:]],
                              cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
                              env={**os.environ, **env})
        doc = json.loads(proc.stdout)
        doc.pop("duration_s", None)
        return doc

    first = run()
    assert len(derived()) == 2
    again = run()
    uncached = run(**{BARS_CACHE_SWITCH_ENV: "0"})
    assert first == again == uncached
    assert (again.get("signals") or again["totals"]["signals"]) > 1000


def test_a_store_of_other_closes_is_refused(gold):
    other = gold.close.copy()
    other[0] += 1.0
    with pytest.raises(ValueError, match="not of this history's closes"):
        scan_history(gold, list(STRATEGY_NAMES), emas=bar_cache.DerivedStore(other))
    assert bar_cache.DerivedStore(gold.close.copy()).covers(gold.close)
