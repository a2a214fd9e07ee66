"""`backtest --spread/--no-trailing`: the setup other backtesters use, expressed on the command line."""

from __future__ import annotations

import json

from tests.clikit import cli


def test_no_spread_and_no_trailing(capsys, xau_csv):
    base = ["backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--strategies", "price_action_pinbar", "--json"]
    default = json.loads(cli(capsys, *base).out)
    peers = cli(capsys, *base, "--spread", "0", "--no-trailing")
    assert peers.code == 0
    doc = json.loads(peers.out)
    assert doc["trailing_stop_moves"] == 0 and set(doc["exit_reasons"]) <= {"sl", "tp", "end"}
    assert all(t["final_sl"] == t["sl"] for t in doc["trades"])
    # no costs: the same entries shifted by the half spread the default charges (20 points of 0.01)
    by_time = {t["entry_time"]: t for t in default["trades"]}
    shared = [t for t in doc["trades"] if t["entry_time"] in by_time]
    assert shared
    for t in shared:
        sign = 1 if t["direction"] == "buy" else -1
        assert abs(by_time[t["entry_time"]]["entry"] - (t["entry"] + sign * 0.10)) < 1e-9
    wide = json.loads(cli(capsys, *base, "--spread", "60").out)
    assert wide["totals"]["net_pnl"] < doc["totals"]["net_pnl"]


def test_spread_must_not_be_negative(capsys, xau_csv):
    r = cli(capsys, "backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--spread", "-1")
    assert r.code == 2
