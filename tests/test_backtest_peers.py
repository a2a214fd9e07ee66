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


def test_the_summary_says_what_the_replay_charged_and_how_it_trailed(capsys, xau_csv, tmp_path):
    base = ["backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--strategies", "price_action_pinbar"]
    default = json.loads(cli(capsys, *base, "--json").out)["costs"]
    assert default == {"spread_points": 20.0, "spread_from": "the symbol's typical spread", "trailing_stop": True,
                       "leverage": 100.0}
    peers = json.loads(cli(capsys, *base, "--json", "--spread", "0", "--no-trailing", "--leverage", "30").out)
    assert peers["costs"] == {"spread_points": 0.0, "spread_from": "--spread", "trailing_stop": False,
                              "leverage": 30.0}
    text = " ".join(cli(capsys, *base, "--spread", "0", "--no-trailing").out.split())
    assert "costs: spread 0 points (--spread) trailing stop off leverage 1:100" in text
    # a file with a spread column: charged bar by bar
    lines = xau_csv.read_text().splitlines()
    with_spread = tmp_path / "spread.csv"
    with_spread.write_text("\n".join([lines[0] + ",Spread"] + [line + ",12" for line in lines[1:]]) + "\n")
    doc = json.loads(cli(capsys, "backtest", "--data", str(with_spread), "--symbol", "XAUUSD", "--json").out)
    assert doc["costs"]["spread_points"] is None and doc["costs"]["spread_from"] == "the file's spread column"
    text = " ".join(cli(capsys, "backtest", "--data", str(with_spread), "--symbol", "XAUUSD").out.split())
    assert "costs: spread from the file's spread column trailing stop on" in text


def test_a_file_of_another_instrument_is_warned_of(capsys, xau_csv, btc_csv):
    wrong = json.loads(cli(capsys, "backtest", "--data", str(btc_csv), "--symbol", "XAUUSD", "--json").out)
    assert any("46 times XAUUSD's usual level" in w and "is the symbol right?" in w for w in wrong["warnings"])
    right = json.loads(cli(capsys, "backtest", "--data", str(btc_csv), "--symbol", "BTCUSD", "--json").out)
    assert right["warnings"] == []
    gold = json.loads(cli(capsys, "backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--json").out)
    assert gold["warnings"] == []
    scan = json.loads(cli(capsys, "scan", "--data", str(xau_csv), "--symbol", "EURUSD", "--json").out)
    assert any("EURUSD's usual level" in w for w in scan["warnings"])
    assert json.loads(cli(capsys, "scan", "--data", str(xau_csv), "--json").out)["warnings"] == []
    text = " ".join(cli(capsys, "backtest", "--data", str(btc_csv), "--symbol", "XAUUSD").out.split())
    assert "warning: the file's prices (median close 107,449) are 46 times XAUUSD's usual level" in text
