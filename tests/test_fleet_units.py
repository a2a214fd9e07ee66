"""The fleet's parts that need no broker: which accounts and bots a host serves, the pass slots,
the slot claim in the ledger (on both engines), the config's `host:` and `fleet:`, run-once --host."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from scalper.config import load_config
from scalper.errors import ConfigError
from scalper.fleet.hosts import (
    LOCAL,
    SLOT_TOLERANCE_S,
    for_host,
    hosts_of,
    is_fleet,
    slot_of,
    slot_start,
)
from scalper.ledger import Ledger
from scalper.ledger import fleet as books
from tests.conftest import shared_file


def _config(tmp_path, accounts, bots, **extra):
    doc = {"ledger": "ledger.db", "engine": {"log_file": None},
           "feed": {"type": "csv", "files": {"XAUUSDm": str(shared_file("XAUUSD_M1.csv"))}, "max_bar_age_s": 180},
           "paper": {"state": "paper.db"}, "accounts": accounts, "bots": bots, **extra}
    path = tmp_path / "bots.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _bot(name, accounts):
    return {"name": name, "symbol": "XAUUSDm", "accounts": accounts}


def test_a_host_runs_the_bots_with_an_account_there_and_only_its_accounts(tmp_path):
    cfg = load_config(_config(tmp_path, [{"id": 1, "host": "a"}, {"id": 2, "host": "b"}, {"id": 3}],
                              [_bot("both", [1, 2]), _bot("only_b", [2]), _bot("here", [3])]))
    assert hosts_of(cfg) == ["a", "b", LOCAL] and is_fleet(cfg)
    a = for_host(cfg, "a")
    assert [x.id for x in a.accounts] == [1] and [(b.name, b.accounts) for b in a.bots] == [("both", [1])]
    b = for_host(cfg, "b")
    assert [(x.name, x.accounts) for x in b.bots] == [("both", [2]), ("only_b", [2])]
    assert [(x.name, x.accounts) for x in for_host(cfg, LOCAL).bots] == [("here", [3])]
    # the bots keep everything else (magic number, strategies, risk)
    assert a.bot("both").magic_number == cfg.bot("both").magic_number


def test_a_single_machine_is_unchanged(tmp_path):
    cfg = load_config(_config(tmp_path, [{"id": 1}, {"id": 2}], [_bot("gold", [1, 2])]))
    assert not is_fleet(cfg) and for_host(cfg, LOCAL) is cfg


def test_run_once_host_names_a_host_with_accounts(tmp_path):
    path = _config(tmp_path, [{"id": 1, "host": "a"}], [_bot("gold", [1])])
    p = subprocess.run([sys.executable, "-m", "scalper", "run-once", "--config", str(path), "--host", "nope",
                        "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 2 and "no account has host 'nope'" in p.stderr and "a" in json.loads(p.stdout)["error"]
    p = subprocess.run([sys.executable, "-m", "scalper", "run-once", "--config", str(path), "--host", "a",
                        "--now", "2025-05-15T09:16:05Z", "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["orders_created"] == 1


@pytest.mark.parametrize("bad", ["has space", "", "-lead", "x" * 64])
def test_a_host_name_is_a_plain_name(tmp_path, bad):
    with pytest.raises(ConfigError):
        load_config(_config(tmp_path, [{"id": 1, "host": bad}], []))


def test_the_broker_url_never_carries_a_password_in_the_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(_config(tmp_path, [{"id": 1}], [], fleet={"broker_url": "redis://:s3cret@broker:6379/0"}))
    assert "s3cret" not in str(exc.value) and "SCALPER_BROKER_URL" in str(exc.value)
    cfg = load_config(_config(tmp_path, [{"id": 1}], [], fleet={"broker_url": "amqp://broker:5672//"}))
    assert cfg.fleet.broker_url == "amqp://broker:5672//" and cfg.fleet.queue_prefix == "scalper"


@given(st.integers(min_value=1_600_000_000, max_value=2_000_000_000), st.sampled_from([5.0, 15.0, 45.0, 60.0]),
       st.floats(min_value=0.0, max_value=0.999))
def test_passes_sent_near_one_grid_instant_share_its_slot(base, interval, frac):
    """A beat sends at its grid instant plus its delay; another beat's clock may be up to
    SLOT_TOLERANCE_S ahead: every send from tolerance before the instant to tolerance before the
    next lands in the same slot, and slot k starts at k * interval."""
    slot = int(base // interval)
    grid = slot_start(slot, interval)
    offset = -SLOT_TOLERANCE_S + 0.001 + frac * (interval - 0.002)
    assert slot_of(grid + offset, interval) == slot
    assert slot_of(grid - SLOT_TOLERANCE_S - 0.01, interval) == slot - 1


def test_the_beat_schedule_is_due_on_the_grid_only():
    pytest.importorskip("celery")
    from celery import Celery

    from scalper.fleet.app import GridSchedule

    app = Celery(set_as_current=False)
    sched = GridSchedule(45.0, app=app)
    import time as _time

    now = _time.time()
    last_same_slot = datetime.fromtimestamp(now - (now % 45.0) + 0.001, tz=UTC)
    due, wait = sched.is_due(last_same_slot)
    assert not due and 0 < wait <= 45.0
    due, _ = sched.is_due(datetime.fromtimestamp(now - 45.0, tz=UTC))
    assert due


def test_a_slot_is_claimed_once_per_host_and_never_for_an_older_slot(tmp_path, ledger_engine, request):
    where = tmp_path / "ledger.db" if ledger_engine == "sqlite" else request.getfixturevalue("pg_ledger_url")
    if ledger_engine == "postgresql":
        from scalper.ledger.postgres import LedgerUrl

        where = LedgerUrl.parse(where)
    with Ledger(where) as led:
        assert books.claim_slot(led, "a", 100, 1.0, detail={})
        assert not books.claim_slot(led, "a", 100, 1.0, detail={})     # the second beat's copy
        assert books.claim_slot(led, "b", 100, 1.0, detail={})         # another host, same slot
        assert books.claim_slot(led, "a", 101, 2.0, detail={})
        assert not books.claim_slot(led, "a", 99, 3.0, detail={})      # late: never an older slot
        kinds = [r["kind"] for r in led.query("SELECT kind FROM audit ORDER BY id")]
    assert kinds == ["fleet_pass", "fleet_pass_dropped", "fleet_pass", "fleet_pass", "fleet_pass_dropped"]


def test_requests_are_pending_until_their_host_confirms(tmp_path):
    from scalper.fleet.requests import ask_hosts, pending_hosts

    with Ledger(tmp_path / "ledger.db") as led:
        from types import SimpleNamespace

        positions = [SimpleNamespace(id=1, bot="gold", account_id=7), SimpleNamespace(id=2, bot="gold", account_id=8)]
        with led.tx() as c:
            asked = ask_hosts(led, c, "kill_switch", {"vps1": positions[:1], "vps2": positions[1:]}, 10.0,
                              bots=["gold"])
        assert asked == ["vps1", "vps2"]
        assert [(p["host"], p["left_open"]) for p in pending_hosts(led)] == [("vps1", 1), ("vps2", 1)]
        req = books.requests(led, host="vps1")[0]
        with led.tx() as c:
            books.update_request(led, c, req, 20.0, confirmed=True, closed=1, left_open=0)
        assert [p["host"] for p in pending_hosts(led)] == ["vps2"]
        done = books.requests(led, pending_only=False, host="vps1")[0]
        assert done["confirmed_at"] is not None and done["closed"] == 1


def test_a_pass_waits_on_the_host_lock_then_runs_or_is_dropped_at_expiry(tmp_path):
    """A pass that finds its host's lock taken waits on the lock (not by setting itself up again
    and again); it runs once the lock is free, and is dropped when the slot expires first."""
    import threading
    import time

    from scalper.fleet.app import expiry_s, run_pass
    from scalper.ledger.lock import run_lock

    path = _config(tmp_path, [{"id": 1}], [_bot("gold", [1])], engine={"log_file": None, "interval_s": 5})
    cfg = load_config(path)
    now = "2025-05-15T09:16:05"
    with run_lock(tmp_path / "ledger.db", holder="a test"):
        began = time.time()
        dropped = run_pass(LOCAL, slot=1, now=now, config=str(path))
        waited = time.time() - began
    assert dropped["dropped"] == "the host's lock stayed taken until the slot expired"
    assert expiry_s(cfg) - 0.5 <= waited < expiry_s(cfg) + 2

    held = run_lock(tmp_path / "ledger.db", holder="a test")
    held.__enter__()
    threading.Timer(0.5, held.__exit__, (None, None, None)).start()
    ran = run_pass(LOCAL, slot=2, now=now, config=str(path))
    assert "dropped" not in ran and ran["exit_code"] == 0 and ran["run_id"]


def test_a_pass_loads_its_config_once_and_hands_the_hosts_view_to_its_run_and_its_requests(tmp_path, monkeypatch):
    """Even when it first finds the lock taken and waits: one load, one host view, the same
    object for the run and for serving the host's requests."""
    import threading
    import time

    from scalper import wiring
    from scalper.fleet import hosts, requests
    from scalper.fleet.app import run_pass
    from scalper.ledger.lock import run_lock

    path = _config(tmp_path, [{"id": 1, "host": "a"}, {"id": 2, "host": "b"}], [_bot("gold", [1, 2])])
    loads, views, served = [], [], []
    real_load, real_for_host, real_serve = wiring.load, hosts.for_host, requests.serve

    def load(option):
        loads.append(option)
        return real_load(option)

    def for_host(cfg, host):
        views.append(real_for_host(cfg, host))
        return views[-1]

    def serve(cfg, ledger_ref, host, **kw):
        served.append(cfg)
        return real_serve(cfg, ledger_ref, host, **kw)

    monkeypatch.setattr(wiring, "load", load)
    monkeypatch.setattr(hosts, "for_host", for_host)
    monkeypatch.setattr(requests, "serve", serve)
    held = run_lock(tmp_path / "ledger.db", holder="a test")
    held.__enter__()
    released: list[float] = []

    def release() -> None:
        released.append(time.time())
        held.__exit__(None, None, None)

    threading.Timer(1.0, release).start()
    doc = run_pass("a", slot=1, now="2025-05-15T09:16:05", config=str(path))
    assert "dropped" not in doc and doc["exit_code"] == 0 and doc["orders_created"] == 1
    assert doc["started"] >= released[0]                 # it did wait on the lock, then ran
    assert loads == [str(path)] and len(views) == 1
    assert served == views and [a.id for a in views[0].accounts] == [1]
    with Ledger(tmp_path / "ledger.db", readonly=True) as led:
        orders = led.query("SELECT account_id FROM orders")
    assert [o["account_id"] for o in orders] == [1]      # the host's accounts only


