"""--json output: valid JSON always; indented by 2 as before, a long top-level list one item per line."""

from __future__ import annotations

import json

from scalper.cli.common import LONG_LIST, dumps
from scalper.jsonout import finite
from tests.clikit import cli


def test_a_document_without_a_long_list_is_written_as_before():
    doc = {"run_id": "x", "orders": [{"id": 1, "status": "filled"}], "nested": {"a": [1, 2], "b": None},
           "text": "line\nbreak é", "n": 1.5}
    assert dumps(doc) == json.dumps(doc, indent=2)


def test_a_long_list_is_one_item_per_line_and_parses_back():
    doc = {"symbol": "XAUUSD", "totals": {"trades": 2, "rejected": {}},
           "trades": [{"entry": 1.0 + i, "strategy": "a\"b", "pnl": -0.1} for i in range(LONG_LIST + 5)],
           "empty": []}
    text = dumps(doc)
    assert json.loads(text) == doc
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert sum(line.startswith('    {"entry"') for line in lines) == LONG_LIST + 5


def test_backtest_json_parses_with_its_trades_one_per_line(capsys, xau_csv):
    r = cli(capsys, "backtest", "--data", str(xau_csv), "--symbol", "XAUUSD", "--json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert len(doc["trades"]) > LONG_LIST
    assert len(r.out.splitlines()) < 200 + len(doc["trades"])


def test_long_list_items_are_written_as_json_dumps_writes_them():
    items = [{"t": "2025-05-15 09:14:00", "x": 0.1 + i / 3, "n": None, "ok": True, "inf": float("inf"), "u": "é\n"}
             for i in range(LONG_LIST)]
    text = dumps({"rows": items})
    lines = text.splitlines()[2:-2]
    assert [line.strip().rstrip(",") for line in lines] == [json.dumps(finite(i)) for i in items]
    assert '"inf": null' in text   # never Infinity (scalper.jsonout)
