"""The cache folder's one writer: an entry is there whole or not at all."""

from __future__ import annotations

import pytest

from scalper.userdirs import write_cache_file


def test_an_entry_is_written_whole_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "sub" / "entry.bin"
    write_cache_file(target, [b"old"])
    write_cache_file(target, [b"ne", memoryview(b"w!")])
    assert target.read_bytes() == b"new!" and [p.name for p in target.parent.iterdir()] == ["entry.bin"]


def test_a_failed_write_leaves_the_old_entry_and_no_temporary_file(tmp_path):
    target = tmp_path / "entry.bin"
    write_cache_file(target, [b"old"])

    def chunks():
        yield b"half of it"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_cache_file(target, chunks())
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["entry.bin"]
