"""Bar files (CSV): reading them with precise errors, and the CSV feed.

The contract is docs/cli.md, "CSV bar files". A file is parsed once with
pandas and then validated on whole columns; only when something is wrong do we
go looking for the first offending line, so that a good 370,000-row file costs
one parse and a handful of numpy passes.

Line numbers in messages are physical lines of the file (the header is line 1),
so a user can open the file at the line we name.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scalper.clock import bar_iso
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.core.sim import latest_price
from scalper.errors import DataError, quote
from scalper.feeds import plausible
from scalper.memory import give_back
from scalper.symbols import root_symbol

if TYPE_CHECKING:
    import pandas as pd  # imported where a file is parsed: a cached file never needs it (bar_cache)

PRICE_FIELDS = ("open", "high", "low", "close")
# Header names, after lower-casing and stripping <angle brackets>, quotes and
# spaces. The first name present wins: MT5 exports carry both <TICKVOL> and
# <VOL> (real volume, usually 0), and tick volume is the one we want.
TIME_NAMES = ("time", "datetime", "timestamp", "date")
VOLUME_NAMES = ("tick_volume", "tickvol", "volume")
SPREAD_NAMES = ("spread",)
SEPARATORS = (",", ";", "\t")
EPOCH_MAX = 10**10  # epoch seconds past this (year 2286) are really milliseconds or garbage

HEADER_FIX = ("start the file with a header line naming time (or date/datetime), open, high, low, close "
              "and optionally tick_volume/volume and spread, separated by commas, semicolons or tabs")
TIME_FORMATS = "'YYYY-MM-DD HH:MM:SS', 'YYYY.MM.DD HH:MM' or integer epoch seconds"
SKIP_HINT = "or drop bad rows with --skip-bad-rows where the command offers it"


# --- reading ------------------------------------------------------------------
def read_bars(path: str | Path, *, skip_bad_rows: bool = False) -> tuple[Bars, list[str]]:
    """Read an M1 bar file. Returns (bars, warnings).

    Bad rows raise DataError naming the line and the problem, or, with
    `skip_bad_rows`, are dropped with one warning per kind of problem. A file
    without the required columns or without data rows always raises.
    The parsed columns are kept in the bar cache (scalper.feeds.bar_cache): an unchanged file
    is read back from it, without a parse.
    """
    from scalper.feeds import bar_cache

    slot = bar_cache.slot(path, skip_bad_rows)
    cached = slot.load() if slot is not None else None
    if cached is not None:
        return cached
    bars, warnings = _parse_bars(path, skip_bad_rows)
    if slot is not None:
        slot.store(bars, warnings)
    return bars, warnings


def _parse_bars(path: str | Path, skip_bad_rows: bool) -> tuple[Bars, list[str]]:
    table = _BarTable.parse(Path(path))
    problems = table.problems()
    if problems and not skip_bad_rows:
        raise table.first_error(problems)
    keep = ~table.blank
    for _, rows in problems:
        keep[rows] = False
    if not keep.any():
        raise DataError("no valid bars: every data row is bad", path=str(table.path),
                        fix="check that this is an M1 bar file; " + "; ".join(table.warnings(problems)))
    bars, warnings = table.bars(keep), table.warnings(problems)
    del table
    give_back()   # the parse's temporaries
    return bars, warnings


@dataclass
class _Column:
    """One parsed column: its header name as written, float values, and the raw text of the
    cells that could not be read (by row), for messages."""

    name: str
    values: np.ndarray
    missing: np.ndarray     # empty cell
    unreadable: np.ndarray  # a cell that is not a number / not a time
    raw: dict[int, object]  # row -> cell as parsed (text, or a number), for unreadable cells only
    index: int | None = None  # the column's position in a line (None: built from two columns)

    @classmethod
    def of(cls, name: str, values: np.ndarray, missing: np.ndarray, unreadable: np.ndarray,
           cells: pd.Series, index: int | None = None) -> _Column:
        rows = np.flatnonzero(unreadable)
        return cls(name, values, missing, unreadable, dict(zip(rows.tolist(), cells.iloc[rows].tolist())), index)

    @classmethod
    def join(cls, field: str, chunks: list[_Chunk]) -> _Column:
        """One column from the same column of consecutive chunks of rows."""
        parts = [c.columns[field] for c in chunks]
        if len(parts) == 1:
            return parts[0]
        raw: dict[int, object] = {}
        offset = 0
        for chunk, part in zip(chunks, parts):
            raw.update((row + offset, cell) for row, cell in part.raw.items())
            offset += len(chunk.blank)
        return cls(parts[0].name, np.concatenate([p.values for p in parts]),
                   np.concatenate([p.missing for p in parts]), np.concatenate([p.unreadable for p in parts]),
                   raw, parts[0].index)


@dataclass
class _Chunk:
    """Consecutive data rows, parsed: blank lines and the columns."""

    blank: np.ndarray
    columns: dict[str, _Column]
    epoch: bool | None      # times as integer epoch seconds (None: no time seen yet)

    @classmethod
    def of(cls, frame: pd.DataFrame, fields: dict[str, int], names: list[str],
           epoch: bool | None = None, times: np.ndarray | None = None) -> _Chunk:
        """`times`: the time column already read (_plain_times), every cell a good time."""
        if times is None:
            time_column, epoch = _time_column(frame, fields, names, epoch)
        else:
            none = np.zeros(len(times), dtype=bool)
            time_column = _Column(names[fields["time"]], times, none, none, {})
        columns = {"time": time_column}
        columns.update((f, _numeric_column(names[i], frame[i], i)) for f, i in fields.items()
                       if f not in ("time", "date"))
        return cls(_blank_rows(frame), columns, epoch)


@dataclass
class _BarTable:
    """A parsed, not yet validated bar file. Row i is line `first_line + i` of the file."""

    path: Path
    first_line: int
    blank: np.ndarray        # empty lines: ignored
    too_wide: np.ndarray     # row indices with more fields than the header
    n_header_fields: int
    columns: dict[str, _Column]  # time, open, high, low, close[, volume][, spread]
    sep: str = ","
    good: np.ndarray | None = None  # rows that passed the per-row checks (set by problems())

    # -- parsing --
    @classmethod
    def parse(cls, path: Path) -> _BarTable:
        import pandas as pd

        encoding = _check_text(path)
        header_line, quoted, sep, names, fields = _header(path, _head(path, encoding))
        chunks: list[_Chunk] | None = None
        if not quoted and encoding != "utf-16":
            try:  # the common case: the bytes streamed through pandas in chunks
                chunks = _plain_time_chunks(path, sep, names, fields, header_line)
                if chunks is None:   # some time is not plain: pandas reads them all as text
                    chunks, epoch = [], None
                    with open_regular_file(path) as source:
                        for frame in _read_chunks(source, sep, names, fields, header_line):
                            chunks.append(_Chunk.of(frame, fields, names, epoch))
                            epoch = chunks[-1].epoch
                too_wide = np.zeros(0, dtype=np.int64)
            except pd.errors.ParserError:
                chunks = None  # rows wider than the header, a quote never closed: the careful path
        if chunks is None:
            text = _read_text(path)
            body = text.lstrip()
            if quoted:
                body = "\n".join(_unquote_line(line) for line in _LINE_END.split(body))
            frame, too_wide = _read_frame(path, body, sep, names, fields)
            del text, body
            chunks = [_Chunk.of(frame, fields, names)]
        blank = np.concatenate([c.blank for c in chunks])
        blank[too_wide] = False
        if blank.all():
            raise DataError("no bars: the file has a header line but no data rows", path=str(path),
                            fix="export some bars below the header line")
        columns = {}
        for f in list(chunks[0].columns):   # one column at a time, its parts let go as it is joined
            columns[f] = _Column.join(f, chunks)
            for chunk in chunks:
                del chunk.columns[f]
        return cls(path, header_line + 1, blank, too_wide, len(names), columns, sep)

    # -- validation --
    def problems(self) -> list[tuple[str, np.ndarray]]:
        """(kind, row indices) for each kind of bad row found; a row counts once, under its first problem."""
        c = self.columns
        n = len(self.blank)
        o, h, lo, cl = (c[f].values for f in PRICE_FIELDS)
        counts = [c[f].values for f in ("volume", "spread") if f in c]
        with np.errstate(invalid="ignore"):
            checks = [
                ("too_wide", _mask_of(self.too_wide, n)),
                ("missing", np.logical_or.reduce([col.missing for col in c.values()])),
                ("bad_time", c["time"].unreadable),
                ("not_number", np.logical_or.reduce([col.unreadable for col in c.values()])),
                ("non_positive", np.minimum.reduce([o, h, lo, cl]) <= 0),
                ("high_below_low", h < lo),
                ("outside_range", (o < lo) | (o > h) | (cl < lo) | (cl > h)),
                ("too_large", plausible.too_large(o, h, lo, cl)),
                ("wide_bar", plausible.wide_bar(h, lo)),
                ("negative", np.logical_or.reduce([v < 0 for v in counts]) if counts else np.zeros(n, bool)),
            ]
        bad = self.blank.copy()
        found = []
        for kind, mask in checks:
            rows = np.flatnonzero(mask & ~bad)
            bad[rows] = True
            found.append((kind, rows))
        self.good = np.flatnonzero(~bad)
        found += self._spike_problems()
        found += self._order_problems()
        return [(kind, rows) for kind, rows in found if len(rows)]

    def _spike_problems(self) -> list[tuple[str, np.ndarray]]:
        """Good rows priced far away from the rows around them (see scalper.feeds.plausible);
        they leave the good rows."""
        good = self._good_rows()
        h, lo, cl = (self.columns[f].values[good] for f in ("high", "low", "close"))
        spike = plausible.spikes(h, lo, cl)
        rows = good[spike]
        self.good = good[~spike]
        return [("spike", rows)]

    def _order_problems(self) -> list[tuple[str, np.ndarray]]:
        """Duplicate times (the first is kept) and rows that go back in time, among good rows."""
        good = self._good_rows()
        t = self.columns["time"].values[good]
        if len(t) < 2 or bool(np.all(t[1:] > t[:-1])):   # the usual file: strictly rising times
            return [("duplicate", good[:0]), ("out_of_order", good[:0])]
        import pandas as pd

        duplicate = pd.Series(t).duplicated(keep="first").to_numpy()
        latest_before = np.concatenate(([-np.inf], np.maximum.accumulate(t)[:-1]))
        backwards = (t < latest_before) & ~duplicate
        return [("duplicate", good[duplicate]), ("out_of_order", good[backwards])]

    def _good_rows(self) -> np.ndarray:
        """The rows that passed the checks so far; problems() sets them before anything reads them."""
        if self.good is None:
            raise RuntimeError("_BarTable.problems() must run first")
        return self.good

    # -- reporting --
    def line(self, row: int) -> int:
        return self.first_line + int(row)

    def first_error(self, problems: list[tuple[str, np.ndarray]]) -> DataError:
        kind, rows = min(problems, key=lambda p: p[1][0])
        row = int(rows[0])
        where, message, fix = self._explain(kind, row)
        others = sum(len(r) for _, r in problems) - 1
        if others:
            message += f" ({others} more bad row{'s' if others > 1 else ''} in the file)"
        return DataError(message, path=str(self.path), line=self.line(row), where=where, fix=fix)

    def warnings(self, problems: list[tuple[str, np.ndarray]]) -> list[str]:
        out = []
        for kind, rows in problems:
            shown = ", ".join(str(self.line(r)) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
            plural = "s" if len(rows) > 1 else ""
            out.append(f"{self.path}: skipped {len(rows)} row{plural} with {_KIND_LABELS[kind]} "
                       f"(line{plural} {shown})")
        return out

    def _explain(self, kind: str, row: int) -> tuple[str | None, str, str]:
        """(where, message, fix) for bad row `row`, whose first problem is `kind`."""
        c = self.columns
        fix = f"correct or delete line {self.line(row)}, {SKIP_HINT}"
        if kind == "too_wide":
            return None, f"the row has more fields than the header's {self.n_header_fields}", fix
        if kind == "missing":
            col = next(col for col in c.values() if col.missing[row])
            return col.name, "missing value", fix
        if kind in ("bad_time", "not_number"):
            col = next(col for col in c.values() if col.unreadable[row])
            written = self._as_written(col, row)
            if kind == "bad_time":
                what = f"a time (expected {TIME_FORMATS})"
            else:
                what = "a finite number" if _is_float(written) else "a number"
            return col.name, f"{quote(written)} is not {what}", fix
        value = {f: col.values[row] for f, col in c.items()}
        if kind == "non_positive":
            field = next(f for f in PRICE_FIELDS if value[f] <= 0)
            return c[field].name, f"non-positive price {_num(value[field])}", fix
        if kind == "high_below_low":
            return None, f"high {_num(value['high'])} < low {_num(value['low'])}", fix
        if kind == "outside_range":
            field = "open" if not value["low"] <= value["open"] <= value["high"] else "close"
            return None, (f"{field} {_num(value[field])} is outside "
                          f"[low {_num(value['low'])}, high {_num(value['high'])}]"), fix
        if kind == "too_large":
            field = next(f for f in PRICE_FIELDS if value[f] > plausible.PRICE_MAX)
            return c[field].name, (f"implausible price {_num(value[field])}: above "
                                   f"{plausible.PRICE_MAX:.0e}, more than any instrument is quoted at"), fix
        if kind == "wide_bar":
            return None, (f"implausible bar: high {_num(value['high'])} is more than "
                          f"{plausible.JUMP_FACTOR:g}x low {_num(value['low'])} within one minute"), fix
        if kind == "spike":
            good = self._good_rows()
            near = good[np.abs(good - row) <= plausible.NEIGHBOUR_WINDOW // 2]
            ref = float(np.median(c["close"].values[near])) if len(near) else float("nan")
            field = max(PRICE_FIELDS, key=lambda f: max(value[f] / ref, ref / value[f]))
            return c[field].name, (f"implausible price {_num(value[field])}: more than "
                                   f"{plausible.JUMP_FACTOR:g}x away from the bars around it (median close "
                                   f"{_num(ref)})"), fix
        if kind == "negative":
            field = next(f for f in ("volume", "spread") if f in value and value[f] < 0)
            return c[field].name, f"negative {field} {_num(value[field])}", fix
        t = c["time"].values
        good = self._good_rows()
        earlier = good[good < row]
        if kind == "duplicate":
            first = int(earlier[t[earlier] == t[row]][0])
            return None, f"duplicate time {bar_iso(int(t[row]))} (first at line {self.line(first)})", \
                f"delete one of lines {self.line(first)} and {self.line(row)}, {SKIP_HINT}"
        latest = int(earlier[np.argmax(t[earlier])])
        return None, (f"time {bar_iso(int(t[row]))} goes back in time: line {self.line(latest)} is already at "
                      f"{bar_iso(int(t[latest]))}"), f"sort the rows by time, {SKIP_HINT}"

    def _as_written(self, col: _Column, row: int) -> str:
        """The cell as the file has it: pandas may have read a whole column as numbers, and a
        2 MB run of digits as inf. Error path only: the line is read again from the file."""
        cell = col.raw.get(row)
        if isinstance(cell, str) or col.index is None:
            return str(cell)
        try:
            lines = _LINE_END.split(_read_text(self.path))
            fields = lines[self.line(row) - 1].split(self.sep)
            return fields[col.index].strip()
        except (DataError, IndexError):
            return str(cell)

    def bars(self, keep: np.ndarray) -> Bars:
        c = self.columns
        every = bool(keep.all())  # no copies of a good file's columns

        def kept(field: str) -> np.ndarray:
            return c[field].values if every else c[field].values[keep]

        return Bars.from_arrays(
            kept("time").astype(np.int64), kept("open"), kept("high"), kept("low"), kept("close"),
            volume=kept("volume") if "volume" in c else None,
            spread=kept("spread") if "spread" in c else None)


_KIND_LABELS = {
    "too_wide": "more fields than the header",
    "missing": "a missing value",
    "bad_time": "an unreadable time",
    "not_number": "a value that is not a number",
    "non_positive": "a non-positive price",
    "high_below_low": "high < low",
    "outside_range": "open or close outside [low, high]",
    "negative": "a negative volume or spread",
    **plausible.KIND_LABELS,
    "duplicate": "a duplicate time (the first was kept)",
    "out_of_order": "a time that goes back (rows must be sorted by time)",
}
# pandas ends lines at "\r\n", "\n" and "\r"; so do we, to keep line numbers in step.
_LINE_END = re.compile(r"\r\n|\r|\n")


# --- helpers --------------------------------------------------------------------
READ_BLOCK = 1 << 20          # bytes per block when checking that a file is text
CHUNK_ROWS = 32_768           # rows per pandas chunk: the parse never holds the whole file as text


def _open_error(path: Path, exc: OSError) -> DataError:
    if isinstance(exc, FileNotFoundError):
        return DataError("file not found", path=str(path), fix="check the path (a relative --data path is "
                         "read from the current folder; one in bots.yaml from that file's folder)")
    return DataError(f"cannot read the file: {exc.strerror or exc}", path=str(path),
                     fix="check that it is a readable file")


def _check_text(path: Path) -> str:
    """The file's encoding ("utf-16" with its byte-order mark, else "utf-8-sig"), after checking,
    block by block, that it decodes: ASCII blocks cost one C scan, the rest are decoded."""
    import codecs

    try:
        with open_regular_file(path) as f:   # a FIFO or a device refused before any read
            first = f.read(READ_BLOCK)
            if first[:2] in (b"\xff\xfe", b"\xfe\xff"):
                return "utf-16"  # some Windows tools save UTF-16; decoded whole by the careful path
            decoder, offset, block = None, 0, first
            while block:
                if decoder is None and block.isascii():
                    offset += len(block)
                else:
                    decoder = decoder or codecs.getincrementaldecoder("utf-8-sig")()
                    _decode_block(decoder, block, offset, path)
                    offset += len(block)
                block = f.read(READ_BLOCK)
            if decoder is not None:
                _decode_block(decoder, b"", offset, path, final=True)
    except OSError as exc:
        raise _open_error(path, exc) from None
    return "utf-8-sig"


def _decode_block(decoder, block: bytes, offset: int, path: Path, final: bool = False) -> None:
    pending = len(decoder.getstate()[0])  # bytes of a character cut by the previous block
    try:
        decoder.decode(block, final=final)
    except UnicodeDecodeError as exc:
        raise DataError(f"not a text file (undecodable byte at offset {offset - pending + exc.start})",
                        path=str(path), fix="save the bar file as UTF-8 CSV") from None


def _header(path: Path, head: str) -> tuple[int, bool, str, list[str], dict[str, int]]:
    """From the start of the file: the header's line number, whether lines are quoted whole,
    the separator, the column names and the field -> column index."""
    body = head.lstrip()
    if not body:
        raise DataError("the file is empty", path=str(path), fix=HEADER_FIX)
    header_line = len(_LINE_END.findall(head[:len(head) - len(body)])) + 1
    header = _LINE_END.split(body, maxsplit=1)[0]
    quoted = _is_quoted_line_export(header)
    if quoted:
        header = _unquote_line(header)
    sep = max(SEPARATORS, key=header.count)
    names = [_clean_name(name) for name in header.split(sep)]
    return header_line, quoted, sep, names, _pick_fields(names, path, header_line)


def _head(path: Path, encoding: str) -> str:
    """The start of the file as text, through its first line that is not blank (the header)."""
    if encoding == "utf-16":
        return _read_text(path)
    size = 1 << 16
    while True:
        try:
            with open_regular_file(path) as f:
                data = f.read(size)
        except OSError as exc:
            raise _open_error(path, exc) from None
        text = data.decode("utf-8-sig", errors="ignore")  # checked already; a cut character is harmless
        body = text.lstrip()
        if len(data) < size or _LINE_END.search(body):
            return text
        size *= 4


def _read_chunks(source, sep: str, names: list[str], fields: dict[str, int], header_line: int,
                 time_dtype: str | type[object] = object):
    """The data rows (every line after the header, blank lines included, columns numbered), as
    DataFrames of CHUNK_ROWS rows; raises pandas' ParserError on a row wider than the header."""
    import pandas as pd

    return pd.read_csv(source, sep=sep, header=None, skiprows=header_line, names=range(len(names)),
                       index_col=False, skip_blank_lines=False, skipinitialspace=True, encoding="utf-8",
                       dtype={fields[f]: time_dtype for f in ("time", "date") if f in fields}, chunksize=CHUNK_ROWS)


