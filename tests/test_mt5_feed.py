"""The MetaTrader 5 feed against the fake terminal (tests/fakes/mt5_fake.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from scalper.brokers.mt5 import MT5Broker
from scalper.clock import FixedClock
from scalper.config import AccountConfig, FeedConfig
from scalper.core.bars import Bars
from scalper.errors import DataError, FeedUnavailable
from scalper.feeds.csvfile import CsvFeed, read_bars
from scalper.feeds.factory import MT5_MISSING, build_feed
from scalper.feeds.mt5 import Mt5Feed
from tests.conftest import shared_file
from tests.fakes.mt5_fake import DEMO_LOGIN, DEMO_PASSWORD, DEMO_SERVER, btcusd, demo_terminal, xauusd

T0 = 1_747_735_200.0            # 2025-05-20 10:00:00 UTC


def _bars(start: float, closes: list[float]) -> Bars:
    n = len(closes)
    return Bars.from_arrays(np.arange(n) * 60 + int(start), closes, np.add(closes, 1), np.subtract(closes, 1),
                            closes, volume=np.full(n, 10.0), spread=np.full(n, 25.0))


def terminal(clock, *, server_offset_h=0.0, history=None):
    """XAUUSDm with `history` (UTC bars), and BTCUSD quoted at the clock's instant in Market Watch."""
    m = demo_terminal(clock, server_offset_h=server_offset_h, symbols=[xauusd("XAUUSDm"), btcusd(select=True)])
    if history is not None:
        m.load_bars("XAUUSDm", history)
    m.set_quote("BTCUSD", 65000.0, 65015.0)
    return m


@pytest.fixture
def clock():
    return FixedClock(T0 + 20)


@pytest.fixture
def mt5(clock):
    return terminal(clock, server_offset_h=3, history=_bars(T0 - 300, [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]))


def test_closed_bars_drop_the_forming_bar(mt5, clock):
    feed = Mt5Feed(module=mt5)
    bars = feed.closed_bars("XAUUSD", 3, clock.now())         # 10:00 is forming at 10:00:20
    assert list(bars.time) == [T0 - 180, T0 - 120, T0 - 60] and list(bars.close) == [102.0, 103.0, 104.0]


def test_a_quiet_minute_costs_no_closed_bar(mt5, clock):
    clock.instant = T0 + 65                                   # 10:01 has had no tick: 10:00 is the newest
    mt5.set_quote("BTCUSD", 65001.0, 65016.0)
    bars = Mt5Feed(module=mt5).closed_bars("XAUUSD", 3, clock.now())
    assert list(bars.time) == [T0 - 120, T0 - 60, T0]


def test_bars_are_utc_int64_with_volume_and_spread_kept(mt5, clock):
    bars = Mt5Feed(module=mt5).closed_bars("XAUUSD", 10, clock.now())
    assert bars.time.dtype == np.int64 and len(bars) == 5
    assert list(bars.volume) == [10.0] * 5 and list(bars.spread) == [25.0] * 5
    assert list(bars.high - bars.low) == [2.0] * 5


@pytest.mark.parametrize("hours", [2, 3])
def test_the_feed_gives_what_the_csv_feed_gives_from_server_stamped_bars(hours):
    """The real XAUUSD export in a terminal whose server runs `hours` ahead of UTC."""
    history, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    csv = CsvFeed(files={"XAUUSD": shared_file("XAUUSD_M1.csv")})
    clock = FixedClock(0.0)
    mt5 = terminal(clock, server_offset_h=hours, history=history)
    feed = Mt5Feed(module=mt5)
    for i in (150, 5_000, 19_990):
        clock.instant = float(history.time[i]) + 65             # a little after bar i closed
        mt5.set_quote("BTCUSD", 65000.0, 65015.0)
        now = clock.now()
        got, want = feed.closed_bars("XAUUSD", 100, now), csv.closed_bars("XAUUSD", 100, now)
        for field in ("time", "open", "high", "low", "close"):
            assert np.array_equal(getattr(got, field), getattr(want, field)), field
        between = feed.bars_between("XAUUSD", now - 1800, now)
        assert np.array_equal(between.time, csv.bars_between("XAUUSD", now - 1800, now).time)
        assert np.array_equal(between.close, csv.bars_between("XAUUSD", now - 1800, now).close)


