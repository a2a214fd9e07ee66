"""The parsed-bar cache: a bar file's parsed columns kept on disk, read back instead of parsing.

Parsing a 370,000-row CSV costs pandas' import and a parse (~0.45 s); reading its columns back
is one read of ~21 MB. An entry holds the exact arrays `read_bars` returned (and its warnings)
for one file version and one `skip_bad_rows` setting. It is used only when the file has the
same path, size, mtime, ctime and inode as when it was parsed, and the same bytes at its start
and end (a digest: an edit that keeps size and mtime). Anything wrong with an entry — damaged,
truncated, another format version, a checksum that disagrees — is a miss, and the file is
parsed; a cache that cannot be written only costs speed. A file that raises DataError is never
stored. Entries live in `bars/` under SCALPER_CACHE_DIR (default: the user's cache folder);
SCALPER_BARS_CACHE=0 turns the cache off. The oldest entries go beyond MAX_ENTRIES/MAX_BYTES.
"""

from __future__ import annotations

import json
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalper.core.bars import Bars
from scalper.userdirs import cache_dir, prune_entries, touch_entry, write_cache_file

SWITCH_ENV = "SCALPER_BARS_CACHE"       # 0/off/false/no: parse every time, store nothing
OFF_VALUES = ("0", "off", "false", "no")
FORMAT_VERSION = 1                      # bump when the entry layout or what read_bars returns changes
MAX_ENTRIES = 64
MAX_BYTES = 1 << 30                     # 1 GiB of entries at most
DIGEST_BYTES = 1 << 16                  # bytes digested at each end of the bar file
MAX_META_BYTES = 1 << 20                # an entry's description (paths, stamp, warnings) is far smaller

_MAGIC = b"scalper-bars\n"
_ALIGN = 64                             # the columns start on this boundary
_SUFFIX = ".bars"
_FIELDS = ("time", "open", "high", "low", "close", "volume", "spread")
_DTYPES = {f: np.dtype(np.int64 if f == "time" else np.float64) for f in _FIELDS}
_DERIVED_MAGIC = b"scalper-derived\n"
_DERIVED_SUFFIX = ".derived"
MAX_DERIVED_ENTRIES = 256               # values derived from closes (DerivedStore): a few per bar file…
MAX_DERIVED_BYTES = 1 << 28             # …in 256 MiB at most (8 bytes a bar each)
MIN_DERIVED_ROWS = 50_000               # closes from which derived values are kept (~4 ms to compute below)


def bars_dir() -> Path:
    return cache_dir() / "bars"


def enabled() -> bool:
    return os.environ.get(SWITCH_ENV, "").strip().lower() not in OFF_VALUES