# The plain time, 'YYYY-MM-DD HH:MM:SS': read from the cells' bytes by numpy, without a Python
# string per cell (most of the parse's time). PLAIN_TIME_BYTES holds one with room to see a longer cell.
PLAIN_TIME_BYTES = 32
_PLAIN_LOW = np.frombuffer(b"0000-00-00 00:00:00", dtype=np.uint8)    # each character between these
_PLAIN_HIGH = np.frombuffer(b"9999-99-99 99:99:99", dtype=np.uint8)
_PLAIN_SPAN = (np.datetime64("1970-01-01", "s"), np.datetime64("2262-01-01", "s"))   # pandas' ns stamps


def _plain_time_chunks(path: Path, sep: str, names: list[str], fields: dict[str, int],
                       header_line: int) -> list[_Chunk] | None:
    """The file's chunks with the time column read as bytes (_plain_times); None as soon as a
    cell is anything but a plain, valid time (empty, another format, a bad date): the file is
    then read with the times as text, which explains what is wrong with them."""
    import pandas as pd

    if "date" in fields:
        return None
    chunks = []
    try:
        with open_regular_file(path) as source:
            for frame in _read_chunks(source, sep, names, fields, header_line, f"S{PLAIN_TIME_BYTES}"):
                times = _plain_times(frame[fields["time"]].to_numpy())
                if times is None:
                    return None
                chunks.append(_Chunk.of(frame, fields, names, False, times))
    except pd.errors.ParserError:
        raise   # the rows themselves: the careful path explains them
    except (ValueError, TypeError, UnicodeError):
        return None   # a cell pandas would not give as bytes: the text path reads (and explains) it
    return chunks or None


