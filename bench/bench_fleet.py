"""The fleet on this machine: 1,500 bots on 60 paper accounts over 3 terminal hosts.

Three real `scalper worker` processes (one per host, each with its own paper broker state file),
one real `scalper beat`, a real broker (Redis) and the PostgreSQL ledger (or a shared SQLite file
with --ledger sqlite, for comparison). Each bot trades two accounts on two different hosts, so
every host's pass evaluates about 1,000 bots; the builtin feed gives live bars on 20 symbols.

Measured from the ledger's own audit rows (`fleet_pass`, `fleet_pass_end`), over every pass of
every host after the first interval (warm-up):
  start  = when the pass began (the engine's run, after the slot claim) - its grid instant
  end    = when the pass ended - its grid instant
Target: p99 start <= 2 s and p99 end <= 15 s over at least 20 intervals.
  received = when the worker took the task (before loading the config and claiming the slot) - grid
Also: passes dropped, PostgreSQL writes and sessions per interval (pg_stat_database deltas).

usage: python bench/bench_fleet.py [--interval 15] [--intervals 22] [--bots 1500] [--ledger postgresql|sqlite]
Needs Redis on 127.0.0.1:6379 and (for the PostgreSQL ledger) PostgreSQL on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fleetkit import Worker, child_env, ledger_rows, write_fleet  # noqa: E402  (needs ROOT on sys.path)

SYMBOLS = ["XAUUSD", "XAGUSD", "BTCUSD", "ETHUSD", "EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "USDCHF",
           "NZDUSD", "EURJPY", "GBPJPY", "EURGBP", "US30", "NAS100", "EURCHF", "AUDJPY", "CADJPY", "XAUUSDm"]
STRATS = ["price_action_pinbar", "trend_pullback", "doji_breakout", "range_reversion"]
HOSTS = ("a", "b", "c")


def fleet_layout(bots: int, accounts_per_host: int) -> tuple[dict[str, list[int]], list[dict]]:
    hosts = {h: [1 + i + j * accounts_per_host for i in range(accounts_per_host)] for j, h in enumerate(HOSTS)}
    out = []
    for i in range(bots):
        first, second = HOSTS[i % 3], HOSTS[(i + 1) % 3]
        accs = [hosts[first][i % accounts_per_host], hosts[second][(i * 7 + 3) % accounts_per_host]]
        out.append({"name": f"bot{i:04d}", "symbol": SYMBOLS[i % len(SYMBOLS)], "accounts": accs,
                    "strategies": STRATS, "risk": {"max_concurrent": 100_000, "max_per_symbol": 100_000}})
    return hosts, out


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def pg_stats(url: str) -> dict:
    import psycopg

    with psycopg.connect(url.split("?")[0], autocommit=True) as c:
        c.execute("SELECT pg_stat_clear_snapshot()")
        row = c.execute("SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, sessions "
                        "FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return dict(zip(("commits", "inserted", "updated", "deleted", "sessions"), row or ()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval", type=float, default=15.0)
    ap.add_argument("--intervals", type=int, default=22)
    ap.add_argument("--bots", type=int, default=1500)
    ap.add_argument("--accounts-per-host", type=int, default=20)
    ap.add_argument("--ledger", choices=("postgresql", "sqlite"), default="postgresql")
    a = ap.parse_args()

    pg = None
    if a.ledger == "postgresql":
        from tests import pgkit

        if pgkit.unavailable():
            raise SystemExit(f"needs PostgreSQL: {pgkit.unavailable()}")
        ledger = pgkit.fresh_ledger_url()
        pg = pgkit
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        folder = Path(tmp)
        if a.ledger == "sqlite":
            ledger = str(folder / "ledger.db")
        hosts, bots = fleet_layout(a.bots, a.accounts_per_host)
        paths = write_fleet(folder, hosts=hosts, bots=bots, broker="redis", ledger=ledger, interval_s=a.interval,
                            feed={"type": "builtin"}, paper_balance=1_000_000)
        os.environ.update(child_env("redis"))
        workers = [Worker(folder, h, paths[h], "redis").start() for h in HOSTS]
        for w in workers:
            w.wait_ready(120)
        before = pg_stats(ledger) if pg else None
        beat = subprocess.Popen([sys.executable, "-m", "scalper", "beat", "--config", str(paths["operator"])],
                                cwd=folder, env=child_env("redis"), stdout=open(folder / "beat.log", "wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.time()
        try:
            time.sleep(a.interval * (a.intervals + 1) + 2)
        finally:
            os.killpg(beat.pid, signal.SIGTERM)
            beat.wait(30)
            # let the passes in hand end before counting
            time.sleep(min(15.0, a.interval))
            after = pg_stats(ledger) if pg else None
            for w in workers:
                w.stop(warm=True)
        ends = [json.loads(r["data"]) for r in ledger_rows(ledger, "SELECT data FROM audit WHERE kind = 'fleet_pass_end'")]
        claims = [json.loads(r["data"]) for r in ledger_rows(ledger, "SELECT data FROM audit WHERE kind = 'fleet_pass'")]
        dropped = ledger_rows(ledger, "SELECT COUNT(*) AS n FROM audit WHERE kind = 'fleet_pass_dropped'")[0]["n"]
        counts = {k: ledger_rows(ledger, f"SELECT COUNT(*) AS n FROM {k}")[0]["n"]
                  for k in ("signals", "decisions", "orders", "positions")}
        logs = "".join(w.log.read_text(errors="replace") for w in workers)
    if pg:
        pg.drop_session_database()
    first_slot = min(c["slot"] for c in claims)
    lock_dropped = [e for e in ends if "dropped" in e]
    measured = [e for e in ends if e["slot"] > first_slot and "dropped" not in e]   # the first interval: warm-up
    slots = sorted({e["slot"] for e in measured})
    start = [e["started"] - e["slot"] * a.interval for e in measured]
    end = [e["ended"] - e["slot"] * a.interval for e in measured]
    duration = [e["duration_s"] for e in measured]
    # when the worker had the task in hand (before the config, the slot claim and the lock)
    received = [c["lateness_s"] for c in claims if c["slot"] > first_slot]
    expected = {(h, s) for h in HOSTS for s in range(first_slot + 1, max(slots) + 1)} if slots else set()
    missing = sorted(expected - {(e["host"], e["slot"]) for e in measured})
    doc = {
        "ledger": a.ledger, "bots": a.bots, "accounts": 3 * a.accounts_per_host, "hosts": len(HOSTS),
        "interval_s": a.interval, "intervals_measured": len(slots), "passes_measured": len(measured),
        "passes_missing": len(missing), "passes_dropped_duplicate": dropped,
        "passes_dropped_lock": len(lock_dropped),
        "worker_warnings": logs.count("WARNING/"),
        "exit_codes": dict(sorted({str(e["exit_code"]): sum(1 for x in measured if x["exit_code"] == e["exit_code"])
                                   for e in measured}.items())),
        "start_s": {"p50": round(pct(start, 50), 3), "p99": round(pct(start, 99), 3), "max": round(max(start), 3)},
        "received_s": {"p50": round(pct(received, 50), 3), "p99": round(pct(received, 99), 3)},
        "end_s": {"p50": round(pct(end, 50), 3), "p99": round(pct(end, 99), 3), "max": round(max(end), 3)},
        "engine_pass_s": {"p50": round(statistics.median(duration), 3), "p99": round(pct(duration, 99), 3)},
        "ledger_rows": counts, "wall_s": round(time.time() - t0, 1),
    }
    if before and after:
        n = max(1, len(slots) + 1)
        doc["postgresql_per_interval"] = {k: round((after[k] - before[k]) / n, 1) for k in after}
    doc["target_met"] = doc["start_s"]["p99"] <= 2.0 and doc["end_s"]["p99"] <= 15.0 and len(slots) >= 20
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
