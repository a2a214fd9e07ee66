"""setup-bot as a trader meets it: a default name that exists, a read-only file, the
file's mode and owner, the backup, plain numbers (issue 9; read-only from issue 8)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import yaml

from scalper.config import load_config
from tests.clikit import cli
from tests.conftest import ROOT


def _copy_example(tmp_path):
    cfg = tmp_path / "bots.yaml"
    cfg.write_text((ROOT / "bots.yaml").read_text())
    return cfg


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_default_name_never_takes_over_a_bot_of_another_symbol(tmp_path, capsys):
    cfg = _copy_example(tmp_path)
    cfg.write_text(cfg.read_text().replace("name: gold-scalper", "name: gold-scalper\n    # keep me"))
    before = _digest(cfg)
    r = cli(capsys, "setup-bot", "--symbol", "GOLD", "--config", str(cfg))
    assert r.code == 2
    assert "gold-scalper" in r.err and "XAUUSD" in r.err and "--update" in r.err
    assert _digest(cfg) == before and not (tmp_path / "bots.yaml.bak").exists()
    assert load_config(cfg).bot("gold-scalper").symbol == "XAUUSD"


def test_update_moves_the_bot_keeps_a_backup_and_prints_plain_numbers(tmp_path, capsys):
    cfg = _copy_example(tmp_path)
    original = cfg.read_text()
    r = cli(capsys, "setup-bot", "--symbol", "GOLD", "--update", "--qty", "0.02", "--config", str(cfg))
    assert r.code == 0, r.err
    assert "Error" not in r.out + r.err and "updated" in r.out
    shown = yaml.safe_load(r.out.split(":\n", 1)[1])          # the bot as printed reads back as YAML
    assert shown["symbol"] == "GOLD" and shown["qty"] == 0.02 and shown["accounts"] == [1, 2]
    assert (tmp_path / "bots.yaml.bak").read_text() == original
    text = cfg.read_text()
    assert "qty: 0.02\n" in text and "!!float" not in text
    assert load_config(cfg).bot("gold-scalper").symbol == "GOLD"
    # the same symbol again needs no --update (updating by name), and the existing float survives printing
    r = cli(capsys, "setup-bot", "--symbol", "GOLD", "--name", "gold-scalper", "--config", str(cfg))
    assert r.code == 0, r.err and "qty: 0.02" in r.out
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_update_that_changes_nothing_writes_nothing_and_keeps_the_backup(tmp_path, capsys):
    cfg = _copy_example(tmp_path)
    original = cfg.read_text()
    assert cli(capsys, "setup-bot", "--symbol", "XAGUSD", "--config", str(cfg)).code == 0
    added = cfg.read_text()
    assert added != original and (tmp_path / "bots.yaml.bak").read_text() == original
    again = cli(capsys, "setup-bot", "--symbol", "XAGUSD", "--config", str(cfg), "--json")
    assert again.code == 0, again.err
    doc = json.loads(again.out)
    assert doc["changed"] is False and doc["created"] is False
    assert cfg.read_text() == added                                   # not rewritten
    assert (tmp_path / "bots.yaml.bak").read_text() == original        # the backup is still the file before the add
    human = cli(capsys, "setup-bot", "--symbol", "XAGUSD", "--config", str(cfg))
    assert human.code == 0 and "nothing written" in human.out and "updated" not in human.out


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o555])
def test_a_read_only_bots_file_is_refused_even_for_root(tmp_path, capsys, mode):
    cfg = _copy_example(tmp_path)
    before = _digest(cfg)
    cfg.chmod(mode)
    try:
        r = cli(capsys, "setup-bot", "--symbol", "EURJPY", "--config", str(cfg))
    finally:
        mode_after = cfg.stat().st_mode & 0o777
        cfg.chmod(0o644)
    assert r.code == 2 and "read-only" in r.err and str(cfg) in r.err
    assert _digest(cfg) == before and mode_after == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bots.yaml"]   # no temp file, no backup


def test_mode_and_owner_carry_over_to_the_new_file(tmp_path, capsys):
    cfg = _copy_example(tmp_path)
    cfg.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(cfg, 4321, 4321)
    r = cli(capsys, "setup-bot", "--symbol", "EURJPY", "--config", str(cfg))
    assert r.code == 0, r.err
    st = cfg.stat()
    assert st.st_mode & 0o777 == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (4321, 4321)
    assert load_config(cfg).bot("eurjpy-scalper").symbol == "EURJPY"
