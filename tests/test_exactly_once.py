"""Exactly-once orders under real crashes: a `scalper run-once` child process is
SIGKILLed at each step of the order path, then run again. Afterwards the paper
broker's own books (its SQLite file) must hold at most one opening order per
approved signal and account, and the ledger must agree with them.

This module also holds the helpers the other exactly-once modules share
(test_run_lock, test_broker_faults, test_reconcile): a bots file with one bot on
two paper accounts over the real XAUUSD M1 export, a real CLI run, and
`assert_books_agree`, the broker-vs-ledger check.

What each crash leaves behind, and what a rerun makes of it (asserted below in
CASES). The bot `gold` trades on paper accounts 1 and 2; "broker" counts filled
opening orders in the paper broker's own books. "Fresh" is a rerun at the same
instant or a minute later (within signal_max_age_s); "stale" is 4 minutes later.

- after_signal — crash: signal, no decision / broker nothing.
  fresh: decided now, acc 1 and 2 filled / broker 2.
  stale: decided `reject risk_signal_stale`, no orders / nothing.
- after_decision — crash: signal + `open` decision / nothing.
  fresh: acc 1 and 2 filled / 2.  stale: no orders (too old to send) / nothing.
- after_intent — crash: acc 1 `new` / nothing.
  fresh: acc 1 sent by reconciliation (a `new` order provably never left), acc 2 by
  the fan-out, both filled / 2.  stale: acc 1 `failed` (never sent, signal stale) / nothing.
- during_send (the paper broker has the request, has not filled it) — crash: acc 1 `sent` / nothing.
  fresh: acc 1 `failed` (not at the broker: never resent), acc 2 filled / 1 (acc 2).
  stale: acc 1 `failed` / nothing.
- after_fill (the paper broker filled and committed) — crash: acc 1 `sent` / acc 1.
  fresh: acc 1 `filled` (found by reconciliation), acc 2 filled / 2.
  stale: acc 1 `filled` / acc 1.
- paper crash_at=before_fill: as during_send.  paper crash_at=after_fill: as after_fill.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from scalper.clock import iso
from scalper.config import load_config
from scalper.orders import client_order_id
from tests.conftest import shared_file
from tests.enginekit import engine_at, golden, just_after_close
from tests.pgkit import clone_ledger, fresh_ledger_url, has_ledger, is_url, ledger_of, rows

# A trend_pullback sell on the 09:15 bar, the only signal of its minute; none on the 09:16 and 09:19 bars.
SIGNAL_BAR = "2025-05-15 09:15:00"
NOW = just_after_close(SIGNAL_BAR)                  # 09:16:05
ACCOUNTS = (1, 2)
BOT = "gold"
SYMBOL = "XAUUSDm"
FRESH = ("+0s", "+60s")                              # reruns within signal_max_age_s (120 s)


# --- shared helpers ------------------------------------------------------------
def write_bots(folder: Path, *, engine: dict | None = None, paper: dict | None = None, risk: dict | None = None,
               symbols: dict | None = None, accounts=ACCOUNTS, ledger: str = "ledger.db") -> Path:
    """bots.yaml: the bot `gold` on XAUUSDm (the real M1 export), one order per paper account;
    the ledger a file beside it, or a PostgreSQL URL (tests/pgkit.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "ledger": ledger,
        "engine": {"log_file": None, **(engine or {})},
        "feed": {"type": "csv", "files": {SYMBOL: str(shared_file("XAUUSD_M1.csv"))}, "max_bar_age_s": 180},
        "paper": {"state": "paper.db", "initial_balance": 10000, **(paper or {})},
        "accounts": [{"id": a, "name": f"paper-{a}", "broker": "paper"} for a in accounts],
        "symbols": symbols or {},
        "bots": [{"name": BOT, "symbol": SYMBOL, "accounts": list(accounts),
                  "risk": {"max_concurrent": 2, "max_per_symbol": 1, **(risk or {})}}],
    }
    path = folder / "bots.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def ledger_for(engine: str) -> str:
    """`ledger:` for a test on `engine` (the ledger_engine fixture): a file, or a fresh PostgreSQL schema."""
    return "ledger.db" if engine == "sqlite" else fresh_ledger_url()