def _plain_times(cells: np.ndarray) -> np.ndarray | None:
    """Epoch seconds (float) of byte cells that are all plain times ('YYYY-MM-DD HH:MM:SS', a
    real date and time from 1970 on, read as UTC) — what the text path's pandas.to_datetime
    gives them; None when one is not (the text path then reads them all)."""
    if cells.dtype != np.dtype(f"S{PLAIN_TIME_BYTES}") or not len(cells):
        return None
    chars = cells.view(np.uint8).reshape(len(cells), PLAIN_TIME_BYTES)
    if chars[:, 19:].any():
        return None   # longer than a plain time
    head = chars[:, :19]
    if not (bool(np.all(head >= _PLAIN_LOW)) and bool(np.all(head <= _PLAIN_HIGH))):
        return None   # a character that is not the digit or the mark of its place
    try:   # the layout is fixed above; numpy refuses a month, day, hour, minute or second out of range
        stamps = cells.astype("datetime64[s]")
    except ValueError:
        return None
    if not bool(np.all((stamps >= _PLAIN_SPAN[0]) & (stamps < _PLAIN_SPAN[1]))):
        return None
    seconds: np.ndarray = stamps.astype(np.int64).astype(np.float64)
    return seconds


def open_regular_file(path: Path):
    """`path` opened for binary reading, refused (DataError) unless it is a regular file.

    Decided before opening (a FIFO would block the open, then the read, for good;
    /dev/zero would fill the memory; a directory gives a cryptic error) and again on the
    descriptor, opened non-blocking. Raises OSError for the caller to explain (missing, no access)."""
    import os
    import stat

    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _not_a_regular_file(path, mode)
    # checked again on the descriptor: the path may have been swapped in between
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_a_regular_file(path, mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _not_a_regular_file(path: Path, mode: int) -> DataError:
    import stat

    kind = ("a directory" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    return DataError(f"not a bar file: it is {kind}", path=str(path),
                     fix="point --data (or the feed's path) at a CSV file saved on disk")


def _read_text(path: Path) -> str:
    try:
        with open_regular_file(path) as f:
            data = f.read()
    except OSError as exc:
        raise _open_error(path, exc) from None
    # Some Windows tools save UTF-16 with a byte-order mark; everything else is UTF-8 (BOM or not).
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"not a text file (undecodable byte at offset {exc.start})", path=str(path),
                        fix="save the bar file as UTF-8 CSV") from None


def _read_frame(path: Path, body: str, sep: str, names: list[str],
                fields: dict[str, int]) -> tuple[pd.DataFrame, np.ndarray]:
    """The data rows as a DataFrame (one row per line after the header, blank lines included,
    columns numbered), and the rows that had more fields than the header."""
    import pandas as pd

    def parse(text: str) -> pd.DataFrame:
        # low_memory=False: type each column over the whole file, not chunk by chunk.
        return pd.read_csv(io.StringIO(text), sep=sep, header=None, skiprows=1, names=range(len(names)),
                           index_col=False, skip_blank_lines=False, skipinitialspace=True, low_memory=False,
                           dtype={fields[f]: object for f in ("time", "date") if f in fields})
    try:
        return parse(body), np.zeros(0, dtype=np.int64)
    except pd.errors.ParserError:
        pass
    # Rows wider than the header stop pandas; blank them, parse again, report them as bad rows.
    lines = _LINE_END.split(body)
    too_wide = [i - 1 for i, line in enumerate(lines) if i and line.count(sep) >= len(names)]
    for row in too_wide:
        lines[row + 1] = ""
    try:
        return parse("\n".join(lines)), np.array(too_wide, dtype=np.int64)
    except pd.errors.ParserError as exc:  # e.g. a quote that never closes
        raise DataError(f"cannot parse the file: {quote(str(exc), 200)}", path=str(path),
                        fix='look for a double quote (") that is never closed') from None


def _is_quoted_line_export(header: str) -> bool:
    """`"time,open,high,low,close"`: each whole line quoted, as some spreadsheet exports do."""
    s = header.strip()
    return len(s) > 1 and s[0] == s[-1] == '"' and s.count('"') == 2


def _unquote_line(line: str) -> str:
    s = line.strip()
    return s[1:-1] if len(s) > 1 and s[0] == s[-1] == '"' else line


def _clean_name(name: str) -> str:
    return name.strip().strip('"').strip()


def _key(name: str) -> str:
    """`<TICKVOL>` → `tickvol`, `Tick Volume` → `tick_volume`."""
    return re.sub(r"[\s\-]+", "_", name.strip("<>").strip().lower())


def _pick_fields(names: list[str], path: Path, header_line: int) -> dict[str, int]:
    """Field → column index. The time comes from one column, or from <DATE> and <TIME> together."""
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(_key(name), i)
    fields = {}
    if "date" in index and "time" in index:
        fields["date"], fields["time"] = index["date"], index["time"]
    else:
        found = next((index[n] for n in TIME_NAMES if n in index), None)
        if found is not None:
            fields["time"] = found
    fields.update((f, index[f]) for f in PRICE_FIELDS if f in index)
    missing = [f for f in ("time",) + PRICE_FIELDS if f not in fields]
    if missing:
        raise DataError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                        f"the header has: {_header_names(names)}",
                        path=str(path), line=header_line, fix=HEADER_FIX)
    for field, aliases in (("volume", VOLUME_NAMES), ("spread", SPREAD_NAMES)):
        found = next((index[n] for n in aliases if n in index), None)
        if found is not None:
            fields[field] = found
    return fields


