"""`scalper check` lists every feed symbol and every account, whatever failed before it, and on a
machine without the MetaTrader5 package points at the terminal bridge rather than an install that
cannot work there."""

from __future__ import annotations

import sys

import pytest
import yaml

from scalper.services.health import check
from tests.clikit import cli
from tests.conftest import shared_file

MT5_ACCOUNT = {"id": 2, "broker": "mt5", "login": 12345678, "server": "Broker-Demo", "password_env": "MT5_PASSWORD_2"}


def _config(folder, feed: dict, accounts: list[dict], bots: list[dict]):
    cfg = {"ledger": "var/ledger.db", "paper": {"state": "var/paper.db"}, "feed": feed, "accounts": accounts,
           "bots": bots}
    path = folder / "bots.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _items(doc: dict) -> dict[str, dict]:
    return {i["what"]: i for i in doc["items"]}


@pytest.mark.skipif(sys.platform == "win32", reason="the MetaTrader5 package may be installed on Windows")
def test_a_feed_that_cannot_open_still_lists_every_account_with_the_bridge_hint(tmp_path, capsys):
    path = _config(tmp_path, {"type": "mt5"}, [{"id": 1, "broker": "paper"}, MT5_ACCOUNT],
                   [{"name": "gold", "symbol": "XAUUSDm", "accounts": [1, 2]}])
    doc = check(str(path), None)
    items = _items(doc)
    assert list(items) == ["config", "ledger", "feed", "account account-1 (paper)", "account account-2 (mt5)"]
    assert not doc["ok"] and doc["exit_code"] == 3
    for what in ("feed", "account account-2 (mt5)"):
        detail = items[what]["detail"]
        assert not items[what]["ok"]
        assert "pip install MetaTrader5" not in detail
        assert "pip install '.[bridge]'" in detail and "`terminal:`" in detail and "Trading from Linux" in detail
    assert not items["account account-1 (paper)"]["ok"]
    assert "feed" in items["account account-1 (paper)"]["detail"]
    # the same list in the terminal, one line per item, and the same exit code
    r = cli(capsys, "check", "--config", str(path))
    assert r.code == 3
    assert r.out.count("FAIL") == 3 and "account-2" in r.out and "account-1" in r.out


def test_on_windows_the_package_hint_is_kept(tmp_path, monkeypatch):
    """Where the package can be installed, its own install hint stands."""
    from scalper import mt5_terminal
    from scalper.services import health

    monkeypatch.setattr(mt5_terminal.sys, "platform", "win32")
    monkeypatch.setattr(health.wiring, "make_feed", _missing_package)
    path = _config(tmp_path, {"type": "mt5"}, [MT5_ACCOUNT], [{"name": "gold", "symbol": "XAUUSDm", "accounts": [2]}])
    feed = _items(check(str(path), None))["feed"]
    assert not feed["ok"] and "pip install MetaTrader5" in feed["detail"]


def _missing_package(cfg):
    from scalper.errors import FeedUnavailable
    from scalper.mt5_terminal import missing_package

    raise FeedUnavailable(missing_package("the mt5 feed"))   # worded for the platform at hand


def test_every_symbol_and_account_is_listed_after_a_failing_symbol(tmp_path):
    """A missing file for the first symbol neither hides the second symbol nor the accounts."""
    feed = {"type": "csv", "files": {"AAAUSD": str(tmp_path / "missing.csv"),
                                     "XAUUSD": str(shared_file("XAUUSD_M1.csv"))}}
    accounts = [{"id": 1, "broker": "paper"}, {"id": 3, "broker": "paper"}]
    bots = [{"name": "a", "symbol": "AAAUSD", "accounts": [1]}, {"name": "gold", "symbol": "XAUUSD", "accounts": [1, 3]}]
    doc = check(str(_config(tmp_path, feed, accounts, bots)), None)
    items = _items(doc)
    assert [w for w in items if w.startswith(("feed", "account"))] == [
        "feed AAAUSD", "feed XAUUSD", "account account-1 (paper)", "account account-3 (paper)"]
    assert not items["feed AAAUSD"]["ok"] and "missing.csv" in items["feed AAAUSD"]["detail"]
    # the export is from 2025: listed with its bars and judged stale, as run-once would judge it
    xau = items["feed XAUUSD"]
    assert xau["detail"].startswith("101 bars, newest closed ") and ("max_bar_age_s=" in xau["detail"]) != xau["ok"]
    assert items["account account-1 (paper)"]["ok"] and items["account account-3 (paper)"]["ok"]
    assert doc["exit_code"] != 0


def test_check_and_run_once_judge_staleness_with_one_function():
    """The freshness rule itself: the newest bar closes BAR_SECONDS after it opens; fresh up to the limit."""
    import numpy as np

    from scalper.core.bars import BAR_SECONDS, Bars
    from scalper.engine.market import bar_freshness

    t = np.array([0, 60, 120], dtype=np.int64)
    ones = np.ones(3)
    bars = Bars(time=t, open=ones, high=ones, low=ones, close=ones, volume=ones, spread=ones)
    closes = 120 + BAR_SECONDS
    assert bar_freshness(bars, closes + 180, 180).fresh and bar_freshness(bars, closes + 180, 180).age_s == 180
    assert not bar_freshness(bars, closes + 181, 180).fresh
    empty = bar_freshness(bars.tail(0), closes, 180)
    assert empty.age_s is None and not empty.fresh and empty.bars == 0