def copy_case(src: Path, dst: Path) -> None:
    """copytree of a test folder; a PostgreSQL ledger is copied into a schema of its own."""
    shutil.copytree(src, dst)
    ledger = ledger_of(dst)
    if is_url(ledger):
        config = dst / "bots.yaml"
        cfg = yaml.safe_load(config.read_text())
        cfg["ledger"] = clone_ledger(ledger).url
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_")}
    env.update(extra)
    return env


def run_cli(config: Path, now: float, **env: str) -> subprocess.CompletedProcess:
    """`python -m scalper run-once --config … --now … --json` as a real child process."""
    return subprocess.run([sys.executable, "-m", "scalper", "run-once", "--config", str(config), "--now", iso(now),
                           "--json"], cwd=config.parent, env=child_env(**env), capture_output=True, text=True,
                          timeout=120)


def integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def magic_of(config: Path, bot: str = BOT) -> int:
    return load_config(config).bot(bot).magic_number


def broker_opens(folder: Path) -> list[dict]:
    """Filled opening orders in the paper broker's own books (an opening order is its position's ticket)."""
    if not (folder / "paper.db").exists():
        return []
    return rows(folder / "paper.db", "SELECT * FROM orders WHERE state = 'filled' AND position_ticket = ticket "
                                     "ORDER BY ticket")


def books(folder: Path) -> dict:
    """What the ledger and the broker hold, in a form the tables above can be compared with."""
    ledger = ledger_of(folder)
    out = {"signals": 0, "decisions": [], "orders": {}, "broker": {}}
    if has_ledger(ledger) if is_url(ledger) else ledger.exists():
        out["signals"] = len(rows(ledger, "SELECT id FROM signals"))
        out["decisions"] = [f"{d['action']} {d['reason']}" for d in rows(ledger, "SELECT * FROM decisions ORDER BY id")]
        out["orders"] = {o["account_id"]: o["status"] for o in rows(ledger, "SELECT * FROM orders WHERE kind = 'open'")}
    out["broker"] = dict(Counter(int(o["account"]) for o in broker_opens(folder)))
    return out