@dataclass(frozen=True)
class Slot:
    """Where one (file, skip_bad_rows) is cached, and the file's version as seen before the parse."""

    entry: Path
    source: str             # the bar file's resolved path
    given: str              # the path as the caller wrote it (warnings name it)
    skip_bad_rows: bool
    stamp: tuple[int, ...]  # size, mtime_ns, ctime_ns, inode, device
    digest: str

    def load(self) -> tuple[Bars, list[str]] | None:
        """The cached bars and warnings, or None (no entry, or one that does not fit exactly)."""
        found = _read_entry(self.entry, _MAGIC, self._size_of)
        if found is None:
            return None
        meta, data = found
        rows = meta["rows"]
        columns = [data[k * rows * 8:(k + 1) * rows * 8].view(_DTYPES[f]) for k, f in enumerate(_FIELDS)]
        prefix = _warning_prefix(self.given)
        return Bars(*columns), [prefix + w for w in meta["warnings"]]

    def _size_of(self, meta: dict) -> int | None:
        """The bytes of the columns an entry of this file version holds; None for another entry."""
        if meta.get("source") != self.source or meta.get("skip_bad_rows") is not self.skip_bad_rows \
                or meta.get("stamp") != list(self.stamp) or meta.get("digest") != self.digest:
            return None
        rows, warnings = meta["rows"], meta["warnings"]
        if type(rows) is not int or rows < 1 or meta["columns"] != [[f, _DTYPES[f].str] for f in _FIELDS]:
            return None
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            return None
        return rows * 8 * len(_FIELDS)

    def store(self, bars: Bars, warnings: list[str]) -> None:
        """Keep what a parse returned, if the file did not change meanwhile; failures are ignored."""
        prefix = _warning_prefix(self.given)
        if not all(w.startswith(prefix) for w in warnings):
            return
        try:
            if _stamp(os.stat(self.source)) != self.stamp:
                return   # written to while it was parsed: what was read may be neither version
        except OSError:
            return
        columns = [np.ascontiguousarray(getattr(bars, f), dtype=_DTYPES[f]) for f in _FIELDS]
        rows = len(columns[0])
        if rows < 1 or any(len(c) != rows for c in columns):
            return
        _write_entry(self.entry, _MAGIC, {"source": self.source, "skip_bad_rows": self.skip_bad_rows,
                                          "stamp": list(self.stamp), "digest": self.digest, "rows": rows,
                                          "columns": [[f, _DTYPES[f].str] for f in _FIELDS],
                                          "warnings": [w[len(prefix):] for w in warnings]},
                     [c.data.cast("B") for c in columns], _SUFFIX, MAX_ENTRIES, MAX_BYTES)


def slot(path: str | os.PathLike, skip_bad_rows: bool) -> Slot | None:
    """The cache slot of a bar file; None when the cache is off or the file cannot be looked at
    (the parse then reports what is wrong with it)."""
    if not enabled():
        return None
    try:
        source = Path(path).resolve()
        st = os.stat(source)
        if not stat.S_ISREG(st.st_mode):
            return None
        digest = _digest(source, st.st_size)
        import hashlib

        name = hashlib.blake2b(f"{FORMAT_VERSION}\0{skip_bad_rows}\0{source}".encode("utf-8", "surrogatepass"),
                               digest_size=16).hexdigest()
    except (OSError, ValueError, RuntimeError):
        return None
    return Slot(bars_dir() / (name + _SUFFIX), str(source), str(Path(path)), skip_bad_rows, _stamp(st), digest)


class DerivedStore:
    """Values derived from one column of closes (the scan's history EMAs), kept beside the bar
    entries: found by what the scan names them and by the closes' own digest, so they are read
    back only for the very same closes, whichever file they came from. An entry that does not
    fit exactly is a miss; a failed write only costs speed."""

    def __init__(self, close: np.ndarray):
        import hashlib

        self.close, self.rows = close, len(close)
        self.digest = hashlib.blake2b(np.ascontiguousarray(close, dtype=np.float64).data.cast("B"),
                                      digest_size=16).hexdigest()

    def covers(self, close: np.ndarray) -> bool:
        return close is self.close or (len(close) == self.rows and bool(np.array_equal(close, self.close)))

    def _entry(self, key: str) -> Path:
        import hashlib

        name = hashlib.blake2b(f"{FORMAT_VERSION}\0{key}\0{self.digest}".encode(), digest_size=16).hexdigest()
        return bars_dir() / (name + _DERIVED_SUFFIX)

    def get(self, key: str) -> np.ndarray | None:
        def size_of(meta: dict) -> int | None:
            fits = meta.get("key") == key and meta.get("closes") == self.digest and meta.get("rows") == self.rows
            return self.rows * 8 if fits else None

        found = _read_entry(self._entry(key), _DERIVED_MAGIC, size_of)
        return None if found is None else found[1].view(np.float64)

    def put(self, key: str, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=np.float64)
        if len(values) == self.rows:
            _write_entry(self._entry(key), _DERIVED_MAGIC, {"key": key, "closes": self.digest, "rows": self.rows},
                         [values.data.cast("B")], _DERIVED_SUFFIX, MAX_DERIVED_ENTRIES, MAX_DERIVED_BYTES)