def _header_names(names: list[str], most: int = 12) -> str:
    """The header's names for a message: plain when short and printable, else quoted and cut."""
    shown = [n if n.isprintable() and len(n) <= 40 else quote(n, 40) for n in names if n]
    more = f", … ({len(shown) - most} more)" if len(shown) > most else ""
    return ", ".join(shown[:most]) + more if shown else "nothing"


def _numeric_column(name: str, cells: pd.Series, index: int | None = None) -> _Column:
    import pandas as pd
    from pandas.api.types import is_numeric_dtype

    if is_numeric_dtype(cells.dtype):
        values = cells.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values)
    else:  # some cell is not a number, so pandas kept the text
        missing = cells.isna().to_numpy()
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return _Column.of(name, values, missing, ~np.isfinite(values) & ~missing, cells, index)


def _time_column(frame: pd.DataFrame, fields: dict[str, int], names: list[str],
                 epoch: bool | None = None) -> tuple[_Column, bool | None]:
    """Open times as float epoch seconds (NaN where unreadable), the file's wall clock read as UTC,
    and whether they are written as epoch seconds: the file's first time decides (`epoch`, once
    an earlier chunk of the file saw one)."""
    import pandas as pd

    cells = frame[fields["time"]]
    name = names[fields["time"]]
    if "date" in fields:  # MT5 terminal export: <DATE> 2025.05.15, <TIME> 07:35:00
        cells = frame[fields["date"]].str.strip().str.cat(cells.str.strip(), sep=" ")
        name = f"{names[fields['date']]}+{name}"
    missing = cells.isna().to_numpy()
    present = cells[~missing]
    if epoch is None and len(present):
        epoch = re.fullmatch(r"\s*\d+\s*", present.iloc[0]) is not None
    if epoch:
        values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        values[(values % 1 != 0) | (values < 0) | (values >= EPOCH_MAX)] = np.nan
    else:
        # ISO 8601 in pandas also takes 'YYYY.MM.DD HH:MM' and a missing seconds field.
        stamps = pd.to_datetime(cells, format="ISO8601", utc=True, errors="coerce").dt.tz_convert(None)
        ok = stamps.notna().to_numpy()
        values = np.full(len(cells), np.nan)
        values[ok] = stamps[ok].to_numpy().astype("datetime64[s]").astype(np.int64)
    return _Column.of(name, values, missing, np.isnan(values) & ~missing, cells), epoch


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose every cell is empty: numeric columns first (cheap), text cells only where
    those are all empty."""
    from pandas.api.types import is_numeric_dtype

    blank = np.ones(len(frame), dtype=bool)
    text = []
    for col in frame.columns:
        cells = frame[col]
        if is_numeric_dtype(cells.dtype):
            blank &= np.isnan(cells.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            text.append(cells)
    for cells in text:
        rows = np.flatnonzero(blank)
        if not len(rows):
            break
        blank[rows] = cells.iloc[rows].isna().to_numpy()
    return blank


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _num(x: float) -> str:
    """A price as written in the file: 108762.68, not 108763 (:g) nor np.float64(108762.68)."""
    return f"{x:.15g}"


def _mask_of(rows: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


# --- the feed ---------------------------------------------------------------------
# Files loaded by this process, keyed by resolved path; reloaded only if the file changes.
_LOADED: dict[Path, tuple[tuple[int, int], Bars]] = {}
# Tails read by this process: (path, bytes from the end) -> (file version, bars).
_TAILS: dict[tuple[Path, int], tuple[tuple[int, int], Bars | None]] = {}
TAIL_BYTES = 1 << 16        # a live pass reads this much of the end of a file first
TAIL_LINE_BYTES = 160       # room per bar when a window needs more


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def load_bars(path: Path) -> Bars:
    """read_bars, once per process per file version (bad rows raise)."""
    key = path.resolve()
    stamp = _stamp(key)
    cached = _LOADED.get(key)
    if cached is None or cached[0] != stamp:
        bars, _ = read_bars(key)
        for array in vars(bars).values():
            array.flags.writeable = False  # every caller gets views of these arrays
        _LOADED[key] = cached = (stamp, bars)
    return cached[1]


def load_tail(path: Path, nbytes: int) -> Bars | None:
    """The bars in the last `nbytes` of the file (from its first whole line there), once per
    process per file version; None when the file is not larger (read it whole), or when the
    tail cannot be read on its own — a UTF-16 or quoted-line export, a row this fast path
    does not parse, a bad row: the whole file is read then, and names the line."""
    key = path.resolve()
    try:
        stamp = _stamp(key)
    except OSError as exc:
        raise _open_error(path, exc) from None
    if stamp[1] <= nbytes:
        return None
    cached = _TAILS.get((key, nbytes))
    if cached is None or cached[0] != stamp:
        bars = _read_tail(key, nbytes, stamp[1])
        if bars is not None:
            for array in vars(bars).values():
                array.flags.writeable = False
        _TAILS[(key, nbytes)] = cached = (stamp, bars)
    return cached[1]


def _read_tail(path: Path, nbytes: int, size: int) -> Bars | None:
    try:
        with open_regular_file(path) as f:
            start = f.read(READ_BLOCK)
            f.seek(size - nbytes)
            data = f.read(nbytes)
    except OSError as exc:
        raise _open_error(path, exc) from None
    if start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    cut = min((k for k in (data.find(b"\n"), data.find(b"\r")) if k >= 0), default=-1)
    if cut < 0:
        return None
    data = data[cut + 1:].lstrip(b"\r\n")   # from the first whole line
    try:
        if not data.isascii():
            data.decode("utf-8")
        _, quoted, sep, names, fields = _header(path, start.decode("utf-8-sig", errors="ignore"))
    except (UnicodeDecodeError, DataError):
        return None
    if quoted:
        return None
    plain = _plain_tail(path, data, sep, names, fields)
    if plain is BAD_TAIL:
        return None   # pandas would read the same bytes and find the same problem: read the file whole
    if isinstance(plain, Bars):
        return plain
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(data), sep=sep, header=None, names=range(len(names)), index_col=False,
                            skip_blank_lines=False, skipinitialspace=True,
                            dtype={fields[f]: object for f in ("time", "date") if f in fields})
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    chunk = _Chunk.of(frame, fields, names)
    table = _BarTable(path, 0, chunk.blank, np.zeros(0, dtype=np.int64), len(names), chunk.columns)
    if table.problems() or chunk.blank.all():
        return None
    return table.bars(~chunk.blank)


BAD_TAIL = object()   # _plain_tail: the tail is plain and its checks find a problem
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"   # what pandas and float() read alike
_PLAIN_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def _plain_tail(path: Path, data: bytes, sep: str, names: list[str], fields: dict[str, int]) -> Bars | object | None:
    """The tail's bars without pandas (~0.2 s to import, every live pass of run-once) when every
    line is plain: ASCII, no blank line, each cell a plain decimal number (_NUMBER, read by
    float(), correctly rounded as pandas' parser reads such numbers) or, in the time column, a
    plain time (_plain_times); then the same checks as the pandas path (BAD_TAIL when they find
    a problem: the whole file is read then, and names the line). None otherwise: pandas reads
    the tail as before."""
    if "date" in fields or not data.isascii():
        return None
    cell = {j: _PLAIN_TIME if j == fields["time"] else _NUMBER for j in range(len(names))}
    line = re.compile(re.escape(sep).join(f"({cell[j]})" for j in range(len(names))))
    rows = []
    for text in data.decode("ascii").splitlines():
        found = line.fullmatch(text)
        if found is None:
            return None   # a blank line, another shape, a cell that is not plain
        rows.append(found.groups())
    if not rows:
        return None
    n = len(rows)
    times = _plain_times(np.array([r[fields["time"]] for r in rows], dtype=f"S{PLAIN_TIME_BYTES}"))
    if times is None:
        return None
    no = np.zeros(n, dtype=bool)
    columns = {"time": _Column(names[fields["time"]], times, no, no, {})}
    for f, i in fields.items():
        if f != "time":
            values = np.array([float(r[i]) for r in rows], dtype=np.float64)
            if not bool(np.isfinite(values).all()):
                return None   # 1e999: pandas' path says what is wrong with it
            columns[f] = _Column(names[i], values, no, no, {}, i)
    table = _BarTable(path, 0, no, np.zeros(0, dtype=np.int64), len(names), columns)
    if table.problems():
        return BAD_TAIL
    return table.bars(~no)


class CsvFeed:
    """Bars from CSV files: `files` maps symbols to files; `pattern` is a path with
    `{symbol}` in it (or one file for every symbol).

    A live pass needs the end of a file: it reads the file's last bytes (TAIL_BYTES, or
    enough for the window), and the whole file only when they do not hold what is asked
    (a replay at an earlier --now, a long span, a bad row)."""

    name = "csv"

    def __init__(self, files: dict[str, Path] | None = None, pattern: str | Path | None = None):
        self.files = {symbol: Path(p) for symbol, p in (files or {}).items()}
        self.pattern = str(pattern) if pattern is not None else None

    def path_for(self, symbol: str) -> Path:
        """The file of `symbol`: `files` by exact name, then by root symbol (XAUUSDm → XAUUSD),
        then `pattern` with the exact name, then with the root."""
        root = root_symbol(symbol)
        key = next((k for k in (symbol, root) if k in self.files), None)
        if key is None:
            key = next((k for k in self.files if root_symbol(k) == root), None)
        if key is not None:
            tried = [self.files[key]]
        elif self.pattern is not None:
            tried = list(dict.fromkeys(Path(self.pattern.replace("{symbol}", s)) for s in (symbol, root)))
        else:
            tried = []
        for path in tried:
            if path.is_file():
                return path
            if path.exists():   # a folder, a FIFO, a device: say so rather than "no bar file"
                raise _not_a_regular_file(path, path.stat().st_mode)
        looked = f"tried {', '.join(str(p) for p in tried)}" if tried else "no file is configured for it"
        raise DataError(f"no bar file for symbol {symbol}: {looked}", where="feed",
                        fix=f"map it under `feed.files` in bots.yaml (e.g. `{symbol}: data/{root}_M1.csv`) "
                            "or set `feed.path` to a pattern such as `data/{symbol}_M1.csv`")

    def bars(self, symbol: str) -> Bars:
        """Every bar in the symbol's file."""
        return load_bars(self.path_for(symbol))

    def _recent(self, symbol: str, covers, need_bytes: int = 0) -> Bars:
        """The file's last bars if they hold what `covers(bars)` asks, else every bar."""
        path = self.path_for(symbol)
        tail = load_tail(path, max(TAIL_BYTES, need_bytes))
        if tail is not None and len(tail) and covers(tail):
            return tail
        return load_bars(path)

    def closed_bars(self, symbol: str, count: int, now: float) -> Bars:
        def covers(bars: Bars) -> bool:
            return len(bars.closed_at(now)) >= count

        return self._recent(symbol, covers, (count + 2) * TAIL_LINE_BYTES).closed_at(now).tail(count)

    def bars_between(self, symbol: str, start: float, now: float) -> Bars:
        return self._recent(symbol, lambda bars: bars.time[0] <= start).closed_at(now).between(start, None)

    def price_at(self, symbol: str, now: float) -> float | None:
        return latest_price(self._recent(symbol, lambda bars: bars.time[0] <= now - BAR_SECONDS), now)