def assert_books_agree(folder: Path, magic: int, accounts=ACCOUNTS) -> None:
    """The exactly-once contract, checked against the broker's own state file."""
    ledger, broker = ledger_of(folder), folder / "paper.db"
    if not is_url(ledger):
        assert integrity(ledger) == "ok"
    if broker.exists():
        assert integrity(broker) == "ok"
    orders = rows(ledger, "SELECT * FROM orders")
    assert [o for o in orders if o["status"] in ("new", "sent")] == [], "an order was left unsettled"
    by_cid = {o["client_order_id"]: o for o in orders}
    opens = [o for o in broker_opens(folder) if o["magic"] == magic]
    adopted = {(str(p["account_id"]), p["ticket"]) for p in rows(ledger, "SELECT * FROM positions WHERE adopted = 1")}

    # At most one opening order per client id and account at the broker; each known to the ledger:
    # as the filled order that sent it, or (opened by someone else with our magic) as an adopted position.
    dupes = [k for k, n in Counter((o["account"], o["client_order_id"]) for o in opens).items() if n > 1]
    assert dupes == [], f"duplicated orders at the broker: {dupes}"
    for bo in opens:
        lo = by_cid.get(bo["client_order_id"])
        if lo is None:
            assert (bo["account"], bo["ticket"]) in adopted, \
                f"broker order {bo['ticket']} ({bo['client_order_id']}) is unknown to the ledger"
            continue
        assert str(lo["account_id"]) == bo["account"]
        assert lo["status"] == "filled", lo
        assert lo["broker_ticket"] == bo["ticket"] and lo["position_ticket"] == bo["position_ticket"]
        assert lo["fill_price"] == pytest.approx(bo["price"], abs=1e-9)
        assert lo["filled_volume"] == pytest.approx(bo["volume"], abs=1e-12)
        assert (lo["side"], lo["symbol"], lo["magic"]) == (bo["side"], bo["symbol"], bo["magic"])
    # ...and every order the ledger holds as filled is at the broker.
    at_broker = {(o["account"], o["client_order_id"]) for o in opens}
    for lo in orders:
        if lo["status"] == "filled" and lo["kind"] == "open":
            assert (str(lo["account_id"]), lo["client_order_id"]) in at_broker, lo

    # Per approved signal and account: at most one order in the ledger and at the broker.
    approved = rows(ledger, "SELECT s.* FROM signals s JOIN decisions d ON d.signal_id = s.id "
                            "WHERE d.action = 'open'")
    for sig in approved:
        for acc in accounts:
            cid = client_order_id(sig["dedupe_key"], acc)
            assert len([o for o in orders if o["client_order_id"] == cid]) <= 1
            assert len([o for o in opens if o["client_order_id"] == cid and o["account"] == str(acc)]) <= 1

    # An order the ledger gave up on has nothing at the broker.
    filled_cids = {(o["account"], o["client_order_id"]) for o in opens}
    for o in orders:
        if o["status"] in ("failed", "rejected", "error"):
            assert (str(o["account_id"]), o["client_order_id"]) not in filled_cids, o

    # Positions agree: open ones by ticket, side, volume and price; closed ones with the broker's closing deal.
    live = rows(broker, "SELECT * FROM positions WHERE magic = ?", (magic,)) if broker.exists() else []
    ledger_open = rows(ledger, "SELECT * FROM positions WHERE status = 'open'")
    assert {(str(p["account_id"]), p["ticket"]) for p in ledger_open} == {(p["account"], p["ticket"]) for p in live}
    live_by_key = {(p["account"], p["ticket"]): p for p in live}
    for p in ledger_open:
        bp = live_by_key[(str(p["account_id"]), p["ticket"])]
        assert (p["side"], p["volume"]) == (bp["side"], bp["volume"])
        assert p["price_open"] == pytest.approx(bp["price_open"], abs=1e-9)
    for p in rows(ledger, "SELECT * FROM positions WHERE status = 'closed'"):
        if p["close_reason"] == "missing_at_broker":
            assert p["profit"] is None
            continue
        outs = rows(broker, "SELECT * FROM deals WHERE account = ? AND position_id = ? AND entry = 'out'",
                    (str(p["account_id"]), p["ticket"]))
        assert len(outs) == 1, p
        assert p["close_price"] == pytest.approx(outs[0]["price"], abs=1e-9)
        assert p["profit"] == pytest.approx(outs[0]["profit"], abs=1e-9)
        assert p["close_reason"] == outs[0]["reason"]

    # Every deal on our positions is a fill in the ledger (but the opening deal of an adopted position,
    # which the ledger knows only as the position it adopted).
    if broker.exists():
        deals = rows(broker, "SELECT * FROM deals WHERE magic = ? OR position_id IN "
                             "(SELECT ticket FROM orders WHERE magic = ? AND position_ticket = ticket)", (magic, magic))
        fills = {(str(f["account_id"]), f["deal_ticket"]) for f in rows(ledger, "SELECT * FROM fills")}
        missing = [(d["account"], d["ticket"], d["entry"]) for d in deals if (d["account"], d["ticket"]) not in fills
                   and not (d["entry"] == "in" and (d["account"], d["position_id"]) in adopted)]
        assert missing == [], f"broker deals missing from the ledger's fills: {missing}"


# --- the crash matrix ----------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    env: dict
    after_crash: dict
    after_fresh_rerun: dict
    after_stale_rerun: dict


