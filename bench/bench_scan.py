"""Benchmark: scan_history with all four strategies over ~a year of M1 bars.

usage: python bench/bench_scan.py [BARS] [--repeat N]

Builds bench/out/xau_<BARS>.csv from the shared gold file with the shared
tile_bars.py tool if it is absent, loads it into Bars (timed apart), then times
scan_history (default parameters, lookback 100) and prints the best and the
median of the runs and the signal counts per strategy and direction.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from scalper.core.bars import Bars
from scalper.core.scan import scan_history
from scalper.core.strategies import STRATEGY_NAMES

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SCALPER_SHARED", HERE.parents[1] / "shared"))
TARGET_SECONDS = 1.5


def ensure_series(bars: int) -> Path:
    out = HERE / "out" / f"xau_{bars // 1000}k.csv"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(SHARED / "tools" / "tile_bars.py"),
                        str(SHARED / "data" / "XAUUSD_M1.csv"), str(out), str(bars)], check=True)
    return out


def load(path: Path) -> Bars:
    """A plain pandas read, so the benchmark depends on the core only."""
    frame = pd.read_csv(path)
    frame.columns = [c.lower() for c in frame.columns]
    times = pd.to_datetime(frame["time"], format="%Y-%m-%d %H:%M:%S").to_numpy()
    return Bars.from_arrays(times.astype("datetime64[s]").astype(np.int64),
                            *(frame[k].to_numpy() for k in ("open", "high", "low", "close")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bars", nargs="?", type=int, default=370_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    path = ensure_series(args.bars)
    start = time.perf_counter()
    history = load(path)
    load_seconds = time.perf_counter() - start

    runs, result = [], None
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = scan_history(history)
        runs.append(time.perf_counter() - start)

    best, median = min(runs), statistics.median(runs)
    print(f"bars: {len(history):,}  evaluated: {result.evaluated:,}  load: {load_seconds:.2f} s")
    print(f"scan_history, 4 strategies: best {best:.3f} s, median {median:.3f} s "
          f"over {args.repeat} runs (target < {TARGET_SECONDS} s: {'ok' if best < TARGET_SECONDS else 'MISSED'})")
    counts = Counter((s.strategy, s.direction) for s in result.signals)
    for name in STRATEGY_NAMES:
        print(f"  {name:20s} buy {counts[name, 'buy']:6,}  sell {counts[name, 'sell']:6,}")
    print(f"  {'total':20s} {len(result.signals):,}")


if __name__ == "__main__":
    main()