def test_bars_between_keeps_only_closed_bars_from_start(mt5, clock):
    bars = Mt5Feed(module=mt5).bars_between("XAUUSD", T0 - 150, clock.now())
    assert list(bars.time) == [T0 - 120, T0 - 60]


def test_price_at_is_the_live_mid(mt5, clock):
    feed = Mt5Feed(module=mt5)
    assert feed.price_at("BTCUSD", clock.now()) == 65007.5
    assert feed.price_at("XAUUSD", clock.now()) is None           # in Market Watch now, but no quote yet


def test_an_unknown_symbol_is_bad_input(mt5, clock):
    with pytest.raises(DataError, match="offers no symbol NOPE") as err:
        Mt5Feed(module=mt5).closed_bars("NOPE", 10, clock.now())
    assert "exact symbol name" in str(err.value)


def test_bars_out_of_order_are_bad_data(mt5, clock, monkeypatch):
    feed = Mt5Feed(module=mt5)
    feed.closed_bars("XAUUSD", 3, clock.now())
    newest_first = mt5.copy_rates_from_pos("XAUUSDm", mt5.TIMEFRAME_M1, 0, 4)[::-1]
    monkeypatch.setattr(mt5, "copy_rates_from_pos", lambda *args: newest_first)
    with pytest.raises(DataError, match="not in strictly increasing time order"):
        feed.closed_bars("XAUUSD", 3, clock.now())


def test_failures_are_unavailable_with_the_terminals_error(mt5, clock):
    feed = Mt5Feed(module=mt5)
    feed.closed_bars("XAUUSD", 3, clock.now())
    mt5.shutdown()                                             # the terminal was closed
    with pytest.raises(FeedUnavailable, match=r"copy_rates_from_pos\(\) \(-10004 No IPC connection\)"):
        feed.closed_bars("XAUUSD", 3, clock.now())
    assert len(feed.closed_bars("XAUUSD", 3, clock.now())) == 3    # started again on the next call
    del mt5.symbols["XAUUSDm"]                                 # the broker withdrew it
    with pytest.raises(FeedUnavailable, match=r"copy_rates_from_pos\(\) failed \(-4 Terminal: Not found\)"):
        feed.closed_bars("XAUUSD", 3, clock.now())
    mt5.shutdown()
    mt5.initialize_fault = -10003                              # ... and cannot be started again
    with pytest.raises(FeedUnavailable, match=r"did not answer symbol_info\(\) \(-10004"):
        feed.price_at("BTCUSD", clock.now())
    with pytest.raises(FeedUnavailable, match="no MetaTrader 5 terminal could be found or started"):
        feed.price_at("BTCUSD", clock.now())


def test_the_feed_shares_the_brokers_terminal(mt5, clock, monkeypatch):
    monkeypatch.setenv("MT5_PW", DEMO_PASSWORD)
    account = AccountConfig(id=1, broker="mt5", login=DEMO_LOGIN, server=DEMO_SERVER, password_env="MT5_PW")
    feed = Mt5Feed(account=account, module=mt5)
    assert len(feed.closed_bars("XAUUSD", 3, clock.now())) == 3      # the feed opened it, with the account
    broker = MT5Broker.from_account(account, clock=clock, module=mt5)
    broker.connect()
    broker.close()                                             # the feed still uses the terminal
    assert mt5.terminal_info() is not None and len(feed.closed_bars("XAUUSD", 3, clock.now())) == 3


def test_the_factory_builds_the_mt5_feed_or_says_how_to_get_it(mt5, monkeypatch):
    monkeypatch.setitem(sys.modules, "MetaTrader5", mt5)
    assert isinstance(build_feed(FeedConfig(type="mt5"), Path), Mt5Feed)
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)
    with pytest.raises(FeedUnavailable) as err:
        build_feed(FeedConfig(type="mt5"), Path)
    assert str(err.value) == MT5_MISSING