_SIG = {"signals": 1}
_OPEN = ["open open"]
_BOTH_FILLED = {**_SIG, "decisions": _OPEN, "orders": {1: "filled", 2: "filled"}, "broker": {1: 1, 2: 1}}
_LOST_IN_SEND = {**_SIG, "decisions": _OPEN, "orders": {1: "sent"}, "broker": {}}
_FILLED_UNHEARD = {**_SIG, "decisions": _OPEN, "orders": {1: "sent"}, "broker": {1: 1}}

CASES = [
    Case("after_signal", {"SCALPER_CRASH_AT": "after_signal"},
         {**_SIG, "decisions": [], "orders": {}, "broker": {}},
         _BOTH_FILLED,
         {**_SIG, "decisions": ["reject risk_signal_stale"], "orders": {}, "broker": {}}),
    Case("after_decision", {"SCALPER_CRASH_AT": "after_decision"},
         {**_SIG, "decisions": _OPEN, "orders": {}, "broker": {}},
         _BOTH_FILLED,
         {**_SIG, "decisions": _OPEN, "orders": {}, "broker": {}}),
    Case("after_intent", {"SCALPER_CRASH_AT": "after_intent"},
         {**_SIG, "decisions": _OPEN, "orders": {1: "new"}, "broker": {}},
         _BOTH_FILLED,
         {**_SIG, "decisions": _OPEN, "orders": {1: "failed"}, "broker": {}}),
    Case("during_send", {"SCALPER_CRASH_AT": "during_send"},
         _LOST_IN_SEND,
         {**_SIG, "decisions": _OPEN, "orders": {1: "failed", 2: "filled"}, "broker": {2: 1}},
         {**_SIG, "decisions": _OPEN, "orders": {1: "failed"}, "broker": {}}),
    Case("after_fill", {"SCALPER_CRASH_AT": "after_fill"},
         _FILLED_UNHEARD,
         _BOTH_FILLED,
         {**_SIG, "decisions": _OPEN, "orders": {1: "filled"}, "broker": {1: 1}}),
    Case("paper_crash_before_fill", {"SCALPER_PAPER_FAULTS": "crash_at=before_fill"},
         _LOST_IN_SEND,
         {**_SIG, "decisions": _OPEN, "orders": {1: "failed", 2: "filled"}, "broker": {2: 1}},
         {**_SIG, "decisions": _OPEN, "orders": {1: "failed"}, "broker": {}}),
    Case("paper_crash_after_fill", {"SCALPER_PAPER_FAULTS": "crash_at=after_fill"},
         _FILLED_UNHEARD,
         _BOTH_FILLED,
         {**_SIG, "decisions": _OPEN, "orders": {1: "filled"}, "broker": {1: 1}}),
]


def test_the_chosen_minute_has_exactly_one_signal_and_none_after():
    rows_ = golden(shared_file("XAUUSD_M1.expected_signals.csv"))
    assert [(r["strategy"], r["direction"]) for r in rows_ if r["bar_time"] == SIGNAL_BAR] == [("trend_pullback",
                                                                                                  "sell")]
    # the reruns evaluate the 09:15 bar again, the 09:16 bar (+60 s) and the 09:19 bar (+240 s)
    assert not [r for r in rows_ if r["bar_time"] in ("2025-05-15 09:16:00", "2025-05-15 09:19:00")]


