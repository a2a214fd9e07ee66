"""The one folder scalper keeps caches in when nothing names another place.

SCALPER_CACHE_DIR, else on Windows %LOCALAPPDATA%\\scalper\\cache, else $XDG_CACHE_HOME/scalper
(default ~/.cache/scalper). It holds the validated-config cache, the parsed-bar cache (`bars/`),
apprise's scheme list and `scalper.log` for failures before a config names a log file.
Everything in it can be deleted at any time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

CACHE_DIR_ENV = "SCALPER_CACHE_DIR"


def cache_dir() -> Path:
    chosen = os.environ.get(CACHE_DIR_ENV)
    if chosen:
        return Path(chosen)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "scalper" / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "scalper"


def write_cache_file(target: Path, chunks: Iterable[bytes | memoryview]) -> None:
    """Write a cache entry whole or not at all: a temporary file beside it, renamed over it
    (readers see the old entry or the new one, never half of one); the temporary file is removed
    when anything fails, and the failure raised (a cache that cannot be written only costs speed:
    callers ignore OSError)."""
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        unlink_quietly(Path(tmp))
        raise


STALE_TEMP_SECONDS = 3600   # a temporary file of write_cache_file this old is from a writer that died


def prune_entries(folder: Path, *, keep: Path, kind: Callable[[Path], bool], max_entries: int,
                  max_bytes: int | None = None) -> None:
    """Delete the least recently used (oldest mtime; `touch_entry` on a hit) cache entries of one
    kind in `folder` beyond `max_entries`, or beyond `max_bytes` in all — never `keep`, just
    written — and the temporary files writers that died left behind. Failures are ignored."""
    import time

    entries = []
    try:
        listed = list(folder.iterdir())
    except OSError:
        return
    for p in listed:
        try:
            st = p.stat()
        except OSError:
            continue
        if kind(p):
            entries.append((st.st_mtime_ns, st.st_size, p))
        elif p.name.startswith(".") and p.suffix == ".tmp" and time.time() - st.st_mtime > STALE_TEMP_SECONDS:
            unlink_quietly(p)
    entries.sort(reverse=True)   # newest (most recently used) first
    total = 0
    for n, (_, size, p) in enumerate(entries):
        total += size
        if p != keep and (n >= max_entries or (max_bytes is not None and total > max_bytes)):
            unlink_quietly(p)


def touch_entry(entry: Path) -> None:
    """Mark a cache entry as just used: pruning deletes the least recently used first."""
    try:
        os.utime(entry)
    except OSError:
        pass


def unlink_quietly(p: Path) -> None:
    """Remove a file if it can be; a file already gone or a folder that refuses is left as is."""
    try:
        p.unlink()
    except OSError:
        pass
