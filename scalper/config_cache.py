"""Loading a bots file, through the validated-config cache.

run-once starts every 45 s, and parsing plus validating the bots file (YAML, pydantic) costs a
large share of its start-up. A file whose exact bytes already passed validation under this very
code is rebuilt from a small cache entry instead — as plain objects (scalper.config_rules), without
importing pydantic or YAML. Any change to the file, to the validating code or to pydantic misses
the cache; a damaged or unreadable entry is only a miss; an unwritable cache only costs speed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalper.userdirs import cache_dir, prune_entries, touch_entry, write_cache_file

if TYPE_CHECKING:
    from scalper.config import Config

MAX_CONFIG_BYTES = 1_000_000   # a bots file is a few KB: anything far larger is the wrong file (refused by config_yaml)
MAX_ENTRIES = 64               # validated configs kept: each edit of a bots file (or of scalper) writes one


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a bots file (scalper.config), or rebuild its validated form from the
    cache. ConfigError (exit 2) for a bad file."""
    p = Path(path)
    key = _cache_key(p)
    cfg: Any = _cache_hit(key) if key else None
    if cfg is None:
        from scalper import config

        cfg = config._validate_file(p)
        if key:
            _cache_write(key, {"shape": config.model_shape(config.Config), "config": cfg.model_dump(mode="json")})
    cfg.source = str(p)
    if cfg.notify:
        from scalper.notify.urls import check_targets

        check_targets(cfg, p)   # the URLs live in the environment: checked on every load, not cached
    return cfg


def _cache_key(p: Path) -> str | None:
    """sha256 of the file's bytes, its resolved path and the code that validates it."""
    import hashlib

    from scalper import __version__

    try:
        if p.stat().st_size > MAX_CONFIG_BYTES:
            return None
        raw = p.read_bytes()
    except OSError:
        return None                        # the loader reports missing/unreadable files
    h = hashlib.sha256(raw)
    h.update(f"|{p.resolve()}|{__version__}|{_code_stamp()}".encode())
    return h.hexdigest()


def _code_stamp() -> str:
    """Changes whenever scalper's code changes on disk (also in an editable install) — every module,
    not a list of the validating ones that a new validator would have to remember to join — and
    with pydantic itself (found, not imported)."""
    from importlib.util import find_spec

    files = sorted(Path(__file__).parent.rglob("*.py"))
    pydantic = find_spec("pydantic")
    if pydantic is not None and pydantic.origin:
        files += [Path(pydantic.origin), Path(pydantic.origin).with_name("version.py")]
    return ",".join(str(os.stat(f).st_mtime_ns) for f in files)


def _cache_hit(key: str) -> Config | None:
    """The config rebuilt from its cache entry; None when there is none or it is damaged."""
    from scalper.config_rules import rebuild

    path = _entry(key)
    try:
        entry = json.loads(path.read_text())
        cfg = rebuild(entry["shape"], entry["config"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not hasattr(cfg, "bots"):
        return None
    touch_entry(path)
    return cfg


def _cache_write(key: str, entry: dict) -> None:
    path = _entry(key)
    try:
        write_cache_file(path, [json.dumps(entry).encode()])
    except OSError:
        return                              # a cache that cannot be written only costs speed
    prune_entries(path.parent, keep=path, kind=_is_entry, max_entries=MAX_ENTRIES)


def _entry(key: str) -> Path:
    return cache_dir() / f"{key}.json"


def _is_entry(p: Path) -> bool:
    """A validated config's entry (a sha256 named .json), not the other files of the cache folder."""
    return p.suffix == ".json" and len(p.stem) == 64 and all(c in "0123456789abcdef" for c in p.stem)
