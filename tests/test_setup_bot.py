"""setup-bot edits bots.yaml in place: comments, order and other bots survive."""

from __future__ import annotations

import hashlib

import yaml

from scalper.config import load_config
from tests.clikit import cli
from tests.conftest import ROOT


def _copy_example(tmp_path):
    cfg = tmp_path / "bots.yaml"
    cfg.write_text((ROOT / "bots.yaml").read_text())
    return cfg


def test_adds_a_bot_keeping_comments_and_other_bots(tmp_path, capsys):
    cfg = _copy_example(tmp_path)
    before = cfg.read_text()
    r = cli(capsys, "setup-bot", "--symbol", "XAUUSDm", "--name", "gold-m", "--account-id", "2", "--config",
            str(cfg), "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["created"] is True
    bot = doc["bot"]
    assert bot["engine_mode"] == "scalper" and bot["timeframe"] == "1m" and bot["lookback"] == 100
    assert bot["qty"] == 0.01 and bot["accounts"] == [2]
    assert bot["strategies"] == ["price_action_pinbar", "trend_pullback", "doji_breakout", "range_reversion"]
    assert bot["risk"] == {"max_concurrent": 2, "max_per_symbol": 1, "kill_switch": True}
    after = cfg.read_text()
    # every original line (comments included) is still there, in order, and the file still loads
    assert after.startswith(before.rstrip("\n").rsplit("\n", 0)[0][:200])
    for line in before.splitlines():
        assert line in after
    loaded = load_config(cfg)
    assert [b.name for b in loaded.bots] == ["gold-scalper", "eurusd-scalper", "btc-watch", "gold-m"]


def test_fx_default_qty_and_update_by_name(tmp_path, capsys):
    cfg = _copy_example(tmp_path)
    assert cli(capsys, "setup-bot", "--symbol", "GBPUSD", "--name", "cable", "--config", str(cfg)).code == 0
    assert load_config(cfg).bot("cable").qty == 0.10
    r = cli(capsys, "setup-bot", "--symbol", "GBPUSD", "--name", "cable", "--qty", "0.2", "--no-auto-trade",
            "--strategies", "trend_pullback,doji_breakout", "--config", str(cfg), "--json")
    assert r.code == 0 and r.json()["created"] is False
    b = load_config(cfg).bot("cable")
    assert b.qty == 0.2 and b.auto_trade is False and b.strategies == ["trend_pullback", "doji_breakout"]
    assert len([x for x in load_config(cfg).bots if x.name == "cable"]) == 1


def test_a_bad_request_leaves_the_file_untouched(tmp_path, capsys):
    cfg = _copy_example(tmp_path)
    digest = hashlib.sha256(cfg.read_bytes()).hexdigest()
    r = cli(capsys, "setup-bot", "--symbol", "XAUUSD", "--strategies", "magic_line", "--config", str(cfg))
    assert r.code == 2 and "magic_line" in r.err
    r = cli(capsys, "setup-bot", "--symbol", "XAUUSD", "--account-id", "99", "--config", str(cfg))
    assert r.code == 2 and "99" in r.err
    assert hashlib.sha256(cfg.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bots.yaml"]


def test_creates_a_new_file_that_runs(tmp_path, capsys):
    cfg = tmp_path / "fresh" / "bots.yaml"
    r = cli(capsys, "setup-bot", "--symbol", "XAUUSD", "--config", str(cfg))
    assert r.code == 0, r.err
    data = yaml.safe_load(cfg.read_text())
    assert data["bots"][0]["name"] == "xauusd-scalper" and data["accounts"][0]["broker"] == "paper"
    assert cli(capsys, "run-once", "--config", str(cfg)).code == 0