def derived_store(close: np.ndarray) -> DerivedStore | None:
    """The store of values derived from `close`, when the cache is on and the series is long
    enough for them to be worth keeping (MIN_DERIVED_ROWS)."""
    if not enabled() or len(close) < MIN_DERIVED_ROWS:
        return None
    return DerivedStore(close)


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


def _digest(source: Path, size: int) -> str:
    """The first and last DIGEST_BYTES of the file (all of a small one), hashed."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    # opened without blocking and checked again: the path may have become a FIFO since its stat
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{source} is not a regular file")
        h.update(f.read(DIGEST_BYTES))
        if size > DIGEST_BYTES:
            f.seek(max(DIGEST_BYTES, size - DIGEST_BYTES))
            h.update(f.read(DIGEST_BYTES))
    return h.hexdigest()


def _warning_prefix(given: str) -> str:
    """read_bars' warnings start with the path as the caller wrote it; entries store the rest."""
    return f"{given}: "


def _read_entry(entry: Path, magic: bytes, size_of: Callable[[dict], int | None]) -> tuple[dict, np.ndarray] | None:
    """An entry's description and the bytes of its arrays, when its magic and FORMAT_VERSION are
    this code's, `size_of(description)` says it is the one asked for (the bytes it must hold; None:
    another), the file is exactly that long and its CRC holds; else None, a miss (damaged,
    truncated, another version, unreadable). The arrays are read only into the room the
    description names. A hit is marked as used."""
    try:
        with open(entry, "rb") as f:
            meta, start = _read_head(f, magic)
            if meta is None:
                return None
            size = size_of(meta)
            if size is None or os.fstat(f.fileno()).st_size != start + size:
                return None
            data = np.empty(size, dtype=np.uint8)
            f.seek(start)
            if f.readinto(data.data) != size or zlib.crc32(data.data) != meta["crc32"]:
                return None
    except (OSError, ValueError, KeyError, TypeError, UnicodeError):
        return None
    touch_entry(entry)
    return meta, data


def _write_entry(entry: Path, magic: bytes, meta: dict, arrays: list, suffix: str, max_entries: int,
                 max_bytes: int) -> None:
    """Write an entry (its description with FORMAT_VERSION and the arrays' CRC, then the arrays),
    then prune its kind; failures are ignored: an unwritable or full cache only costs speed."""
    try:
        crc = 0
        for a in arrays:
            crc = zlib.crc32(a, crc)
        head = _head(magic, {"format": FORMAT_VERSION, **meta, "crc32": crc})
        if head is not None:
            write_cache_file(entry, [head, *arrays])
            _prune(entry, suffix, max_entries, max_bytes)
    except (OSError, ValueError, TypeError):
        pass


def _head(magic: bytes, meta: dict) -> bytes | None:
    """An entry's start: its magic, its description's length and the description (JSON), padded
    to where the arrays begin; None when the description is too long to be read back."""
    text = json.dumps(meta).encode("utf-8")
    if len(text) > MAX_META_BYTES:
        return None
    head = magic + len(text).to_bytes(4, "little") + text
    return head + b"\0" * (_aligned(len(head)) - len(head))


def _read_head(f, magic: bytes) -> tuple[dict | None, int]:
    """An entry's description (None unless the magic and FORMAT_VERSION are this code's) and where
    its arrays begin. A description that is not JSON raises ValueError (the callers' miss)."""
    head = f.read(len(magic) + 4)
    if len(head) != len(magic) + 4 or head[:len(magic)] != magic:
        return None, 0
    length = int.from_bytes(head[len(magic):], "little")
    if length > MAX_META_BYTES:
        return None, 0
    meta = json.loads(f.read(length).decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        return None, 0
    return meta, _aligned(len(head) + length)


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _prune(written: Path, suffix: str, max_entries: int, max_bytes: int) -> None:
    """The least recently used entries of one kind beyond `max_entries`, or beyond `max_bytes`."""
    prune_entries(written.parent, keep=written, kind=lambda p: p.suffix == suffix, max_entries=max_entries,
                  max_bytes=max_bytes)
