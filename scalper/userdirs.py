"""The one folder scalper keeps caches in when nothing names another place.

SCALPER_CACHE_DIR, else on Windows %LOCALAPPDATA%\\scalper\\cache, else $XDG_CACHE_HOME/scalper
(default ~/.cache/scalper). It holds the validated-config cache, the parsed-bar cache (`bars/`),
apprise's scheme list and `scalper.log` for failures before a config names a log file.
Everything in it can be deleted at any time.
"""

from __future__ import annotations

import os
import sys
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
