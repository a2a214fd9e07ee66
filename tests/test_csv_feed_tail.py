"""The CSV feed reads the end of a large file: the same answers as reading it whole, the whole
file read only when its end does not hold what is asked, and a changed file read again."""

from __future__ import annotations

import os

import numpy as np
import pytest

from scalper.core.bars import BAR_SECONDS
from scalper.errors import DataError
from scalper.feeds import csvfile
from scalper.feeds.csvfile import CsvFeed, load_bars, read_bars
from tests.conftest import shared_file


@pytest.fixture
def big(tmp_path):
    """A copy of the shared gold file (1.1 MB): larger than the tail a live pass reads."""
    lines = shared_file("XAUUSD_M1.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    path = tmp_path / "XAUUSD.csv"
    path.write_text("\n".join([header] + rows) + "\n")
    return path


def _reads(monkeypatch):
    seen = []
    real = csvfile.read_bars
    monkeypatch.setattr(csvfile, "read_bars", lambda path, **kw: seen.append(path) or real(path, **kw))
    return seen


def test_live_answers_come_from_the_tail_and_equal_the_whole_file(big, monkeypatch):
    whole, _ = read_bars(big)
    csvfile._LOADED.clear()
    seen = _reads(monkeypatch)
    feed = CsvFeed({"XAUUSD": big})
    for back in (0, 1, 7, 50):
        now = float(whole.time[-1 - back]) + BAR_SECONDS + 5
        got = feed.closed_bars("XAUUSD", 100, now)
        want = whole.closed_at(now).tail(100)
        assert np.array_equal(got.time, want.time) and np.array_equal(got.close, want.close)
        # the forming bar's open, or the last close when no bar forms then
        assert feed.price_at("XAUUSD", now) == (whole.open[len(whole) - back] if back else whole.close[-1])
        start = float(whole.time[-30])
        between = feed.bars_between("XAUUSD", start, now)
        assert np.array_equal(between.time, whole.closed_at(now).between(start, None).time)
    assert seen == []   # never the whole file


def test_the_whole_file_is_read_only_when_the_tail_does_not_hold_the_answer(big, monkeypatch):
    whole, _ = read_bars(big)
    csvfile._LOADED.clear()
    seen = _reads(monkeypatch)
    feed = CsvFeed({"XAUUSD": big})
    now = float(whole.time[-1]) + BAR_SECONDS + 5
    feed.closed_bars("XAUUSD", 100, now)
    assert seen == []                                   # the tail sufficed
    early = float(whole.time[500]) + BAR_SECONDS + 5    # a replay at an earlier --now
    got = feed.closed_bars("XAUUSD", 100, early)
    assert len(seen) == 1 and np.array_equal(got.time, whole.closed_at(early).tail(100).time)
    assert feed.closed_bars("XAUUSD", 1000, now).time.tolist() == whole.tail(1000).time.tolist()


def test_an_appended_bar_is_seen_at_the_next_pass(big):
    feed = CsvFeed({"XAUUSD": big})
    whole, _ = read_bars(big)
    t = int(whole.time[-1]) + BAR_SECONDS
    now = t + BAR_SECONDS + 5
    assert feed.closed_bars("XAUUSD", 1, now).time[-1] == whole.time[-1]
    stamp = big.stat().st_mtime_ns
    with big.open("a") as f:
        f.write(f"{np.datetime64(t, 's').astype(str).replace('T', ' ')},3300.5,3301.0,3300.0,3300.9,10\n")
    os.utime(big, ns=(stamp + 1_000_000, stamp + 1_000_000))
    last = feed.closed_bars("XAUUSD", 1, now)
    assert last.time[-1] == t and last.close[-1] == 3300.9


def test_a_bad_row_in_the_tail_is_named_with_its_true_line(big):
    lines = big.read_text().splitlines()
    lines[-3] = lines[-3].replace(",", ",x", 1)
    big.write_text("\n".join(lines) + "\n")
    whole_line = len(lines) - 2
    feed = CsvFeed({"XAUUSD": big})
    with pytest.raises(DataError) as err:
        feed.closed_bars("XAUUSD", 100, 4e9)
    assert err.value.line == whole_line


def test_a_small_file_is_read_whole(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("time,open,high,low,close\n2025-05-15 07:35:00,1,2,0.5,1.5\n")
    assert csvfile.load_tail(path, csvfile.TAIL_BYTES) is None
    assert len(CsvFeed({"X": path}).closed_bars("X", 10, 4e9)) == 1
    assert load_bars(path) is not None
