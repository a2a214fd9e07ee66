"""The CSV reader streams a file through pandas in chunks of rows: what it reads and what it
reports must not depend on where the chunks fall."""

from __future__ import annotations

import numpy as np
import pytest

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
