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


@pytest.mark.parametrize("name", ["XAUUSD_M1.csv", "BTCUSD_M1.csv"])
def test_a_plain_tail_is_read_without_pandas_into_the_very_bars_pandas_gives(name, monkeypatch):
    path = shared_file(name)
    size = path.stat().st_size
    for nbytes in (1 << 12, 1 << 16, 100_003, size - 1):
        csvfile._TAILS.clear()
        plain = csvfile.load_tail(path, nbytes)
        csvfile._TAILS.clear()
        with monkeypatch.context() as m:
            m.setattr(csvfile, "_plain_tail", lambda *a: None)   # the pandas path
            by_pandas = csvfile.load_tail(path, nbytes)
        assert plain is not None and by_pandas is not None and len(plain) == len(by_pandas) > 10
        for field in ("time", "open", "high", "low", "close", "volume", "spread"):
            a, b = getattr(plain, field), getattr(by_pandas, field)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (nbytes, field)
    csvfile._TAILS.clear()


@pytest.mark.parametrize("odd", ["2025-06-04 21:25:00,3300.5,3301,3299,3300.1,abc",   # text in a number column
                                 "2025-06-04 21:25:00, 3300.5,3301,3299,3300.1,12",    # a leading space
                                 "2025-06-04 21:25,3300.5,3301,3299,3300.1,12",        # another time format
                                 "2025-06-04 21:25:00,1_000,3301,3299,3300.1,12",      # float() would take it
                                 "2025-06-04 21:25:00,3300.5,3301,3299,3300.1",        # a field short
                                 "2025-06-04 21:25:00,3300.5,3301,3299,3300.1,1e999",  # not finite
                                 ""])                                                 # a blank line
def test_a_tail_that_is_not_plain_goes_to_pandas(big, odd):
    lines = big.read_text().splitlines()
    data = ("\n".join(lines[-50:-1] + [odd, lines[-1]]) + "\n").encode()
    names = [c.strip().lower() for c in lines[0].split(",")]
    fields = {"time": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}
    assert len(names) == 6
    assert csvfile._plain_tail(big, data, ",", names, fields) is None
    bad = ("\n".join(lines[-50:-1] + [lines[-1].replace(",", ",-", 1)]) + "\n").encode()   # a negative open
    assert csvfile._plain_tail(big, bad, ",", names, fields) is csvfile.BAD_TAIL   # plain, checked: not pandas
    good = ("\n".join(lines[-50:]) + "\n").encode()
    assert len(csvfile._plain_tail(big, good, ",", names, fields)) == 50


def test_a_live_pass_on_a_plain_file_does_not_import_pandas(big):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys, json; from scalper.feeds.csvfile import CsvFeed; from pathlib import Path\n"
            "feed = CsvFeed({'XAUUSD': Path(sys.argv[1])}); now = float(sys.argv[2])\n"
            "w = feed.closed_bars('XAUUSD', 100, now); p = feed.price_at('XAUUSD', now)\n"
            "print(json.dumps([len(w), p is not None, 'pandas' in sys.modules]))")
    whole, _ = read_bars(big)
    out = subprocess.run([sys.executable, "-c", code, str(big), str(float(whole.time[-1]) + 65)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert json.loads(out) == [100, True, False]
