"""Whole-process cost of `scalper run-once` on the embedded default (paper broker,
built-in feed): what cron or the loop pays every 45 seconds.

Scenarios:
  one   — one bot, one account           target: median <= 0.25 s (issue 15), peak RSS <= 120 MB
  many  — 1,000 bots over 20 symbols     target: median <= 0.8 s (issue 15)

Measure a regular install (`pip install .` into a fresh venv, then that venv's python runs
this script): an editable install adds its import hook to every start. The run-once that
meets the target needs the validated-config cache to hold the bots file (the first run fills
it; this script does not count that run).

Each measurement is a fresh `scalper run-once` process (fork+exec, imports,
config, ledger, feed, strategies, risk, orders, upkeep, exit), timed from
outside, peak RSS from the kernel (getrusage of the child). Every run uses the
same --now minute-by-minute sequence so runs do real work (new bars, new
signals) rather than hitting only duplicates.

usage: python bench/bench_run_once.py [--runs 7] [--bots 1000] [--symbols 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

SYMBOLS = ["XAUUSD", "XAGUSD", "BTCUSD", "ETHUSD", "EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "USDCHF",
           "NZDUSD", "EURJPY", "GBPJPY", "EURGBP", "US30", "NAS100", "EURCHF", "AUDJPY", "CADJPY", "XAUUSDm"]
STRATS = ["price_action_pinbar", "trend_pullback", "doji_breakout", "range_reversion"]


def write_config(folder: Path, bots: int, symbols: int) -> Path:
    syms = SYMBOLS[:symbols]
    cfg = {
        "ledger": "ledger.db",
        "feed": {"type": "builtin"},
        "paper": {"state": "paper.db", "initial_balance": 100000},
        "accounts": [{"id": i, "broker": "paper"} for i in (1, 2)],
        "bots": [{"name": f"bot{i:04d}", "symbol": syms[i % len(syms)], "accounts": [1 + i % 2],
                  "strategies": STRATS, "risk": {"max_concurrent": 1000, "max_per_symbol": 1000}}
                 for i in range(bots)],
    }
    path = folder / "bots.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run(config: Path, now: str) -> tuple[float, float, dict]:
    exe = Path(sys.executable).with_name("scalper")
    t0 = time.perf_counter()
    p = subprocess.run([str(exe), "run-once", "--config", str(config), "--now", now, "--json"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    # ru_maxrss of RUSAGE_CHILDREN is the max over all waited-for children so far (KB on Linux): an upper
    # bound for this run when an earlier child peaked higher
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if p.returncode != 0:
        raise SystemExit(f"run-once failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, rss_mb, json.loads(p.stdout)


def scenario(name: str, bots: int, symbols: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), bots, symbols)
        start = datetime.now(UTC).replace(second=5, microsecond=0) - timedelta(hours=2)
        walls, rss, inner, signals, orders = [], [], [], 0, 0
        for k in range(runs + 1):
            now = (start + timedelta(minutes=k)).isoformat()
            wall, mb, doc = run(config, now)
            if k == 0:
                continue  # the first run creates the ledger and paper state files
            walls.append(wall)
            rss.append(mb)
            inner.append(doc["duration_s"])
            signals += doc["signals"]
            orders += doc["orders_created"]
        return {"scenario": name, "bots": bots, "symbols": symbols, "runs": runs,
                "wall_median_s": round(statistics.median(walls), 3), "wall_max_s": round(max(walls), 3),
                "engine_median_s": round(statistics.median(inner), 3), "peak_rss_mb": round(max(rss), 1),
                "signals": signals, "orders": orders}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--bots", type=int, default=1000)
    ap.add_argument("--symbols", type=int, default=20)
    a = ap.parse_args()
    print(json.dumps(scenario("one", 1, 1, a.runs)))
    print(json.dumps(scenario("many", a.bots, a.symbols, max(3, a.runs // 2))))


if __name__ == "__main__":
    main()
