"""The built-in feed: deterministic, closed-only, gap-free, consistent and plausible M1 bars."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalper.clock import parse_instant
from scalper.config import FeedConfig
from scalper.errors import FeedUnavailable
from scalper.feeds import builtin
from scalper.feeds.builtin import BuiltinFeed
from scalper.feeds.factory import MT5_MISSING, build_feed
from scalper.symbols import spec_for

NOW = parse_instant("2025-06-04T14:31:27")
LAST_CLOSED = parse_instant("2025-06-04T14:30:00")
DAY = 1440


def digest(bars) -> str:
    h = hashlib.sha256()
    for field in ("time", "open", "high", "low", "close", "volume", "spread"):
        h.update(np.ascontiguousarray(getattr(bars, field)).tobytes())
    return h.hexdigest()


def atr14(bars) -> float:
    prev_close = bars.close[:-1]
    tr = np.maximum(bars.high[1:], prev_close) - np.minimum(bars.low[1:], prev_close)
    return float(tr[-14:].mean())


def test_same_seed_same_bars_even_in_a_fresh_process():
    here = digest(BuiltinFeed(seed=7).closed_bars("XAUUSD", 300, NOW))
    builtin._day_bars.cache_clear()  # recompute rather than reuse
    assert digest(BuiltinFeed(seed=7).closed_bars("XAUUSD", 300, NOW)) == here
    code = ("import hashlib, numpy as np; from scalper.feeds.builtin import BuiltinFeed; "
            f"b = BuiltinFeed(seed=7).closed_bars('XAUUSD', 300, {NOW!r}); h = hashlib.sha256(); "
            "[h.update(np.ascontiguousarray(getattr(b, f)).tobytes()) for f in "
            "('time', 'open', 'high', 'low', 'close', 'volume', 'spread')]; print(h.hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[1])
    assert other.stdout.strip() == here


def test_bars_do_not_change_when_asked_again_later():
    feed = BuiltinFeed()
    early = feed.closed_bars("BTCUSD", 200, NOW)
    builtin._day_bars.cache_clear()
    later = feed.closed_bars("BTCUSD", 5 * DAY, NOW + 3 * 86_400)
    start = int(np.flatnonzero(later.time == early.time[0])[0])
    assert digest(later.slice(start, start + 200)) == digest(early)


def test_another_seed_or_symbol_gives_other_bars():
    base = BuiltinFeed(seed=7).closed_bars("XAUUSD", 100, NOW)
    assert not np.array_equal(BuiltinFeed(seed=8).closed_bars("XAUUSD", 100, NOW).close, base.close)
    assert not np.array_equal(BuiltinFeed(seed=7).closed_bars("XAGUSD", 100, NOW).close, base.close)
    gold, silver, btc = (np.median(BuiltinFeed().closed_bars(symbol, 100, NOW).close)
                         for symbol in ("XAUUSD", "XAGUSD", "BTCUSD"))
    assert 1500 < gold < 3500 and 15 < silver < 50 and 30_000 < btc < 110_000


def test_a_brokers_suffix_names_the_same_instrument():
    feed = BuiltinFeed()
    assert digest(feed.closed_bars("XAUUSDm", 100, NOW)) == digest(feed.closed_bars("XAUUSD", 100, NOW))


@pytest.mark.parametrize("now", [NOW, LAST_CLOSED + 60])
def test_only_closed_bars_ending_at_the_last_closed_minute(now):
    bars = BuiltinFeed().closed_bars("XAUUSD", 101, now)
    assert len(bars) == 101
    assert bars.time[-1] == LAST_CLOSED
    assert np.all(bars.time + 60 <= now)


def test_bars_are_gap_free_across_midnight_and_open_at_the_previous_close():
    bars = BuiltinFeed().closed_bars("EURUSD", 3 * DAY, NOW)
    assert np.all(np.diff(bars.time) == 60)
    np.testing.assert_array_equal(bars.open[1:], bars.close[:-1])


@pytest.mark.parametrize("symbol", ["XAUUSD", "XAGUSD", "BTCUSD", "ETHUSD", "EURUSD", "USDJPY",
                                    "US30", "NAS100", "GBPJPYm", "SOMETHING"])
def test_ohlc_consistent_positive_and_rounded_to_the_symbols_digits(symbol):
    bars = BuiltinFeed().closed_bars(symbol, 2 * DAY, NOW)
    o, h, lo, c = bars.open, bars.high, bars.low, bars.close
    assert np.all(lo > 0)
    assert np.all(lo <= np.minimum(o, c)) and np.all(np.maximum(o, c) <= h)
    digits = spec_for(symbol).digits
    for prices in (o, h, lo, c):
        np.testing.assert_array_equal(np.round(prices, digits), prices)
    assert np.all(bars.volume >= 1) and np.all(bars.volume == np.round(bars.volume))
    assert np.all(bars.spread >= 1)
    assert 0.5 < np.median(bars.spread) / spec_for(symbol).spread_points < 2.0


@pytest.mark.parametrize("symbol,low,high", [("XAUUSD", 0.2, 3.0), ("BTCUSD", 10, 300),
                                             ("EURUSD", 0.00003, 0.0008), ("USDJPY", 0.005, 0.08)])
def test_volatility_is_plausible(symbol, low, high):
    bars = BuiltinFeed().closed_bars(symbol, DAY, NOW)
    median_range = float(np.median(bars.high - bars.low))
    assert low < median_range < high
    assert atr14(bars) > 0
    hours = (bars.time // 3600) % 24
    asia, new_york = (np.median((bars.high - bars.low)[np.isin(hours, hs)]) for hs in ((1, 2, 3), (13, 14, 15)))
    assert new_york > asia  # sessions: busier at the New York open than in Asia


def test_bar_shapes_vary_like_real_m1_bars():
    bars = BuiltinFeed().closed_bars("XAUUSD", 5 * DAY, NOW)
    size = bars.high - bars.low
    body = np.abs(bars.close - bars.open) / np.where(size > 0, size, np.nan)
    assert 0.05 < np.nanmean(body <= 0.1) < 0.2       # dojis (real gold: 9%)
    assert 0.35 < np.nanmedian(body) < 0.65           # real gold: 0.51
    assert np.percentile(size, 99) > 3 * np.median(size)  # bursts and fat tails


def test_price_is_the_forming_bars_open():
    feed = BuiltinFeed()
    last = feed.closed_bars("XAUUSD", 1, NOW)
    assert feed.price_at("XAUUSD", NOW) == last.close[-1]
    assert feed.price_at("XAUUSD", NOW) == feed.closed_bars("XAUUSD", 1, NOW + 60).open[-1]


def test_bars_between_matches_closed_bars():
    feed = BuiltinFeed()
    start = LAST_CLOSED - 99 * 60
    between = feed.bars_between("XAUUSD", start - 30, NOW)
    assert digest(between) == digest(feed.closed_bars("XAUUSD", 100, NOW))
    assert len(feed.bars_between("XAUUSD", NOW + 60, NOW)) == 0


def test_any_instant_works():
    feed = BuiltinFeed()
    for when in ("1999-12-31T23:59:59", "2100-01-01T00:00:00"):
        bars = feed.closed_bars("XAUUSD", 50, parse_instant(when))
        assert len(bars) == 50 and np.all(bars.low > 0)


# How fast a fresh window is built: bench/bench_feeds.py (target < 10 ms).
def test_a_window_on_a_day_not_built_yet_is_built_the_same():
    feed = BuiltinFeed(seed=11)
    for day in range(5):
        cached = feed.closed_bars("XAUUSD", 101, NOW + day * 86_400)
        builtin._day_bars.cache_clear()
        fresh = feed.closed_bars("XAUUSD", 101, NOW + day * 86_400)
        assert len(fresh) == 101 and fresh.time[-1] == LAST_CLOSED + day * 86_400
        assert digest(fresh) == digest(cached)


def test_factory_builds_the_builtin_feed_with_its_seed():
    feed = build_feed(FeedConfig(type="builtin", seed=3), Path)
    assert isinstance(feed, BuiltinFeed) and feed.seed == 3 and feed.name == "builtin"


def test_factory_says_how_to_get_the_mt5_feed(monkeypatch):
    import scalper.feeds

    monkeypatch.setitem(sys.modules, "scalper.feeds.mt5", None)  # as when the module cannot be imported
    monkeypatch.delattr(scalper.feeds, "mt5", raising=False)
    with pytest.raises(FeedUnavailable) as err:
        build_feed(FeedConfig(type="mt5"), Path)
    assert str(err.value) == MT5_MISSING and err.value.exit_code == 3


def test_a_symbol_the_builtin_feed_does_not_know_is_refused_naming_the_nearest(tmp_path):
    """A typo on the built-in feed would trade a made-up market: refused at validation, with the
    nearest known symbol; a symbol described under `symbols:` is the trader's to make up."""
    from scalper.config import load_config
    from scalper.errors import ConfigError
    from scalper.feeds.builtin import unknown_symbol

    assert unknown_symbol("XAUSD") == "the built-in feed does not know the symbol 'XAUSD' (did you mean XAUUSD?)"
    for known in ("XAUUSD", "XAUUSDm", "gold", "EURUSD", "USDJPY", "BTCUSD", "US30", "NAS100"):
        assert unknown_symbol(known) is None, known
    path = tmp_path / "bots.yaml"
    path.write_text("accounts: [{id: 1}]\nbots: [{name: gold, symbol: XAUSD, accounts: [1]}]\n")
    with pytest.raises(ConfigError, match=r"bots\[0\]\.symbol: bot 'gold': .*'XAUSD' \(did you mean XAUUSD\?\)"):
        load_config(path)
    path.write_text("accounts: [{id: 1}]\nbots: [{name: gold, symbol: XAUSD, accounts: [1]}]\n"
                    "symbols: {XAUSD: {digits: 2, contract_size: 100}}\n")
    assert load_config(path).bot("gold").symbol == "XAUSD"
