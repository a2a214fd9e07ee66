"""CSV bar files: the real exports, every bad-input case, the accepted formats, and CsvFeed."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from scalper.clock import bar_iso, parse_instant
from scalper.config import FeedConfig
from scalper.errors import DataError
from scalper.feeds.csvfile import CsvFeed, read_bars
from scalper.feeds.factory import build_feed

HEADER = "time,open,high,low,close,volume"
# Eight good rows, a minute apart; line numbers in the file are 2..9.
GOOD_ROWS = [
    "2025-05-15 07:35:00,3145.50,3146.62,3145.17,3146.49,103",
    "2025-05-15 07:36:00,3146.49,3146.64,3144.61,3144.81,126",
    "2025-05-15 07:37:00,3144.84,3146.29,3144.47,3146.08,198",
    "2025-05-15 07:38:00,3146.08,3146.53,3144.75,3146.45,143",
    "2025-05-15 07:39:00,3146.45,3147.10,3146.00,3146.90,120",
    "2025-05-15 07:40:00,3146.90,3146.90,3146.90,3146.90,1",
    "2025-05-15 07:43:00,3146.95,3147.40,3146.20,3147.00,88",
    "2025-05-15 07:44:00,3147.00,3147.80,3146.70,3147.60,97",
]


def write(tmp_path, lines, name="bars.csv", newline="\n", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode(encoding))
    return path


def with_row(line: int, row: str) -> list[str]:
    """The good file with file line `line` (header = 1) replaced by `row`."""
    rows = list(GOOD_ROWS)
    rows[line - 2] = row
    return [HEADER] + rows


def assert_same_bars(a, b):
    for field in ("time", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


# --- the real exports ------------------------------------------------------------
def test_xauusd_export_matches_its_readme(xau_csv):
    bars, warnings = read_bars(xau_csv)
    assert warnings == []
    assert len(bars) == 20_000
    assert bar_iso(bars.time[0]) == "2025-05-15 07:35:00"
    assert bar_iso(bars.time[-1]).startswith("2025-06-04")
    assert int(np.sum(np.diff(bars.time) > 60)) == 14
    assert int(np.sum(bars.high == bars.low)) == 1
    assert np.all(np.diff(bars.time) > 0) and np.all(bars.time % 60 == 0)
    assert (bars.open[0], bars.high[0], bars.low[0], bars.close[0], bars.volume[0]) == \
        (3145.5, 3146.62, 3145.17, 3146.49, 103.0)
    assert np.isnan(bars.spread).all()  # the file has no spread column


def test_btcusd_export_matches_its_readme(btc_csv):
    bars, warnings = read_bars(btc_csv)
    assert warnings == []
    assert len(bars) == 20_000
    assert bar_iso(bars.time[0]) == "2025-05-21 18:46:00"
    assert bar_iso(bars.time[-1]).startswith("2025-06-04")
    assert int(np.sum(np.diff(bars.time) > 60)) == 240
    assert int(np.sum(bars.high == bars.low)) == 251


# How fast: bench/bench_feeds.py (target < 0.3 s per export). Here: a second read is the same.
def test_real_exports_read_the_same_every_time(xau_csv, btc_csv):
    for path in (xau_csv, btc_csv):
        (first, w1), (second, w2) = read_bars(path), read_bars(path)
        assert w1 == w2 == []
        for field in ("time", "open", "high", "low", "close", "volume"):
            assert np.array_equal(getattr(first, field), getattr(second, field)), (path.name, field)


@pytest.mark.slow
def test_a_year_of_bars_loads(tmp_path, xau_csv):
    real = pd.read_csv(xau_csv)
    copies = 19  # 380,000 rows, cut to 370,000
    stamps = pd.to_datetime(real["time"])
    span = stamps.iloc[-1] - stamps.iloc[0] + pd.Timedelta(minutes=1)
    big = pd.concat([real.assign(time=(stamps + span * k).dt.strftime("%Y-%m-%d %H:%M:%S"))
                     for k in range(copies)]).head(370_000)
    path = tmp_path / "year.csv"
    big.to_csv(path, index=False)
    bars, warnings = read_bars(path)   # how fast: bench/bench_feeds.py (target < 3 s)
    assert warnings == []
    assert len(bars) == 370_000
    assert bar_iso(bars.time[0]) == bar_iso(parse_instant(str(real["time"].iloc[0])))


# --- valid oddities ------------------------------------------------------------------
def test_zero_range_bars_and_gaps_are_valid_and_not_filled(tmp_path):
    bars, warnings = read_bars(write(tmp_path, [HEADER] + GOOD_ROWS))
    assert warnings == []
    assert len(bars) == 8
    assert list(np.diff(bars.time)) == [60, 60, 60, 60, 60, 180, 60]
    assert bars.high[5] == bars.low[5]


def test_blank_lines_are_ignored_and_line_numbers_stay_true(tmp_path):
    lines = [HEADER, GOOD_ROWS[0], "", GOOD_ROWS[1], "2025-05-15 07:37:00,3144.84,3144.00,3144.47,3146.08,198", ""]
    path = write(tmp_path, lines)
    with pytest.raises(DataError) as err:
        read_bars(path)
    assert err.value.line == 5


# --- bad input ------------------------------------------------------------------------
BAD_ROWS = [
    # (case, line, replacement row, words the message must contain)
    ("unparseable time", 4, "2025-05-15 7h37,3144.84,3146.29,3144.47,3146.08,198", ["not a time", "7h37"]),
    ("impossible date", 4, "2025-02-30 07:37:00,3144.84,3146.29,3144.47,3146.08,198", ["not a time"]),
    ("missing time", 4, ",3144.84,3146.29,3144.47,3146.08,198", ["time", "missing value"]),
    ("missing price", 5, "2025-05-15 07:38:00,3146.08,,3144.75,3146.45,143", ["high", "missing value"]),
    ("NaN price", 5, "2025-05-15 07:38:00,3146.08,3146.53,NaN,3146.45,143", ["low", "missing value"]),
    ("short row", 5, "2025-05-15 07:38:00,3146.08,3146.53", ["low", "missing value"]),
    ("non-numeric price", 3, "2025-05-15 07:36:00,3146.49,3146.64,abc,3144.81,126", ["low", "'abc'", "not a number"]),
    ("non-numeric volume", 3, "2025-05-15 07:36:00,3146.49,3146.64,3144.61,3144.81,many", ["'many'", "not a number"]),
    ("high below low", 6, "2025-05-15 07:39:00,3146.45,3146.00,3147.10,3146.90,120", ["high 3146 < low 3147.1"]),
    ("open above high", 6, "2025-05-15 07:39:00,3148.00,3147.10,3146.00,3146.90,120", ["open 3148", "outside"]),
    ("close below low", 6, "2025-05-15 07:39:00,3146.45,3147.10,3146.00,3145.00,120", ["close 3145", "outside"]),
    ("zero price", 7, "2025-05-15 07:40:00,0,0,0,0,1", ["non-positive price"]),
    ("negative price", 7, "2025-05-15 07:40:00,-1,-1,-1,-1,1", ["non-positive price"]),
    ("negative volume", 7, "2025-05-15 07:40:00,3146.90,3146.90,3146.90,3146.90,-5", ["negative volume"]),
    ("duplicate time", 4, "2025-05-15 07:36:00,3144.84,3146.29,3144.47,3146.08,198", ["duplicate time", "line 3"]),
    ("out of order", 4, "2025-05-15 07:30:00,3144.84,3146.29,3144.47,3146.08,198", ["goes back in time", "line 3"]),
    ("extra field", 8, "2025-05-15 07:43:00,3146.95,3147.40,3146.20,3147.00,88,12", ["more fields than the header"]),
]


@pytest.mark.parametrize("case,line,row,words", BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_a_bad_row_is_named_with_its_line_and_problem(tmp_path, case, line, row, words):
    path = write(tmp_path, with_row(line, row))
    with pytest.raises(DataError) as err:
        read_bars(path)
    message = str(err.value)
    assert err.value.exit_code == 2
    assert err.value.line == line and message.startswith(f"{path}:{line}: "), message
    assert err.value.fix
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("case,line,row,words", BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_skip_bad_rows_drops_exactly_the_bad_row_with_a_warning(tmp_path, case, line, row, words):
    bars, warnings = read_bars(write(tmp_path, with_row(line, row)), skip_bad_rows=True)
    good, _ = read_bars(write(tmp_path, [HEADER] + GOOD_ROWS[:line - 2] + GOOD_ROWS[line - 1:], name="good.csv"))
    assert_same_bars(bars, good)
    assert len(warnings) == 1
    assert "skipped 1 row " in warnings[0] and f"(line {line})" in warnings[0]


def test_the_first_bad_line_is_reported_and_the_others_counted(tmp_path):
    rows = [HEADER] + GOOD_ROWS
    rows[6] = "2025-05-15 07:39:00,3146.45,3146.00,3147.10,3146.90,120"   # line 7: high < low
    rows[3] = "2025-05-15 07:37:00,3144.84,3146.29,oops,3146.08,198"      # line 4: not a number
    with pytest.raises(DataError) as err:
        read_bars(write(tmp_path, rows))
    assert err.value.line == 4
    assert "1 more bad row in the file" in str(err.value)


def test_skip_bad_rows_warns_once_per_kind_with_counts_and_first_lines(tmp_path):
    rows = [HEADER]
    for i in range(20):
        minute = f"2025-05-15 08:{i:02d}:00"
        rows.append(f"{minute},10,11,9,10.5,5")
        if i < 7:
            rows.append(f"{minute},10,11,9,10.5,5")  # 7 duplicates
    rows.append("2025-05-15 09:00:00,10,9,11,10,5")    # high < low
    bars, warnings = read_bars(write(tmp_path, rows), skip_bad_rows=True)
    assert len(bars) == 20
    assert np.all(np.diff(bars.time) == 60)
    assert len(warnings) == 2
    duplicates = next(w for w in warnings if "duplicate" in w)
    assert "skipped 7 rows" in duplicates and "(lines 3, 5, 7, 9, 11, …)" in duplicates
    assert "skipped 1 row with high < low (line 29)" in " ".join(warnings)


def test_duplicates_keep_the_first_row(tmp_path):
    rows = [HEADER, GOOD_ROWS[0], GOOD_ROWS[1], "2025-05-15 07:36:00,3146.00,3147.00,3145.00,3146.50,1", GOOD_ROWS[2]]
    bars, _ = read_bars(write(tmp_path, rows), skip_bad_rows=True)
    assert len(bars) == 3
    assert bars.close[1] == 3144.81


def test_out_of_order_drops_the_rows_that_go_back(tmp_path):
    rows = [HEADER, GOOD_ROWS[0], GOOD_ROWS[2], GOOD_ROWS[1], GOOD_ROWS[3]]  # 07:35, 07:37, 07:36, 07:38
    bars, warnings = read_bars(write(tmp_path, rows), skip_bad_rows=True)
    assert [bar_iso(t)[-8:-3] for t in bars.time] == ["07:35", "07:37", "07:38"]
    assert "(line 4)" in warnings[0]


def test_a_file_of_only_bad_rows_still_raises_when_skipping(tmp_path):
    rows = [HEADER, "2025-05-15 07:35:00,10,9,11,10,5", "2025-05-15 07:36:00,10,9,11,10,5"]
    with pytest.raises(DataError, match="every data row is bad"):
        read_bars(write(tmp_path, rows), skip_bad_rows=True)


@pytest.mark.parametrize("skip", [False, True])
def test_missing_columns_are_named_with_the_columns_found(tmp_path, skip):
    path = write(tmp_path, ["Time,Open,Close", "2025-05-15 07:35:00,10,10.5"])
    with pytest.raises(DataError) as err:
        read_bars(path, skip_bad_rows=skip)
    message = str(err.value)
    assert "missing columns high, low" in message and "the header has: Time, Open, Close" in message
    assert err.value.line == 1 and err.value.fix


def test_a_file_without_a_time_column_is_refused(tmp_path):
    with pytest.raises(DataError, match="missing column time"):
        read_bars(write(tmp_path, ["when,open,high,low,close", "2025-05-15 07:35:00,10,11,9,10"]))


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("content,words", [(b"", "the file is empty"), (b"\n\n", "the file is empty"),
                                           (b"time,open,high,low,close\n", "no data rows"),
                                           (b"time,open,high,low,close\n\n\n", "no data rows")])
def test_empty_and_header_only_files_are_refused(tmp_path, content, words, skip):
    path = tmp_path / "bars.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=words):
        read_bars(path, skip_bad_rows=skip)


def test_a_missing_file_is_bad_input(tmp_path):
    with pytest.raises(DataError, match="file not found") as err:
        read_bars(tmp_path / "nope.csv")
    assert err.value.exit_code == 2


# --- accepted formats -----------------------------------------------------------------
def _mt5_export(rows: list[str]) -> list[str]:
    out = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    for row in rows:
        stamp, *values = row.split(",")
        date, clock = stamp.split(" ")
        out.append("\t".join([date.replace("-", "."), clock, *values[:4], values[4], "0", "25"]))
    return out


def _epoch_rows(rows: list[str]) -> list[str]:
    return [str(int(parse_instant(r.split(",")[0]))) + "," + r.split(",", 1)[1] for r in rows]


FORMATS = {
    "semicolons": lambda rows: [HEADER.replace(",", ";")] + [r.replace(",", ";") for r in rows],
    "tabs": lambda rows: [HEADER.replace(",", "\t")] + [r.replace(",", "\t") for r in rows],
    "quoted lines": lambda rows: [f'"{line}"' for line in [HEADER] + rows],
    "quoted fields": lambda rows: [",".join(f'"{f}"' for f in line.split(",")) for line in [HEADER] + rows],
    "upper case, tick_volume": lambda rows: ["TIME,OPEN,HIGH,LOW,CLOSE,TICK_VOLUME"] + rows,
    "date header": lambda rows: ["Date,Open,High,Low,Close,Volume"] + rows,
    "datetime header, spaces": lambda rows: ["DateTime, Open, High, Low, Close, Volume"]
                                            + [r.replace(",", ", ") for r in rows],
    "ISO T, no seconds": lambda rows: [HEADER] + [r.replace(" ", "T").replace(":00,", ",", 1) for r in rows],
    "dotted dates": lambda rows: [HEADER] + [r.replace("-", ".", 2) for r in rows],
    "epoch seconds": lambda rows: [HEADER] + _epoch_rows(rows),
    "MT5 terminal export": _mt5_export,
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_accepted_format_reads_to_the_same_bars(tmp_path, fmt):
    reference, _ = read_bars(write(tmp_path, [HEADER] + GOOD_ROWS, name="reference.csv"))
    bars, warnings = read_bars(write(tmp_path, FORMATS[fmt](GOOD_ROWS)))
    assert warnings == []
    assert_same_bars(bars, reference)


@pytest.mark.parametrize("encoding,newline", [("utf-8-sig", "\n"), ("utf-8", "\r\n"), ("utf-16", "\r\n")])
def test_byte_order_marks_and_windows_line_ends(tmp_path, encoding, newline):
    reference, _ = read_bars(write(tmp_path, [HEADER] + GOOD_ROWS, name="reference.csv"))
    path = tmp_path / "bars.csv"
    path.write_bytes((newline.join([HEADER] + GOOD_ROWS) + newline).encode(encoding))
    bars, _ = read_bars(path)
    assert_same_bars(bars, reference)


def test_mt5_export_takes_tick_volume_and_spread(tmp_path):
    bars, _ = read_bars(write(tmp_path, _mt5_export(GOOD_ROWS)))
    assert bars.volume[0] == 103  # <TICKVOL>, not <VOL> (always 0)
    assert np.all(bars.spread == 25)


def test_errors_in_a_quoted_line_export_keep_true_line_numbers(tmp_path):
    rows = with_row(6, "2025-05-15 07:39:00,3146.45,3146.00,3147.10,3146.90,120")
    with pytest.raises(DataError) as err:
        read_bars(write(tmp_path, [f'"{line}"' for line in rows]))
    assert err.value.line == 6 and "high 3146 < low 3147.1" in str(err.value)


# --- CsvFeed ----------------------------------------------------------------------------
def test_feed_returns_only_bars_closed_at_now(xau_csv):
    feed = CsvFeed(files={"XAUUSD": xau_csv})
    bars, _ = read_bars(xau_csv)
    k = 5000
    mid_bar = float(bars.time[k]) + 30  # bar k is forming
    window = feed.closed_bars("XAUUSD", 101, mid_bar)
    assert len(window) == 101
    assert window.time[-1] == bars.time[k - 1]
    np.testing.assert_array_equal(window.close, bars.close[k - 101:k])
    at_close = feed.closed_bars("XAUUSD", 101, float(bars.time[k]) + 60)  # bar k just closed
    assert at_close.time[-1] == bars.time[k]
    assert len(feed.closed_bars("XAUUSD", 101, float(bars.time[0]))) == 0
    assert len(feed.closed_bars("XAUUSD", 50, float(bars.time[9]) + 1)) == 9


def test_feed_price_is_the_forming_bars_open(xau_csv):
    feed = CsvFeed(files={"XAUUSD": xau_csv})
    bars, _ = read_bars(xau_csv)
    assert feed.price_at("XAUUSD", float(bars.time[100]) + 59.5) == bars.open[100]
    gap = int(np.flatnonzero(np.diff(bars.time) > 60)[0])  # no bar forms inside a gap
    assert feed.price_at("XAUUSD", float(bars.time[gap]) + 120) == bars.close[gap]
    assert feed.price_at("XAUUSD", float(bars.time[0]) - 1) is None


def test_feed_bars_between_start_and_now(xau_csv):
    feed = CsvFeed(files={"XAUUSD": xau_csv})
    bars, _ = read_bars(xau_csv)
    got = feed.bars_between("XAUUSD", float(bars.time[10]), float(bars.time[20]) + 5)
    np.testing.assert_array_equal(got.time, bars.time[10:20])


def test_feed_finds_files_by_symbol_root_and_pattern(tmp_path):
    gold = write(tmp_path, [HEADER] + GOOD_ROWS, name="XAUUSD_M1.csv")
    by_root = CsvFeed(files={"XAUUSD": gold})
    assert len(by_root.closed_bars("XAUUSDm", 100, 2e9)) == 8
    by_pattern = CsvFeed(pattern=tmp_path / "{symbol}_M1.csv")
    assert len(by_pattern.closed_bars("XAUUSD.a", 100, 2e9)) == 8
    one_file = CsvFeed(pattern=gold)
    assert len(one_file.closed_bars("anything", 100, 2e9)) == 8


def test_feed_prefers_the_exact_symbol(tmp_path):
    write(tmp_path, [HEADER] + GOOD_ROWS, name="XAUUSD_M1.csv")
    write(tmp_path, [HEADER] + GOOD_ROWS[:3], name="XAUUSDm_M1.csv")
    feed = CsvFeed(pattern=tmp_path / "{symbol}_M1.csv")
    assert len(feed.closed_bars("XAUUSDm", 100, 2e9)) == 3
    assert len(feed.closed_bars("XAUUSD", 100, 2e9)) == 8


def test_feed_without_a_file_for_the_symbol_says_what_it_tried(tmp_path):
    feed = CsvFeed(files={"XAUUSD": tmp_path / "gold.csv"}, pattern=tmp_path / "{symbol}.csv")
    with pytest.raises(DataError) as err:
        feed.closed_bars("BTCUSD", 10, 2e9)
    message = str(err.value)
    assert "BTCUSD" in message and str(tmp_path / "BTCUSD.csv") in message and "feed.files" in message
    with pytest.raises(DataError, match="gold.csv"):  # mapped, but not there
        feed.closed_bars("XAUUSD", 10, 2e9)


def test_feed_loads_a_file_once_and_again_only_when_it_changes(tmp_path):
    path = write(tmp_path, [HEADER] + GOOD_ROWS)
    first = CsvFeed(files={"XAUUSD": path}).bars("XAUUSD")
    assert CsvFeed(files={"XAUUSD": path}).bars("XAUUSD") is first
    with pytest.raises(ValueError):
        first.close[0] = 1.0  # shared by every caller: read-only
    write(tmp_path, [HEADER] + GOOD_ROWS[:4])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert len(CsvFeed(files={"XAUUSD": path}).bars("XAUUSD")) == 4


def test_feed_with_a_bad_file_raises_data_error(tmp_path):
    path = write(tmp_path, with_row(4, "2025-05-15 07:36:00,3144.84,3146.29,3144.47,3146.08,198"))
    with pytest.raises(DataError, match="duplicate time"):
        CsvFeed(files={"XAUUSD": path}).closed_bars("XAUUSD", 10, 2e9)


def test_factory_builds_a_csv_feed_with_resolved_paths(tmp_path):
    write(tmp_path, [HEADER] + GOOD_ROWS, name="XAUUSD.csv")
    feed = build_feed(FeedConfig(type="csv", path="{symbol}.csv", files={"GOLD": "XAUUSD.csv"}),
                      lambda p: tmp_path / p)
    assert feed.name == "csv"
    assert feed.files == {"GOLD": tmp_path / "XAUUSD.csv"}
    assert len(feed.closed_bars("XAUUSD", 5, 2e9)) == 5
