"""The parsed-bar cache (scalper.feeds.bar_cache): an unchanged bar file is read back from it
exactly as a parse returns it; anything else — a changed file, a damaged entry, an unwritable
or disabled cache — parses the file, and never fails because of the cache."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalper import userdirs
from scalper.clock import bar_iso, parse_instant
from scalper.errors import DataError
from scalper.feeds import bar_cache, csvfile
from scalper.feeds.csvfile import read_bars
from tests.conftest import BARS_CACHE_DIR_ENV, BARS_CACHE_SWITCH_ENV, ROOT, shared_file
from tests.test_csv_bars import GOOD_ROWS, HEADER, with_row, write

FIELDS = ("time", "open", "high", "low", "close", "volume", "spread")


def assert_identical(a, b):
    """The same arrays, byte for byte (NaN spreads included), with the same dtypes and shapes."""
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), f


def entries() -> list[Path]:
    return sorted(bar_cache.bars_dir().glob("*.bars"))


@pytest.fixture
def parses(monkeypatch):
    """How many times read_bars parsed a file (rather than reading the cache)."""
    seen: list[str] = []
    real = csvfile._parse_bars
    monkeypatch.setattr(csvfile, "_parse_bars", lambda path, skip: seen.append(str(path)) or real(path, skip))
    return seen


def test_the_suite_never_touches_the_users_cache(tmp_path):
    assert (BARS_CACHE_DIR_ENV, BARS_CACHE_SWITCH_ENV) == (userdirs.CACHE_DIR_ENV, bar_cache.SWITCH_ENV)
    home_cache = Path.home() / ".cache"
    assert bar_cache.enabled() and home_cache not in bar_cache.bars_dir().parents


@pytest.mark.parametrize("name", ["XAUUSD_M1.csv", "BTCUSD_M1.csv"])
@pytest.mark.parametrize("skip", [False, True])
def test_the_real_exports_come_back_byte_identical(name, skip, parses):
    path = shared_file(name)
    fresh, fresh_warnings = csvfile._parse_bars(path, skip)
    parses.clear()
    first, first_warnings = read_bars(path, skip_bad_rows=skip)    # parsed, stored
    again, again_warnings = read_bars(path, skip_bad_rows=skip)    # read back
    assert parses == [str(path)] and len(entries()) == 1
    assert_identical(first, fresh)
    assert_identical(again, fresh)
    assert again_warnings == first_warnings == fresh_warnings
    for f in FIELDS:   # the caller's own arrays, as a parse gives
        assert getattr(again, f).flags.writeable


def test_warnings_name_the_path_as_the_caller_wrote_it(tmp_path, monkeypatch, parses):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, with_row(4, "2025-05-15 07:37:00,3144.84,3146.29,abc,3146.08,198"))
    _, by_absolute = read_bars(path, skip_bad_rows=True)
    _, by_relative = read_bars("bars.csv", skip_bad_rows=True)
    assert len(parses) == 1   # one entry: the file is the same
    assert by_absolute[0].startswith(f"{path}: skipped 1 row") and by_relative[0].startswith("bars.csv: skipped 1 row")
    assert by_relative == csvfile._parse_bars("bars.csv", True)[1]


def test_skip_bad_rows_is_cached_apart(tmp_path, parses):
    path = write(tmp_path, with_row(4, "2025-05-15 07:37:00,3144.84,3146.29,abc,3146.08,198"))
    bars, warnings = read_bars(path, skip_bad_rows=True)
    assert len(bars) == 7 and len(warnings) == 1
    with pytest.raises(DataError, match="'abc' is not a number"):   # not served from the skipping entry
        read_bars(path)
    assert read_bars(path, skip_bad_rows=True)[1] == warnings
    good = write(tmp_path, [HEADER] + GOOD_ROWS, name="good.csv")
    read_bars(good)
    read_bars(good, skip_bad_rows=True)
    assert len(entries()) == 3 and len(parses) == 4


@pytest.mark.parametrize("lines", [
    with_row(3, "2025-05-15 07:36:00,3146.49,3146.64,3144.61"),    # a missing value
    [HEADER],                                                      # no data rows
    ["time,open,high,low"],                                        # no close column
])
def test_a_file_that_raises_is_never_cached(tmp_path, lines, parses):
    path = write(tmp_path, lines)
    for _ in range(2):
        with pytest.raises(DataError):
            read_bars(path)
    assert len(parses) == 2 and entries() == []


def test_a_file_with_only_bad_rows_is_never_cached(tmp_path, parses):
    path = write(tmp_path, [HEADER, "2025-05-15 07:35:00,-1,1,1,1,1"])
    with pytest.raises(DataError, match="no valid bars"):
        read_bars(path, skip_bad_rows=True)
    assert entries() == []


def test_a_changed_file_is_parsed_again(tmp_path, parses):
    path = write(tmp_path, [HEADER] + GOOD_ROWS)
    read_bars(path)
    path.write_text("\n".join([HEADER] + GOOD_ROWS[:-1]) + "\n")      # shorter
    bars, _ = read_bars(path)
    assert len(bars) == 7 and len(parses) == 2
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))   # touched only
    assert len(read_bars(path)[0]) == 7 and len(parses) == 3
    edited = path.read_text().replace("3147.10", "3147.20")              # same size, mtime put back
    st = path.stat()
    path.write_text(edited)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    bars, _ = read_bars(path)
    assert len(parses) == 4 and 3147.20 in bars.high and 3147.10 not in bars.high
    assert len(read_bars(path)[0]) == 7 and len(parses) == 4          # and that version is cached


def test_an_edit_that_keeps_size_and_times_is_caught_by_the_digest(tmp_path):
    # ctime cannot be set back by a user, so this edit also changes the stamp; the digest is the
    # guard for file systems and tools that keep all of it: checked here with the stamp held fixed.
    first = parse_instant("2025-05-15 00:00:00")
    rows = [f"{bar_iso(first + 60 * i)},3145.50,3146.62,3145.17,3146.49,103" for i in range(3000)]
    path = write(tmp_path, [HEADER] + rows)
    assert path.stat().st_size > 2 * bar_cache.DIGEST_BYTES
    before = bar_cache.slot(path, False)
    before.store(*csvfile._parse_bars(path, False))
    assert before.load() is not None
    data = path.read_bytes()
    for at in (100, len(data) - 100):   # an edit within the first or the last 64 KB
        k = data.index(b"3146.62", at) if at < len(data) // 2 else data.rindex(b"3146.62", 0, at)
        path.write_bytes(data[:k] + b"3146.63" + data[k + 7:])
        after = bar_cache.slot(path, False)
        assert after.digest != before.digest
        assert dataclasses.replace(after, stamp=before.stamp).load() is None
    path.write_bytes(data)
    assert dataclasses.replace(bar_cache.slot(path, False), stamp=before.stamp).load() is not None


def test_a_file_written_while_it_is_parsed_is_not_stored(tmp_path):
    path = write(tmp_path, [HEADER] + GOOD_ROWS)
    slot = bar_cache.slot(path, False)
    parsed = csvfile._parse_bars(path, False)
    path.write_text("\n".join([HEADER] + GOOD_ROWS[:-1]) + "\n")
    slot.store(*parsed)
    assert entries() == []


def _corruptions(blob: bytes) -> dict[str, bytes]:
    meta_end = blob.index(b"}") + 1
    return {
        "empty": b"",
        "truncated": blob[:-1],
        "longer": blob + b"\0" * 8,
        "flipped_byte_in_the_columns": blob[:-5] + bytes([blob[-5] ^ 1]) + blob[-4:],
        "not_an_entry": b"x" * len(blob),
        "bad_json": blob[:meta_end - 1] + b"!" + blob[meta_end:],
        "another_format": blob.replace(b'"format": 1', b'"format": 9', 1),
        "other_rows": blob.replace(b'"rows": 8', b'"rows": 7', 1),
        "more_rows": blob.replace(b'"rows": 8', b'"rows": 9', 1),
        "huge_description": blob[:len(bar_cache._MAGIC)] + b"\xff\xff\xff\x7f" + blob[len(bar_cache._MAGIC) + 4:],
    }


@pytest.mark.parametrize("kind", ["empty", "truncated", "longer", "flipped_byte_in_the_columns", "not_an_entry",
                                  "bad_json", "another_format", "other_rows", "more_rows",
                                  "huge_description"])
def test_a_damaged_entry_is_a_miss_and_is_replaced(tmp_path, kind, parses):
    path = write(tmp_path, [HEADER] + GOOD_ROWS)
    fresh, _ = read_bars(path)
    [entry] = entries()
    blob = entry.read_bytes()
    damaged = _corruptions(blob)[kind]
    assert damaged != blob
    entry.write_bytes(damaged)
    bars, warnings = read_bars(path)
    assert_identical(bars, fresh) and warnings == []
    assert len(parses) == 2 and entry.read_bytes() == blob     # parsed, and stored again


@pytest.mark.parametrize("where", ["a_file", "under_a_file"])
def test_an_unwritable_cache_only_costs_speed(tmp_path, monkeypatch, where, parses):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv(BARS_CACHE_DIR_ENV, str(blocker if where == "a_file" else blocker / "cache"))
    path = write(tmp_path, [HEADER] + GOOD_ROWS)
    for _ in range(2):
        bars, warnings = read_bars(path)
        assert len(bars) == 8 and warnings == []
    assert len(parses) == 2 and blocker.is_file() and blocker.read_text() == ""


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder_only_costs_speed(tmp_path, parses):
    bar_cache.bars_dir().mkdir(parents=True)
    bar_cache.bars_dir().chmod(0o500)
    try:
        path = write(tmp_path, [HEADER] + GOOD_ROWS)
        assert len(read_bars(path)[0]) == len(read_bars(path)[0]) == 8
        assert len(parses) == 2 and entries() == []
    finally:
        bar_cache.bars_dir().chmod(0o700)


@pytest.mark.parametrize("value", ["0", "off", "false", "no", "OFF", " No "])
def test_the_cache_can_be_turned_off(tmp_path, monkeypatch, value, parses):
    monkeypatch.setenv(BARS_CACHE_SWITCH_ENV, value)
    path = write(tmp_path, [HEADER] + GOOD_ROWS)
    read_bars(path)
    read_bars(path)
    assert len(parses) == 2 and not bar_cache.bars_dir().exists()


@pytest.mark.parametrize("value", ["1", "on", "", "yes"])
def test_other_switch_values_leave_it_on(tmp_path, monkeypatch, value, parses):
    monkeypatch.setenv(BARS_CACHE_SWITCH_ENV, value)
    path = write(tmp_path, [HEADER] + GOOD_ROWS)
    read_bars(path)
    read_bars(path)
    assert len(parses) == 1 and len(entries()) == 1


def test_where_the_cache_lives(tmp_path, monkeypatch):
    monkeypatch.setenv(BARS_CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert bar_cache.bars_dir() == tmp_path / "mine" / "bars"
    monkeypatch.delenv(BARS_CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bar_cache.bars_dir() == tmp_path / "xdg" / "scalper" / "bars"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert bar_cache.bars_dir() == tmp_path / "home" / ".cache" / "scalper" / "bars"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert bar_cache.bars_dir() == tmp_path / "local" / "scalper" / "cache" / "bars"


def test_one_cache_folder_holds_the_bars_the_configs_and_the_fallback_log(tmp_path, monkeypatch):
    from scalper import logsetup

    monkeypatch.setenv(BARS_CACHE_DIR_ENV, str(tmp_path / "mine"))
    cfg = tmp_path / "bots.yaml"
    cfg.write_text((ROOT / "bots.yaml").read_text())
    from scalper.config import load_config

    load_config(cfg)
    assert list((tmp_path / "mine").glob("*.json"))          # the validated config's entry
    assert logsetup.fallback_path() == tmp_path / "mine" / "scalper.log"
    assert bar_cache.bars_dir() == tmp_path / "mine" / "bars"


def test_the_cache_keeps_the_most_recently_used_entries(tmp_path, monkeypatch, parses):
    monkeypatch.setattr(bar_cache, "MAX_ENTRIES", 2)
    files = [write(tmp_path, [HEADER] + GOOD_ROWS, name=f"f{i}.csv") for i in range(4)]
    for i, path in enumerate(files):
        read_bars(path)
        os.utime(bar_cache.slot(path, False).entry, ns=((i + 1) * 10**9,) * 2)   # distinct ages
    assert len(entries()) == 2
    parses.clear()
    read_bars(files[3])
    read_bars(files[2])
    assert parses == []       # the last two were kept
    read_bars(files[0])
    assert parses == [str(files[0])] and len(entries()) == 2


def test_the_cache_stays_under_its_size(tmp_path, monkeypatch, parses):
    monkeypatch.setattr(bar_cache, "MAX_BYTES", 1)
    files = [write(tmp_path, [HEADER] + GOOD_ROWS, name=f"f{i}.csv") for i in range(3)]
    for path in files:
        read_bars(path)
        assert entries() == [bar_cache.slot(path, False).entry]   # only the one just written


_CHILD = """
import json, sys
from scalper.feeds.csvfile import read_bars
bars, warnings = read_bars(sys.argv[1])
sys.stdout.write(json.dumps({"pandas": "pandas" in sys.modules, "bars": len(bars),
                             "last": float(bars.close[-1]), "warnings": warnings}))
"""


def test_a_cache_hit_does_not_import_pandas(tmp_path, xau_csv):
    def child() -> dict:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(xau_csv)], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=True)
        return json.loads(proc.stdout)

    first, again = child(), child()
    assert first["pandas"] and not again["pandas"]
    assert {**first, "pandas": None} == {**again, "pandas": None} and again["bars"] == 20_000


def test_a_cached_scan_prints_the_same_json_without_pandas(tmp_path, xau_csv):
    code = ("import sys, json; from scalper.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(json.dumps('pandas' in sys.modules))\n")

    def scan() -> tuple[dict, bool]:
        proc = subprocess.run([sys.executable, "-c", code, "scan", "--data", str(xau_csv), "--json"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=True)
        return json.loads(proc.stdout), json.loads(proc.stderr.strip().splitlines()[-1])

    (doc1, pandas1), (doc2, pandas2) = scan(), scan()
    assert pandas1 and not pandas2
    assert doc1 == doc2 and doc2["signals"] > 0
