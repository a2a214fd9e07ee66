"""A broker that answers late while a pass holds its host's lock (scalper.fleet.app.run_pass).

Pass A of host `a` runs in a process of its own with a paper broker that fills each order at
once but answers only `answer_delay_s` later (SCALPER_PAPER_FAULTS), so A holds the host's run
lock while the ledger still says `sent` for an order the broker has filled. Pass B of the same
host arrives meanwhile, in another process: the next slot's pass, which waits on the lock and
runs once A has released it, or is dropped when its slot expires first; or a second delivery of
A's own slot, dropped by the ledger's claim. Afterwards, on SQLite and PostgreSQL ledgers alike:
the books equal the broker (tests.fleetkit.assert_fleet_books_agree), one order per approved
signal and account, and every pass's end recorded exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from scalper.clock import iso
from scalper.orders import client_order_id
from tests.conftest import shared_file
from tests.enginekit import just_after_close
from tests.fleetkit import assert_fleet_books_agree, child_env, ledger_rows, pass_ends, rows, write_fleet

pytest.importorskip("celery", reason="the fleet's passes need Celery: pip install '.[fleet]'")

NOW = just_after_close("2025-05-15 09:15:00")   # a trend_pullback sell on the 09:15 bar
HOSTS = {"a": [1, 2], "b": [3]}
BOTS = [
    {"name": "gold", "symbol": "XAUUSDm", "accounts": [1, 3], "risk": {"max_concurrent": 2, "max_per_symbol": 1}},
    {"name": "gold2", "symbol": "XAUUSDm", "accounts": [2], "risk": {"max_concurrent": 2, "max_per_symbol": 1}},
]
DELAY_S = 2.0   # per send; host a sends two orders per signal
_PASS = ("import json, sys\nfrom scalper.fleet.app import run_pass\n"
         "doc = run_pass(sys.argv[1], slot=int(sys.argv[2]), now=sys.argv[3], config=sys.argv[4])\n"
         "print('PASS ' + json.dumps(doc))\n")


class Host:
    """Host `a`'s passes as processes of their own on one shared ledger (no Celery broker: the
    worker's task body, run_pass, is what is under test)."""

    def __init__(self, folder: Path, ledger_engine: str, interval_s: float):
        self.folder = folder
        if ledger_engine == "postgresql":
            from tests import pgkit

            self.ledger = pgkit.fresh_ledger_url()
        else:
            self.ledger = str(folder / "ledger.db")
        self.paths = write_fleet(folder, hosts=HOSTS, bots=BOTS, broker="redis", ledger=self.ledger,
                                 data_csv=shared_file("XAUUSD_M1.csv"), interval_s=interval_s)

    def start(self, slot: int, minutes_after: int = 0, faults: str = "") -> subprocess.Popen:
        env = child_env("redis", **({"SCALPER_PAPER_FAULTS": faults} if faults else {}))
        return subprocess.Popen([sys.executable, "-c", _PASS, "a", str(slot), iso(NOW + 60 * minutes_after),
                                 str(self.paths["a"])], cwd=self.folder, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    @staticmethod
    def result(proc: subprocess.Popen, timeout: float = 60.0) -> dict:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        lines = [ln for ln in out.splitlines() if ln.startswith("PASS ")]
        assert len(lines) == 1, (out, err)
        return json.loads(lines[0].removeprefix("PASS "))

    def wait_late_answer(self, proc: subprocess.Popen, timeout: float = 30.0) -> None:
        """Until A is inside a late send: the broker has filled an order the ledger still holds `sent`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            sent = [o["client_order_id"] for o in self.orders() if o["status"] == "sent"]
            db = self.folder / "paper-a.db"
            if sent and db.exists():
                filled = {o["client_order_id"] for o in rows(db, "SELECT client_order_id FROM orders "
                                                                 "WHERE state = 'filled'")}
                if set(sent) & filled:
                    return
            time.sleep(0.01)
        raise AssertionError("pass A never reached a late answer")

    def wait_claim(self, slot: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            claims = ledger_rows(self.ledger, "SELECT data FROM audit WHERE kind = 'fleet_pass'")
            if any(json.loads(c["data"])["slot"] == slot for c in claims):
                return
            time.sleep(0.01)
        raise AssertionError(f"no pass claimed slot {slot}")

    def orders(self) -> list[dict]:
        try:
            return ledger_rows(self.ledger, "SELECT * FROM orders")
        except Exception:   # the ledger is being created by the pass
            return []

    def check(self) -> dict:
        counts = assert_fleet_books_agree(self.folder, self.ledger, HOSTS)
        accounts = {b["name"]: [a for a in b["accounts"] if a in HOSTS["a"]] for b in BOTS}
        opens = ledger_rows(self.ledger, "SELECT * FROM orders WHERE kind = 'open'")
        approved = ledger_rows(self.ledger, "SELECT s.* FROM signals s JOIN decisions d ON d.signal_id = s.id "
                                            "WHERE d.action = 'open'")
        for sig in approved:   # one order per approved signal and account of host a: none doubled or lost
            for acc in accounts[sig["bot"]]:
                cid = client_order_id(sig["dedupe_key"], acc)
                assert [o["status"] for o in opens if o["client_order_id"] == cid] == ["filled"], (sig, acc)
        assert len(opens) == sum(len(accounts[s["bot"]]) for s in approved)
        counts["approved"] = len(approved)
        return counts

    def ends(self) -> Counter:
        return Counter((d["host"], d["slot"]) for d in pass_ends(self.ledger))


@pytest.fixture
def host(tmp_path, ledger_engine, request):
    return lambda interval_s=45.0: Host(tmp_path, ledger_engine, interval_s)


def test_the_next_pass_waits_for_a_late_broker_then_runs_and_the_books_agree(host):
    h = host()
    a = h.start(1, faults=f"answer_delay_s={DELAY_S}")
    h.wait_late_answer(a)
    b = h.start(2, minutes_after=1)          # the next slot's pass: the lock is A's
    h.wait_claim(2)
    assert [o for o in h.orders() if o["status"] == "sent"], "B claimed its slot after A's late answers"
    doc_a, doc_b = h.result(a), h.result(b)
    assert "dropped" not in doc_a and doc_a["exit_code"] == 0 and doc_a["orders_created"] == 2
    assert "dropped" not in doc_b and doc_b["exit_code"] == 0 and doc_b["orders_created"] == 0
    # B ran only once A's pass was over (A released the lock after its run), not beside it
    assert doc_b["started"] >= doc_a["started"] + doc_a["duration_s"] and doc_b["lateness_s"] > 0.5
    assert doc_a["duration_s"] >= 2 * DELAY_S
    counts = h.check()
    assert counts["approved"] == 2 and counts["broker_opens"] == 2 and counts["open_positions"] == 2
    assert h.ends() == Counter({("a", 1): 1, ("a", 2): 1})
    # a later pass reconciles nothing new and sends nothing again
    doc_c = h.result(h.start(3, minutes_after=2))
    assert doc_c["exit_code"] == 0 and doc_c["orders_created"] == 0
    assert h.check()["broker_opens"] == 2
    assert h.ends() == Counter({("a", 1): 1, ("a", 2): 1, ("a", 3): 1})


def test_a_second_delivery_of_the_slot_during_a_late_answer_is_dropped_once(host):
    h = host()
    a = h.start(1, faults=f"answer_delay_s={DELAY_S}")
    h.wait_late_answer(a)
    again = h.result(h.start(1))             # the same task delivered twice: the ledger's claim says no
    assert again["dropped"] == "duplicate: this slot already had its pass"
    assert a.poll() is None                  # ... at once, without waiting for A's lock
    doc_a = h.result(a)
    assert "dropped" not in doc_a and doc_a["orders_created"] == 2
    assert h.check()["broker_opens"] == 2
    assert h.ends() == Counter({("a", 1): 1})


def test_the_next_pass_is_dropped_when_its_slot_expires_behind_a_late_broker(host):
    h = host(interval_s=5.0)                 # expiry 2.5 s: less than A's two late answers
    a = h.start(1, faults="answer_delay_s=3")
    h.wait_late_answer(a)
    began = time.monotonic()
    doc_b = h.result(h.start(2, minutes_after=1))
    assert doc_b["dropped"] == "the host's lock stayed taken until the slot expired"
    assert time.monotonic() - began >= 2.5   # it waited for the lock until its slot's expiry
    assert a.poll() is None                  # dropped while A still held the lock
    doc_a = h.result(a)
    assert "dropped" not in doc_a and doc_a["exit_code"] == 0 and doc_a["orders_created"] == 2
    assert h.ends() == Counter({("a", 1): 1, ("a", 2): 1})
    dropped = [d for d in pass_ends(h.ledger) if d["slot"] == 2]
    assert dropped[0]["dropped"] == doc_b["dropped"] and "run_id" not in dropped[0]
    runs = ledger_rows(h.ledger, "SELECT id FROM runs")
    assert [r["id"] for r in runs] == [doc_a["run_id"]]     # B never ran
    counts = h.check()
    assert counts["approved"] == 2 and counts["broker_opens"] == 2