def test_a_pass_whose_run_fails_records_its_end_with_the_error_and_fails(tmp_path, monkeypatch):
    """A claimed slot whose run raises is not left without an end in the books (it read as a pass
    still running); the error still fails the task."""
    from scalper.fleet.app import run_pass
    from scalper.services import run as run_service

    path = _config(tmp_path, [{"id": 1}], [_bot("gold", [1])], engine={"log_file": None})

    def broken(*args, **kwargs):
        raise RuntimeError("the feed's folder vanished")
    monkeypatch.setattr(run_service, "run_loaded", broken)
    with pytest.raises(RuntimeError, match="folder vanished"):
        run_pass(LOCAL, slot=7, now="2025-05-15T09:16:05", config=str(path))
    with Ledger(tmp_path / "ledger.db", readonly=True) as led:
        ends = led.query("SELECT message, data FROM audit WHERE kind = 'fleet_pass_end'")
    assert len(ends) == 1 and "slot 7 ended" in ends[0]["message"]
    assert json.loads(ends[0]["data"])["error"] == "RuntimeError: the feed's folder vanished"


def test_a_pass_whose_lock_wait_fails_records_its_end_and_an_unknown_host_claims_nothing(tmp_path, monkeypatch):
    from scalper.errors import BadInput, LockHeld
    from scalper.fleet.app import run_pass
    from scalper.ledger import lock
    from scalper.services import run as run_service

    path = _config(tmp_path, [{"id": 1, "host": "a"}], [_bot("gold", [1])], engine={"log_file": None})

    def held(*args, **kwargs):
        raise LockHeld("another pass holds the host's lock")

    def broken_wait(*args, **kwargs):
        raise RuntimeError("the ledger went away during the wait")
    monkeypatch.setattr(run_service, "run_loaded", held)
    monkeypatch.setattr(lock, "run_lock", broken_wait)
    with pytest.raises(RuntimeError, match="went away"):
        run_pass("a", slot=3, now="2025-05-15T09:16:05", config=str(path))
    with pytest.raises(BadInput):
        run_pass("nowhere", slot=4, now="2025-05-15T09:16:05", config=str(path))
    with Ledger(tmp_path / "ledger.db", readonly=True) as led:
        audit = led.query("SELECT kind, message, data FROM audit WHERE kind LIKE 'fleet_pass%' ORDER BY id")
    assert [a["kind"] for a in audit] == ["fleet_pass", "fleet_pass_end"]   # slot 3 claimed and ended; 4 never
    assert json.loads(audit[1]["data"])["error"] == "RuntimeError: the ledger went away during the wait"
