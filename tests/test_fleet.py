"""The fleet with real servers: three `scalper worker` processes as three terminal hosts, each
with its own paper broker state file, bots whose accounts span the hosts, a real Celery broker
(Redis, and RabbitMQ where marked) and one shared ledger.

After every drill — a worker SIGKILLed mid-pass and restarted, its broker connection dropped,
two beats at once, a pass killed between intent and send on one host while the others serve
the same signal, a kill-switch engaged from the operator's machine — the ledger agrees with
every host's paper broker position by position and order by order (fleetkit.assert_fleet_books_agree),
and every approved signal has exactly one order per account of its bot: nothing doubled or lost.
Skipped, with the reason, when a server is absent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from scalper.clock import iso
from scalper.orders import client_order_id
from tests.conftest import shared_file
from tests.enginekit import just_after_close
from tests.fleetkit import (
    RABBIT,
    REDIS,
    Worker,
    assert_fleet_books_agree,
    ledger_ref,
    ledger_rows,
    rabbit_close_connections,
    reachable,
    redis_kill_clients,
    tcp_ports,
    wait_passes,
    write_fleet,
)

pytest.importorskip("celery", reason="the fleet tests need Celery: pip install '.[fleet]'")

# A trend_pullback sell on the 09:15 bar (tests/test_exactly_once.py); every bot below trades it.
NOW = just_after_close("2025-05-15 09:15:00")
HOSTS = {"a": [1, 2], "b": [3, 4], "c": [5, 6]}
BOTS = [  # accounts spanning the hosts, and one bot on a single host
    {"name": "gold", "symbol": "XAUUSDm", "accounts": [1, 3, 5], "risk": {"max_concurrent": 2, "max_per_symbol": 1}},
    {"name": "gold2", "symbol": "XAUUSDm", "accounts": [2, 4], "risk": {"max_concurrent": 2, "max_per_symbol": 1}},
    {"name": "gold3", "symbol": "XAUUSDm", "accounts": [6], "risk": {"max_concurrent": 2, "max_per_symbol": 1}},
]


def _need(kind: str) -> None:
    addr = REDIS if kind == "redis" else RABBIT
    if not reachable(addr):
        pytest.skip(f"{kind} is not reachable at {addr[0]}:{addr[1]}: the fleet tests need a real broker")


class Fleet:
    def __init__(self, folder: Path, broker: str, engine: str):
        self.folder, self.broker = folder, broker
        if engine == "postgresql":
            from tests import pgkit

            self.ledger = pgkit.fresh_ledger_url()   # a schema of its own in this session's database
        else:
            self.ledger = str(folder / "ledger.db")
        self.paths = write_fleet(folder, hosts=HOSTS, bots=BOTS, broker=broker, ledger=self.ledger,
                                 data_csv=shared_file("XAUUSD_M1.csv"))
        self.where = ledger_ref(self.ledger)
        self.workers: dict[str, Worker] = {}
        from scalper.config import load_config
        from scalper.fleet.app import make_app

        self.cfg = load_config(self.paths["operator"])
        import os
        os.environ["SCALPER_BROKER_URL"] = _url(broker)
        self.app = make_app(self.cfg)

    def start(self, *hosts: str, **env: str) -> None:
        started = [self.worker(h, **env).start() for h in hosts or HOSTS]
        for w in started:
            w.wait_ready()

    def worker(self, host: str, pool: str = "prefork", **env: str) -> Worker:
        self.workers[host] = Worker(self.folder, host, self.paths[host], self.broker, pool=pool, **env)
        return self.workers[host]

    def run(self, slot: int, minutes_after: int = 0, hosts=None, wait: bool = True) -> None:
        """A pass of each host for `slot`, replaying the instant `minutes_after` minutes after NOW."""
        from scalper.fleet.app import send_pass

        now = iso(NOW + 60 * minutes_after)
        for h in hosts or HOSTS:
            send_pass(self.cfg, h, slot=slot, now=now, app=self.app)
        if wait:
            wait_passes(self.ledger, {(h, slot) for h in hosts or HOSTS})

    def check(self) -> dict:
        counts = assert_fleet_books_agree(self.folder, self.ledger, HOSTS)
        # nothing lost, nothing doubled: one order per approved signal and account of its bot
        bots = {b["name"]: b["accounts"] for b in BOTS}
        orders = ledger_rows(self.ledger, "SELECT * FROM orders WHERE kind = 'open'")
        approved = ledger_rows(self.ledger, "SELECT s.* FROM signals s JOIN decisions d ON d.signal_id = s.id "
                                            "WHERE d.action = 'open'")
        for sig in approved:
            for acc in bots[sig["bot"]]:
                cid = client_order_id(sig["dedupe_key"], acc)
                assert len([o for o in orders if o["client_order_id"] == cid]) == 1, (sig["dedupe_key"], acc)
        counts["approved"] = len(approved)
        return counts

    def close(self) -> None:
        for w in self.workers.values():
            w.stop()
        self.app.close()


def _url(kind: str) -> str:
    from tests.fleetkit import broker_url

    return broker_url(kind)


@pytest.fixture
def fleet(tmp_path, request, monkeypatch):
    """Three hosts on a real broker and a shared ledger: PostgreSQL (the fleet's ledger) unless the
    test asks for a shared SQLite file; `request.param` is "broker" or "broker/engine"."""
    kind, _, engine = getattr(request, "param", "redis").partition("/")
    engine = engine or "postgresql"
    _need(kind)
    if engine == "postgresql":
        from tests import pgkit

        pgkit.require()
    monkeypatch.setenv("SCALPER_BROKER_URL", _url(kind))
    f = Fleet(tmp_path, kind, engine)
    yield f
    f.close()


@pytest.mark.parametrize("fleet", ["redis", "redis/sqlite", pytest.param("rabbitmq", marks=pytest.mark.slow)],
                         indirect=True)
def test_three_hosts_serve_one_signal_each_to_its_own_accounts(fleet):
    fleet.start()
    fleet.run(1)
    fleet.run(2, minutes_after=1)
    counts = fleet.check()
    # one signal per bot, decided once for the fleet, served by each host to its own accounts
    assert counts["approved"] == 3 and counts["broker_opens"] == 6
    orders = ledger_rows(fleet.ledger, "SELECT account_id, status FROM orders WHERE kind = 'open' ORDER BY account_id")
    assert [(o["account_id"], o["status"]) for o in orders] == [(a, "filled") for a in range(1, 7)]
    runs = ledger_rows(fleet.ledger, "SELECT COUNT(*) AS n FROM runs")[0]["n"]
    assert runs == 6   # one pass per host per slot


@pytest.mark.slow
def test_a_worker_sigkilled_mid_pass_is_restarted_and_the_books_agree(fleet):
    # host b's sends are requoted four times (waits of 0.2 + 0.4 + 0.8 + 1.6 s): it is killed while sending
    fleet.start("a", "c")
    fleet.start("b", SCALPER_PAPER_FAULTS="retcodes=10004,10004,10004,10004")
    fleet.run(1, hosts=["a", "c"], wait=False)
    fleet.run(1, hosts=["b"], wait=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:   # b's order intent is recorded, its send is being retried
        got = ledger_rows(fleet.ledger, "SELECT status FROM orders WHERE account_id IN (3, 4)")
        if got:
            break
        time.sleep(0.02)
    assert got, "host b never reached its send"
    fleet.workers["b"].kill()
    wait_passes(fleet.ledger, {("a", 1), ("c", 1)})
    fleet.workers["b"].stop()
    fleet.start("b")                      # restarted, without the fault
    fleet.run(2, minutes_after=1)
    counts = fleet.check()
    assert counts["approved"] == 3
    interrupted = ledger_rows(fleet.ledger, "SELECT COUNT(*) AS n FROM runs WHERE status = 'interrupted'")[0]["n"]
    assert interrupted == 1


@pytest.mark.slow
def test_a_pass_killed_between_intent_and_send_while_other_hosts_serve_the_signal(fleet):
    # host a dies (solo pool: the worker itself) right after recording its first order intent
    fleet.worker("a", pool="solo", SCALPER_CRASH_AT="after_intent").start().wait_ready()
    fleet.start("b", "c")
    fleet.run(1, hosts=["b", "c"], wait=False)
    fleet.run(1, hosts=["a"], wait=False)
    assert fleet.workers["a"].wait_exit() == -9
    wait_passes(fleet.ledger, {("b", 1), ("c", 1)})
    left = ledger_rows(fleet.ledger, "SELECT account_id, status FROM orders WHERE account_id IN (1, 2)")
    assert [o["status"] for o in left] == ["new"]   # the intent, never sent
    fleet.workers["a"].stop()
    fleet.start("a")
    fleet.run(2, minutes_after=1)        # fresh: the new order is sent by reconciliation, once
    counts = fleet.check()
    assert counts["approved"] == 3 and counts["broker_opens"] == 6


@pytest.mark.parametrize("fleet", ["redis", pytest.param("rabbitmq", marks=pytest.mark.slow)], indirect=True)
def test_a_dropped_broker_connection_is_reestablished_and_passes_go_on(fleet):
    fleet.start()
    fleet.run(1)
    worker = fleet.workers["b"]
    port = 6379 if fleet.broker == "redis" else 5672
    ports = tcp_ports(worker.pids(), port)
    assert ports, "the worker holds no broker connection"
    if fleet.broker == "redis":
        dropped = redis_kill_clients(ports)
    else:
        import shutil

        if shutil.which("rabbitmqctl") is None:
            pytest.skip("rabbitmqctl is not available to close the connection from the server side")
        dropped = rabbit_close_connections(ports)
        if not dropped:
            pytest.skip("rabbitmqctl could not list or close connections here (no access to the node)")
    assert dropped >= 1
    fleet.run(2, minutes_after=1)
    fleet.run(3, minutes_after=2)
    assert "Connection to broker lost" in worker.log.read_text()   # it noticed, reconnected, served slots 2 and 3
    counts = fleet.check()
    assert counts["approved"] == 3


@pytest.mark.slow
def test_kill_switch_from_the_operator_reaches_every_host_and_says_who_has_not_confirmed(fleet):
    from scalper.services.control import kill_switch, status

    fleet.start()
    fleet.run(1)
    assert fleet.check()["open_positions"] == 6
    fleet.workers["c"].stop()            # host c is down when the operator acts
    doc = kill_switch(fleet.cfg, fleet.where, "engage", bot="gold", all_bots=False)
    assert doc["errors"] == []
    assert sorted(doc["bots"][0]["hosts_asked"]) == ["a", "b", "c"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pending = status(fleet.cfg, fleet.where, now=NOW + 60)["hosts_pending"]
        if [p["host"] for p in pending] == ["c"]:
            break
        time.sleep(0.05)
    assert [p["host"] for p in pending] == ["c"] and pending[0]["left_open"] == 1
    # c comes back: the task waiting on its queue closes its position and confirms
    fleet.start("c")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and status(fleet.cfg, fleet.where, now=NOW + 60)["hosts_pending"]:
        time.sleep(0.05)
    assert status(fleet.cfg, fleet.where, now=NOW + 60)["hosts_pending"] == []
    open_gold = ledger_rows(fleet.ledger, "SELECT * FROM positions WHERE status = 'open' AND bot = 'gold'")
    assert open_gold == []
    counts = fleet.check()
    assert counts["open_positions"] == 3   # gold2 and gold3 keep theirs


def test_rollback_close_positions_reaches_the_hosts(fleet):
    from scalper.services.control import rollback

    fleet.start()
    fleet.run(1)
    doc = rollback(fleet.cfg, fleet.where, since="1d", close_positions=True)
    assert doc["errors"] == [] and {p["host"] for p in doc["hosts_pending"]} <= {"a", "b", "c"}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and ledger_rows(fleet.ledger, "SELECT id FROM positions WHERE status = 'open'"):
        time.sleep(0.05)
    fleet.run(2, minutes_after=1)        # paused: the passes trade nothing, and confirm what is left
    counts = fleet.check()
    assert counts["open_positions"] == 0
    from scalper.fleet.requests import pending_hosts
    from scalper.ledger import Ledger

    with Ledger(fleet.where, readonly=True) as led:
        assert pending_hosts(led) == []


@pytest.mark.slow
def test_two_beats_give_one_pass_per_host_per_interval(tmp_path, monkeypatch):
    """Two real `scalper beat` processes on a 5 s grid: every slot's duplicate is dropped by the
    worker's claim in the ledger (one pass per host and slot), none runs late."""
    _need("redis")
    from tests import pgkit
    from tests.fleetkit import child_env

    pgkit.require()
    monkeypatch.setenv("SCALPER_BROKER_URL", _url("redis"))
    hosts = {"a": [1], "b": [2], "c": [3]}
    ledger = pgkit.fresh_ledger_url()
    paths = write_fleet(tmp_path, hosts=hosts, broker="redis", interval_s=5, ledger=ledger,
                        feed={"type": "builtin"}, bots=[{"name": "btc", "symbol": "BTCUSDm", "accounts": [1, 2, 3]}])
    workers = [Worker(tmp_path, h, paths[h], "redis").start() for h in hosts]
    import subprocess
    import sys

    beats = [subprocess.Popen([sys.executable, "-m", "scalper", "beat", "--config", str(paths["operator"])],
                              cwd=tmp_path, env=child_env("redis"), stdout=open(tmp_path / f"beat{i}.log", "wb"),
                              stderr=subprocess.STDOUT, start_new_session=True) for i in range(2)]
    try:
        for w in workers:
            w.wait_ready()
        time.sleep(12.5)
    finally:
        import os
        import signal

        for b in beats:
            os.killpg(b.pid, signal.SIGTERM)
        for b in beats:
            b.wait(15)
        for w in workers:
            w.stop()
    claims = [json.loads(r["data"]) for r in ledger_rows(ledger, "SELECT data FROM audit WHERE kind = 'fleet_pass'")]
    dropped = [json.loads(r["data"]) for r in ledger_rows(ledger, "SELECT data FROM audit "
                                                                  "WHERE kind = 'fleet_pass_dropped'")]
    per_slot: dict = {}
    for c in claims:
        per_slot.setdefault(c["slot"], []).append(c["host"])
    assert len(per_slot) >= 2, per_slot
    for slot, got in per_slot.items():
        assert sorted(got) == ["a", "b", "c"], (slot, got)     # one pass per host per slot
    assert {(d["host"], d["slot"]) for d in dropped} <= {(c["host"], c["slot"]) for c in claims}
    assert len(dropped) >= len(claims) - 3   # the second beat's copies (its first slot may precede the workers)
    assert max(c["lateness_s"] for c in claims) < 2.5
    runs = ledger_rows(ledger, "SELECT COUNT(*) AS n FROM runs")[0]["n"]
    assert runs == len(claims)