def test_an_uninterrupted_run_fills_one_order_per_account(tmp_path, ledger_engine):
    config = write_bots(tmp_path, ledger=ledger_for(ledger_engine))
    done = run_cli(config, NOW)
    assert done.returncode == 0, done.stderr
    assert books(tmp_path) == _BOTH_FILLED
    assert_books_agree(tmp_path, magic_of(config))
    # The request carried the client id (MT5: the comment, <= 27 safe ASCII characters) and the magic.
    orders = rows(ledger_of(tmp_path), "SELECT * FROM orders")
    positions = rows(tmp_path / "paper.db", "SELECT * FROM positions ORDER BY account")
    assert [(p["comment"], p["magic"]) for p in positions] == [(o["client_order_id"], magic_of(config))
                                                               for o in sorted(orders, key=lambda o: o["account_id"])]
    assert all(len(o["client_order_id"]) <= 27 and o["client_order_id"].isalnum() and o["client_order_id"].isascii()
               for o in orders)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_killed_at_each_step_then_rerun_gives_exactly_one_order(tmp_path, case, ledger_engine):
    crashed = tmp_path / "crashed"
    config = write_bots(crashed, ledger=ledger_for(ledger_engine))
    magic = magic_of(config)

    died = run_cli(config, NOW, **case.env)
    assert died.returncode == -signal.SIGKILL, (died.returncode, died.stderr)
    assert died.stdout == ""
    assert books(crashed) == case.after_crash
    [run] = rows(ledger_of(crashed), "SELECT * FROM runs")
    assert run["status"] == "running" and run["finished_at"] is None     # killed mid-pass, as a power cut would

    # Reruns on copies of the crashed state: the same instant and a minute later (both within the
    # signal's freshness), and once the signal is stale. The dead process's lock blocks none of them.
    # The first is the real CLI again; the other two run the same engine in-process, to save time.
    for label, offset in (("+0s", 0), ("+60s", 60), ("+240s", 240)):
        folder = tmp_path / label
        copy_case(crashed, folder)
        if label == "+0s":
            done = run_cli(folder / "bots.yaml", NOW + offset)
            assert done.returncode == 0, done.stderr
            summary = json.loads(done.stdout)
        else:
            summary = engine_at(folder / "bots.yaml", NOW + offset).run_once().to_dict()
        assert summary["exit_code"] == 0 and summary["errors"] == [], summary["errors"]
        expected = case.after_fresh_rerun if label in FRESH else case.after_stale_rerun
        assert books(folder) == expected, label
        assert_books_agree(folder, magic)
        if case.after_crash["orders"]:
            assert summary["reconciled"], "the interrupted order was not reconciled"
        runs = rows(ledger_of(folder), "SELECT * FROM runs ORDER BY rowid")
        assert [r["status"] for r in runs] == ["interrupted", "ok"]     # the dead run is marked as such
        [note] = rows(ledger_of(folder), "SELECT * FROM audit WHERE kind = 'run_interrupted'")
        assert note["run_id"] == runs[1]["id"] and runs[0]["id"] in note["message"]

    # A third run changes nothing: every order is settled and every approved signal served.
    again = engine_at(tmp_path / "+0s" / "bots.yaml", NOW + 20).run_once()
    assert again.exit_code == 0 and again.orders_created == 0 and again.reconciled == []
    assert books(tmp_path / "+0s") == case.after_fresh_rerun
    assert_books_agree(tmp_path / "+0s", magic)


def test_a_crash_during_the_recovery_itself_is_recovered_too(tmp_path, ledger_engine):
    """Killed after the intent; the rerun is killed again as its reconciliation's send is filled;
    the third run finds that fill and completes the fan-out: still exactly one order per account."""
    config = write_bots(tmp_path, ledger=ledger_for(ledger_engine))
    assert run_cli(config, NOW, SCALPER_CRASH_AT="after_intent").returncode == -signal.SIGKILL
    assert books(tmp_path)["orders"] == {1: "new"}
    assert run_cli(config, NOW, SCALPER_CRASH_AT="after_fill").returncode == -signal.SIGKILL
    assert books(tmp_path) == _FILLED_UNHEARD                     # acc 1 filled at the broker, `sent` here
    s = engine_at(config, NOW + 30).run_once()
    assert s.exit_code == 0 and len(s.reconciled) == 1, s.errors
    assert books(tmp_path) == _BOTH_FILLED
    assert_books_agree(tmp_path, magic_of(config))
    assert [r["status"] for r in rows(ledger_of(tmp_path), "SELECT status FROM runs ORDER BY rowid")] == [
        "interrupted", "interrupted", "ok"]
