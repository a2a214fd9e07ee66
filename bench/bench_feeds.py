"""Benchmark: how fast the feeds hand over bars (targets moved here from the unit tests).

usage: python bench/bench_feeds.py [--repeat N]

- read_bars on the two real exports (20,000 rows each): target under 0.3 s each, best of N
  after a warm-up read;
- read_bars on a year of M1 bars (370,000 rows, the gold file tiled): target under 3 s;
- the built-in feed: one 101-bar window on a day it has not built yet: target under 10 ms
  (best over N days, each with the day cache cleared).
"""

from __future__ import annotations

import argparse
import time

from bench_scan import SHARED, ensure_series  # this folder is on sys.path when run as a script

from scalper.clock import parse_instant
from scalper.feeds import builtin
from scalper.feeds.builtin import BuiltinFeed
from scalper.feeds.csvfile import read_bars

EXPORT_TARGET_S = 0.3
YEAR_TARGET_S = 3.0
WINDOW_TARGET_S = 0.010


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def verdict(seconds: float, target: float) -> str:
    return f"{seconds * 1000:9.1f} ms  (target < {target * 1000:.0f} ms: {'ok' if seconds < target else 'MISSED'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    for name in ("XAUUSD_M1.csv", "BTCUSD_M1.csv"):
        path = SHARED / "data" / name
        read_bars(path)   # warm-up: first-call costs inside pandas
        best = min(timed(read_bars, path) for _ in range(args.repeat))
        print(f"read_bars {name:<22} best of {args.repeat}: {verdict(best, EXPORT_TARGET_S)}")

    path = ensure_series(370_000)   # bench/out/xau_370k.csv, shared with bench_scan.py
    bars, _ = read_bars(path)
    best = min(timed(read_bars, path) for _ in range(args.repeat))
    print(f"read_bars {len(bars):,} rows     best of {args.repeat}: {verdict(best, YEAR_TARGET_S)}")

    feed, now = BuiltinFeed(seed=11), parse_instant("2025-06-04T14:31:27")
    timings = []
    for day in range(max(args.repeat, 5)):
        builtin._day_bars.cache_clear()
        timings.append(timed(feed.closed_bars, "XAUUSD", 101, now + day * 86_400))
    print(f"builtin window, fresh day    best of {len(timings)}: {verdict(min(timings), WINDOW_TARGET_S)}")


if __name__ == "__main__":
    main()
