"""A fleet on this machine for tests and the bench: terminal hosts as real `scalper worker`
processes (each with its own paper broker state file), a shared ledger, a real Celery broker
(Redis or RabbitMQ) with queue names and keys of its own, and the check that the ledger agrees
with every host's paper broker position by position and order by order."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

REDIS = ("127.0.0.1", 6379)
RABBIT = ("127.0.0.1", 5672)
ROOT = Path(__file__).resolve().parents[1]


def reachable(addr: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(addr, timeout=0.5):
            return True
    except OSError:
        return False


def broker_url(kind: str) -> str:
    # a db of its own on Redis is not needed: every key is under the fleet's unique prefix
    return "redis://127.0.0.1:6379/0" if kind == "redis" else "amqp://guest:guest@127.0.0.1:5672//"


def write_fleet(folder: Path, *, hosts: dict[str, list[int]], bots: list[dict], broker: str,
                data_csv: Path | None = None, ledger: str = "ledger.db", interval_s: float = 45.0,
                feed: dict | None = None, paper_balance: float = 10_000.0) -> dict[str, Path]:
    """One bots file per host (`bots-<host>.yaml`), identical but for the paper broker's state file,
    as each terminal host keeps its own copy; and `bots.yaml` for the operator. → {host: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"t{os.getpid()}{uuid.uuid4().hex[:6]}"
    base = {
        "ledger": ledger,
        "engine": {"log_file": None, "interval_s": interval_s},
        "feed": feed or {"type": "csv", "files": {"XAUUSDm": str(data_csv)}, "max_bar_age_s": 180},
        "paper": {"state": "paper-operator.db", "initial_balance": paper_balance},
        # no credentials in the file: the workers get the full URL from SCALPER_BROKER_URL
        "fleet": {"broker_url": broker_url(broker).replace("guest:guest@", ""), "queue_prefix": prefix},
        "accounts": [{"id": a, "name": f"paper-{a}", "broker": "paper", "host": h}
                     for h, ids in hosts.items() for a in ids],
        "bots": bots,
    }
    paths = {}
    for host in [*hosts, "operator"]:
        doc = json.loads(json.dumps(base))
        doc["paper"]["state"] = f"paper-{host}.db"
        path = folder / ("bots.yaml" if host == "operator" else f"bots-{host}.yaml")
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths[host] = path
    return paths


def child_env(broker: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_")}
    env["SCALPER_SQLITE_SYNCHRONOUS"] = os.environ.get("SCALPER_SQLITE_SYNCHRONOUS", "OFF")
    env["SCALPER_BROKER_URL"] = broker_url(broker)   # credentials from the environment only
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


class Worker:
    """`scalper worker --host H` as a real process group (the Celery main process and its pool child)."""

    def __init__(self, folder: Path, host: str, config: Path, broker: str, *, pool: str = "prefork",
                 ledger: str | None = None, **env: str):
        self.folder, self.host, self.config, self.broker, self.pool, self.ledger = (folder, host, config, broker,
                                                                                    pool, ledger)
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log = folder / f"worker-{host}.log"

    def start(self) -> Worker:
        args = [sys.executable, "-m", "scalper", "worker", "--host", self.host, "--config", str(self.config),
                "--pool", self.pool, "--loglevel", "INFO"]
        if self.ledger:
            args += ["--ledger", self.ledger]
        self._log = open(self.log, "ab")
        self.proc = subprocess.Popen(args, cwd=self.folder, env=child_env(self.broker, **self.env),
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker {self.host} exited {self.proc.returncode}:\n{self.log.read_text()}")
            if b" ready." in self.log.read_bytes():
                return
            time.sleep(0.05)
        raise AssertionError(f"worker {self.host} not ready in {timeout} s:\n{self.log.read_text()}")

    def pids(self) -> list[int]:
        """The main process and its pool children."""
        assert self.proc is not None
        out = [self.proc.pid]
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if os.getpgid(int(d.name)) == self.proc.pid and int(d.name) != self.proc.pid:
                        out.append(int(d.name))
                except OSError:
                    pass
        return out

    def kill(self) -> None:
        """SIGKILL, the whole group: nothing is cleaned up, as in a power cut of the terminal host."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, *, warm: bool = False) -> None:
        """Celery's warm shutdown (SIGTERM: the task in hand finishes) when `warm`, else SIGKILL
        (a test's passes are over by then, and a warm shutdown costs seconds)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                if not warm:
                    raise OSError
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        if self.proc is not None:
            self._log.close()

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)


def tcp_ports(pids: list[int], remote_port: int) -> list[int]:
    """Local ports of the TCP connections these processes hold to `remote_port` (from /proc)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, remote, inode = f[1], f[2], f[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


def redis_kill_clients(ports: list[int]) -> int:
    """CLIENT KILL each of these connections (the server stays up; only they are dropped)."""
    killed = 0
    for port in ports:
        for addr in (f"127.0.0.1:{port}",):
            out = subprocess.run(["redis-cli", "-h", REDIS[0], "-p", str(REDIS[1]), "CLIENT", "KILL", "ADDR", addr],
                                 capture_output=True, text=True, timeout=10, check=False)
            text = out.stdout.strip()   # "OK" (old syntax) or how many were killed
            killed += text == "OK" or (text.isdigit() and int(text) > 0)
    return killed


def rabbit_close_connections(ports: list[int]) -> int:
    """Close these AMQP connections from the server side with rabbitmqctl."""
    out = subprocess.run(["rabbitmqctl", "-q", "list_connections", "pid", "peer_port"], capture_output=True,
                         text=True, timeout=30, check=False)
    closed = 0
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) in ports:
            r = subprocess.run(["rabbitmqctl", "-q", "close_connection", parts[0], "scalper fleet test"],
                               capture_output=True, text=True, timeout=30, check=False)
            closed += r.returncode == 0
    return closed


# --- the ledger and the brokers -------------------------------------------------------------------
def rows(db: Path, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def ledger_rows(ledger: str, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    """Rows of the shared ledger, whichever engine holds it (through the ledger's own reader);
    none while it does not exist yet."""
    from scalper.ledger import Ledger, ledger_exists

    where = ledger_ref(ledger)
    if not ledger_exists(where):
        return []
    with Ledger(where, readonly=True) as led:
        return led.query(sql, params)


def ledger_ref(ledger: str) -> Any:
    """A ledger file's path, or a PostgreSQL ledger's LedgerUrl."""
    from scalper.ledger.postgres import LedgerUrl, is_url

    return LedgerUrl.parse(ledger) if is_url(ledger) else Path(ledger)


def pass_ends(ledger: str) -> list[dict[str, Any]]:
    out = []
    for r in ledger_rows(ledger, "SELECT data FROM audit WHERE kind = 'fleet_pass_end' ORDER BY id"):
        out.append(json.loads(r["data"]))
    return out


def wait_passes(ledger: str, want: set[tuple[str, int]], timeout: float = 30.0) -> None:
    """Until every (host, slot) in `want` has ended its pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done = {(d["host"], d["slot"]) for d in pass_ends(ledger)}
        except Exception:
            done = set()
        if want <= done:
            return
        time.sleep(0.05)
    raise AssertionError(f"passes not ended in {timeout} s: {sorted(want - done)}")


def assert_fleet_books_agree(folder: Path, ledger: str, hosts: dict[str, list[int]]) -> dict[str, int]:
    """The ledger agrees with every host's own paper broker, order by order and position by position:
    no order left unsettled; at most one opening order per client id and account, at the broker and
    in the ledger; every filled order in one is in the other with the same ticket, price and volume;
    open positions are the same set with the same side, volume and price; every closed position has
    its closing deal. → counts for the caller's own assertions."""
    orders = ledger_rows(ledger, "SELECT * FROM orders")
    assert [o for o in orders if o["status"] in ("new", "sent")] == [], "an order was left unsettled"
    by_cid = {o["client_order_id"]: o for o in orders}
    ledger_open = ledger_rows(ledger, "SELECT * FROM positions WHERE status = 'open'")
    ledger_closed = ledger_rows(ledger, "SELECT * FROM positions WHERE status = 'closed'")
    fills = {(str(f["account_id"]), f["deal_ticket"]) for f in ledger_rows(ledger, "SELECT * FROM fills")}
    counts = Counter()
    for host, accounts in hosts.items():
        accs = {str(a) for a in accounts}
        db = folder / f"paper-{host}.db"
        if not db.exists():
            assert not [o for o in orders if str(o["account_id"]) in accs and o["status"] == "filled"]
            continue
        assert {r["account"] for r in rows(db, "SELECT account FROM orders")} <= accs, \
            f"host {host}'s broker holds orders of another host's account"
        opens = rows(db, "SELECT * FROM orders WHERE state = 'filled' AND position_ticket = ticket")
        dupes = [k for k, n in Counter((o["account"], o["client_order_id"]) for o in opens).items() if n > 1]
        assert dupes == [], f"host {host}: duplicated orders at the broker: {dupes}"
        for bo in opens:
            lo = by_cid.get(bo["client_order_id"])
            assert lo is not None, f"host {host}: broker order {bo['ticket']} unknown to the ledger"
            assert str(lo["account_id"]) == bo["account"] and lo["status"] == "filled", lo
            assert (lo["broker_ticket"], lo["position_ticket"]) == (bo["ticket"], bo["position_ticket"])
            assert abs(lo["fill_price"] - bo["price"]) < 1e-9 and abs(lo["filled_volume"] - bo["volume"]) < 1e-12
        at_broker = {(o["account"], o["client_order_id"]) for o in opens}
        for lo in orders:
            if str(lo["account_id"]) in accs and lo["kind"] == "open":
                filled = (str(lo["account_id"]), lo["client_order_id"]) in at_broker
                assert filled == (lo["status"] == "filled"), (host, lo)
        live = rows(db, "SELECT * FROM positions")
        mine_open = [p for p in ledger_open if str(p["account_id"]) in accs]
        assert {(str(p["account_id"]), p["ticket"]) for p in mine_open} == {(p["account"], p["ticket"]) for p in live}
        by_key = {(p["account"], p["ticket"]): p for p in live}
        for p in mine_open:
            bp = by_key[(str(p["account_id"]), p["ticket"])]
            assert (p["side"], p["volume"]) == (bp["side"], bp["volume"])
            assert abs(p["price_open"] - bp["price_open"]) < 1e-9
        for p in ledger_closed:
            if str(p["account_id"]) not in accs:
                continue
            outs = rows(db, "SELECT * FROM deals WHERE account = ? AND position_id = ? AND entry = 'out'",
                        (str(p["account_id"]), p["ticket"]))
            assert len(outs) == 1, p
            assert abs(p["close_price"] - outs[0]["price"]) < 1e-9 and abs(p["profit"] - outs[0]["profit"]) < 1e-9
        deals = rows(db, "SELECT * FROM deals")
        missing = [(d["account"], d["ticket"]) for d in deals if (d["account"], d["ticket"]) not in fills]
        assert missing == [], f"host {host}: broker deals missing from the ledger's fills: {missing}"
        counts["broker_opens"] += len(opens)
        counts["open_positions"] += len(live)
    counts["signals"] = len(ledger_rows(ledger, "SELECT id FROM signals"))
    return dict(counts)
