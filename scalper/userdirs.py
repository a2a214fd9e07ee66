"""The one folder scalper keeps caches in when nothing names another place.

SCALPER_CACHE_DIR, else on Windows %LOCALAPPDATA%\\scalper\\cache, else $XDG_CACHE_HOME/scalper
(default ~/.cache/scalper). It holds the validated-config cache, the parsed-bar cache (`bars/`),
apprise's scheme list and `scalper.log` for failures before a config names a log file.
Everything in it can be deleted at any time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
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
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
