"""The CSV reader streams a file through pandas in chunks of rows: what it reads and what it
reports must not depend on where the chunks fall."""

from __future__ import annotations

import numpy as np
import pytest

from scalper.clock import bar_iso
from scalper.errors import DataError
from scalper.feeds import csvfile
from scalper.feeds.csvfile import read_bars
from tests.test_csv_bars import GOOD_ROWS, HEADER, assert_same_bars, write


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(csvfile, "CHUNK_ROWS", 3)
    monkeypatch.setattr(csvfile, "READ_BLOCK", 16)


def test_chunked_reading_gives_the_same_bars(tmp_path, small_chunks):
    path = write(tmp_path, ["", "  ", HEADER] + GOOD_ROWS[:4] + [""] + GOOD_ROWS[4:])
    bars, warnings = read_bars(path)
    assert warnings == []
    whole, _ = read_bars(write(tmp_path, [HEADER] + GOOD_ROWS, name="whole.csv"))
    assert_same_bars(bars, whole)


def test_a_bad_row_in_a_later_chunk_keeps_its_line_and_text(tmp_path, small_chunks):
    rows = [HEADER] + GOOD_ROWS
    rows[7] = rows[7].replace("3146.95", "abc")
    with pytest.raises(DataError) as err:
        read_bars(write(tmp_path, rows))
    assert err.value.line == 8 and "'abc' is not a number" in str(err.value)
    rows = [HEADER] + GOOD_ROWS
    rows[6] = "yesterday" + rows[6][19:]
    with pytest.raises(DataError) as err:
        read_bars(write(tmp_path, rows))
    assert err.value.line == 7 and "'yesterday' is not a time" in str(err.value)


def test_epoch_times_are_decided_by_the_first_time_of_the_file(tmp_path, small_chunks):
    # An integer in an ISO file is a bad time even when it starts a chunk.
    rows = [HEADER] + GOOD_ROWS
    rows[4] = "1747294920" + rows[4][19:]
    bars, warnings = read_bars(write(tmp_path, rows), skip_bad_rows=True)
    assert len(bars) == 7 and "unreadable time (line 5)" in warnings[0]


def test_an_undecodable_byte_past_the_first_block_is_named_by_offset(tmp_path, small_chunks):
    data = ("\n".join([HEADER] + GOOD_ROWS) + "\n").encode()
    path = tmp_path / "bars.csv"
    path.write_bytes(data[:100] + b"\xff" + data[101:])
    with pytest.raises(DataError, match="undecodable byte at offset 100"):
        read_bars(path)
    # A character cut between blocks still decodes.
    path.write_bytes(data[:15] + "é".encode() + data[15:])
    with pytest.raises(DataError, match="header"):
        read_bars(path)


def test_a_header_after_many_blank_lines(tmp_path):
    bars, _ = read_bars(write(tmp_path, [""] * 30_000 + [HEADER] + GOOD_ROWS))
    assert len(bars) == 8 and np.all(np.diff(bars.time) > 0)


# --- plain times read as bytes (csvfile._plain_times) ------------------------------
def _text_path_times(cells: list[str]) -> np.ndarray:
    """What the text path (pandas.to_datetime on the cells as strings) reads them as."""
    import pandas as pd

    frame = pd.DataFrame({0: pd.Series(cells, dtype=object)})
    column, _ = csvfile._time_column(frame, {"time": 0}, ["time"])
    return column.values


def _as_cells(cells: list[str]) -> np.ndarray:
    return np.array([c.encode() for c in cells], dtype=f"S{csvfile.PLAIN_TIME_BYTES}")


def test_plain_times_are_what_the_text_path_reads():
    rng = np.random.default_rng(15)
    epochs = np.concatenate([rng.integers(0, 9_214_646_400, 20_000),      # 1970 .. 2261
                             [0, 951_782_400, 951_868_799, 1_709_164_800, 4_107_542_399, 9_214_646_399]])
    cells = [bar_iso(int(e)) for e in epochs]   # leap days, month and year ends among them
    got = csvfile._plain_times(_as_cells(cells))
    assert got is not None and got.tobytes() == _text_path_times(cells).tobytes()


@pytest.mark.parametrize("cell", [
    "", "nan", "NA", "2025-02-29 07:35:00", "2025-02-30 07:35:00", "2025-13-01 07:35:00", "2025-00-10 07:35:00",
    "2025-01-00 07:35:00", "2025-01-01 24:00:00", "2025-01-01 23:60:00", "2025-01-01 23:59:60",
    "2025-01-01T07:35:00", "2025-01-01 07:35:00 ", "2025-01-01 07:35", "2025.01.01 07:35:00", "+025-01-01 07:35:00",
    " 2025-01-01 07:35:00", "2025-01-01 07:35:00Z", "1969-12-31 23:59:59", "2262-01-01 00:00:00", "1747294500",
    "2025-01-01 07:35:00.5", "2025-01-01 07:35:00" + "0" * 40, "yesterday",
])
def test_anything_but_a_plain_valid_time_goes_to_the_text_path(cell):
    assert csvfile._plain_times(_as_cells(["2025-05-15 07:35:00", cell, "2025-05-15 07:37:00"])) is None


@pytest.mark.parametrize("name", ["XAUUSD_M1.csv", "BTCUSD_M1.csv"])
def test_a_plain_file_is_read_without_strings_and_as_the_text_path_reads_it(name, monkeypatch):
    from tests.conftest import shared_file

    path = shared_file(name)
    plain = csvfile._parse_bars(path, False)
    used = []
    real = csvfile._plain_time_chunks
    monkeypatch.setattr(csvfile, "_plain_time_chunks", lambda *a: used.append(real(*a)) and None)
    text = csvfile._parse_bars(path, False)
    assert used and used[0] is not None   # the plain path takes the file (and is refused here)
    for f in ("time", "open", "high", "low", "close", "volume", "spread"):
        assert getattr(plain[0], f).tobytes() == getattr(text[0], f).tobytes(), f
    assert plain[1] == text[1] == []


def test_a_bad_time_after_plain_chunks_is_named_as_before(tmp_path, small_chunks):
    rows = [HEADER] + GOOD_ROWS
    rows[8] = "2025-05-15 07:44:60" + rows[8][19:]
    with pytest.raises(DataError) as err:
        read_bars(write(tmp_path, rows))
    assert err.value.line == 9 and "'2025-05-15 07:44:60' is not a time" in str(err.value)
    bars, warnings = read_bars(write(tmp_path, rows, name="again.csv"), skip_bad_rows=True)
    assert len(bars) == 7 and "unreadable time (line 9)" in warnings[0]
