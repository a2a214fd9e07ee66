"""The PostgreSQL ledger's pass time against SQLite's, for the same load.

200 bots over 10 symbols (the built-in feed), 20 paper accounts, two accounts per bot: each
measurement is a whole `scalper run-once` process at the next minute (fresh bars, new signals,
orders, fills, upkeep), with production durability on both sides (SQLite synchronous=FULL,
PostgreSQL synchronous_commit=on). Reported: the pass's own duration (summary duration_s) and the
process wall time, median and worst, and the ledger's statements per pass on PostgreSQL.

PostgreSQL: a database `scalper_bench_<random>` created on SCALPER_BENCH_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/test) and dropped at the end.

usage: python bench/bench_ledger_engines.py [--runs 8] [--bots 200] [--accounts 20]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

SYMBOLS = ["XAUUSD", "XAGUSD", "BTCUSD", "ETHUSD", "EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "US30"]
STRATS = ["price_action_pinbar", "trend_pullback", "doji_breakout", "range_reversion"]
ADMIN = os.environ.get("SCALPER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def write_config(folder: Path, ledger: str, bots: int, accounts: int) -> Path:
    cfg = {
        "ledger": ledger,
        "engine": {"log_file": None},
        "feed": {"type": "builtin"},
        "paper": {"state": "paper.db", "initial_balance": 100000},
        "accounts": [{"id": i, "broker": "paper"} for i in range(1, accounts + 1)],
        "bots": [{"name": f"bot{i:04d}", "symbol": SYMBOLS[i % len(SYMBOLS)],
                  "accounts": sorted({1 + i % accounts, 1 + (i + 7) % accounts}),
                  "strategies": STRATS, "risk": {"max_concurrent": 1000, "max_per_symbol": 1000}}
                 for i in range(bots)],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bots.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def one_pass(config: Path, now: str) -> tuple[float, dict]:
    exe = Path(sys.executable).with_name("scalper")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_")}   # production durability
    t0 = time.perf_counter()
    p = subprocess.run([str(exe), "run-once", "--config", str(config), "--now", now, "--json"],
                       capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"run-once failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, json.loads(p.stdout)


def statements(url: str) -> int | None:
    """Statements the server ran in the bench database so far (pg_stat_database xact counts)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                        "WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else None


def scenario(engine: str, folder: Path, ledger: str, args: argparse.Namespace) -> dict:
    config = write_config(folder, ledger, args.bots, args.accounts)
    start = datetime.now(UTC).replace(second=5, microsecond=0) - timedelta(hours=3)
    walls, inner, signals, orders = [], [], 0, 0
    tx_before = None
    for k in range(args.runs + 1):
        wall, doc = one_pass(config, (start + timedelta(minutes=k)).isoformat())
        if k == 0:   # creates the ledger and the paper books
            tx_before = statements(ledger) if engine == "postgresql" else None
            continue
        walls.append(wall)
        inner.append(doc["duration_s"])
        signals += doc["signals"]
        orders += doc["orders_created"]
    out = {"engine": engine, "passes": args.runs, "signals": signals, "orders": orders,
           "pass_s_median": round(statistics.median(inner), 3), "pass_s_max": round(max(inner), 3),
           "process_s_median": round(statistics.median(walls), 3), "process_s_max": round(max(walls), 3)}
    if engine == "postgresql" and tx_before is not None:
        out["server_transactions_per_pass"] = round((statements(ledger) - tx_before) / args.runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--bots", type=int, default=200)
    ap.add_argument("--accounts", type=int, default=20)
    args = ap.parse_args()
    import psycopg

    name = f"scalper_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
    p = urlsplit(ADMIN)
    url = urlunsplit((p.scheme, p.netloc, "/" + name, p.query, ""))
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results.append(scenario("sqlite", Path(tmp) / "sqlite", "ledger.db", args))
            results.append(scenario("postgresql", Path(tmp) / "postgresql", url, args))
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(json.dumps({"bots": args.bots, "accounts": args.accounts, "results": results}, indent=2))
    lite, pg = results
    print(f"\npass time (median): SQLite {lite['pass_s_median']:.3f} s, PostgreSQL {pg['pass_s_median']:.3f} s "
          f"(x{pg['pass_s_median'] / lite['pass_s_median']:.2f}); whole process {lite['process_s_median']:.3f} s vs "
          f"{pg['process_s_median']:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
