"""The validated-config cache: the same bytes load to the same config without revalidating;
any change, or a damaged cache entry, goes through full validation again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scalper import config as config_module
from scalper.config import load_config
from scalper.errors import ConfigError
from scalper.userdirs import cache_dir
from tests.conftest import ROOT


def _cache_files():
    return sorted((cache_dir()).glob("*.json"))


def test_second_load_is_rebuilt_from_the_cache_and_equal(tmp_path, monkeypatch):
    cfg_path = tmp_path / "bots.yaml"
    cfg_path.write_text((ROOT / "bots.yaml").read_text())
    first = load_config(cfg_path)
    [entry] = _cache_files()
    assert oct(entry.stat().st_mode & 0o777) == "0o600"

    def no_validation(p):
        raise AssertionError("validated again although the file did not change")

    monkeypatch.setattr(config_module, "_validate_file", no_validation)
    second = load_config(cfg_path)
    assert second.model_dump() == first.model_dump() and second.source == str(cfg_path)
    # the rebuilt objects behave like validated ones
    bot = second.bot("gold-scalper")
    assert bot.risk.max_concurrent == 2 and bot.params_for("trend_pullback")["rr"] == 1.5
    assert bot.magic_number == first.bot("gold-scalper").magic_number
    assert second.account(1).label == "paper-main" and second.groups_of("XAUUSD") == ["usd_metals"]
    assert second.resolve_path(second.ledger) == first.resolve_path(first.ledger)


def test_any_change_is_validated_again(tmp_path):
    cfg_path = tmp_path / "bots.yaml"
    text = (ROOT / "bots.yaml").read_text()
    cfg_path.write_text(text)
    load_config(cfg_path)
    cfg_path.write_text(text.replace("max_concurrent: 2", "max_concurrent: 0", 1))
    with pytest.raises(ConfigError) as err:
        load_config(cfg_path)
    assert "max_concurrent" in str(err.value)


def test_a_damaged_entry_falls_back_to_validation(tmp_path):
    cfg_path = tmp_path / "bots.yaml"
    cfg_path.write_text((ROOT / "bots.yaml").read_text())
    first = load_config(cfg_path)
    [entry] = _cache_files()
    entry.write_text("{not json")
    again = load_config(cfg_path)
    assert again.model_dump() == first.model_dump()
    assert _cache_files() == [entry] and json.loads(entry.read_text())["config"] == first.model_dump(mode="json")


def test_an_unwritable_cache_only_costs_speed(tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SCALPER_CACHE_DIR", str(blocked))
    cfg_path = tmp_path / "bots.yaml"
    cfg_path.write_text((ROOT / "bots.yaml").read_text())
    assert load_config(cfg_path).bot("btc-watch").auto_trade is False
    assert os.path.isfile(blocked)


def test_a_change_to_the_validating_code_misses_the_cache(tmp_path):
    from scalper.core import strategies

    cfg_path = tmp_path / "bots.yaml"
    cfg_path.write_text((ROOT / "bots.yaml").read_text())
    before = config_module._cache_key(cfg_path)
    params = Path(strategies.__file__).parent / "params.py"
    st = params.stat()
    try:
        os.utime(params, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert config_module._cache_key(cfg_path) != before
    finally:
        os.utime(params, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert config_module._cache_key(cfg_path) == before


def test_the_cache_keeps_the_most_recently_used_configs_and_nothing_else_is_pruned(tmp_path, monkeypatch):
    from scalper import config_cache

    monkeypatch.setattr(config_cache, "MAX_ENTRIES", 3)
    other = cache_dir() / "apprise-schemes.json"   # another file of the cache folder: never an entry
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("[]")
    os.utime(other, ns=(0, 0))
    text = (ROOT / "bots.yaml").read_text()
    paths = []
    for k in range(5):   # five versions of one file: five entries written, the oldest pruned
        p = tmp_path / f"bots{k}.yaml"
        p.write_text(text)
        paths.append(p)
        load_config(p)
        for n, entry in enumerate(sorted(_cache_files(), key=lambda e: e.stat().st_mtime_ns)):
            if entry != other:
                os.utime(entry, ns=(n * 10**9, n * 10**9))   # written in this order, a second apart
        assert len([e for e in _cache_files() if e != other]) == min(k + 1, 3)
    assert other.exists()

    real = config_module._validate_file
    validated: list[str] = []
    monkeypatch.setattr(config_module, "_validate_file", lambda p: validated.append(Path(p).name) or real(p))
    load_config(paths[2])   # the oldest kept: a hit, which marks it as just used
    extra = tmp_path / "bots5.yaml"
    extra.write_text(text)
    load_config(extra)   # written: the least recently used now is bots3's, not bots2's
    load_config(paths[2])
    load_config(paths[3])
    assert validated == ["bots5.yaml", "bots3.yaml"]
