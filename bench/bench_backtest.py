"""Benchmark: `scalper backtest` over the shared gold file and over ~a year of M1 bars.

usage: python bench/bench_backtest.py [BARS] [--repeat N]

Times `scalper.backtest.run_backtest` (the strategies' scan included, the CSV
load timed apart) with all four strategies and the default risk settings
(trailing on, kill-switch at 5%), on the shared 20,000-bar XAUUSD file and on
bench/out/xau_<BARS>.csv (built with the shared tile_bars.py tool if absent);
then the whole command, as a user runs it, once on the shared file.

Last result (2-core VM shared with other developers, load average ~3; Python 3.11, numpy 2.4,
pandas 3.1), best of 3, after issue 15 (event-driven replay):
- 20,000 bars: 0.118 s (1,713 signals, 875 trades); the whole command 1.42 s, mostly start-up
  and imports;
- 370,000 bars: 2.03 s (median 2.39 s), of which ~0.5 s is the scan (31,818 signals, 16,210
  trades, 4,436 trailing moves), CSV load 0.56 s apart. The replay steps in Python only through
  signal and exit bars; positions' exits and trailing stops are found with numpy.
Before (unloaded machine): 2.38 s, the per-bar loop run while a position was open.

Issue 15, the replay's Python work (signal bars the book refuses by itself counted, not stepped;
one Exposure per bar; trade rows by column; the cyclic GC paused over the replay): 370,000 bars, all
four strategies, CPU in one process, medians of 5 alternated with main: replay 0.72 -> 0.46 s,
its set-up (_Paths) 0.10 -> 0.09 s, trade rows 0.22 -> 0.06 s; the whole command 1.98 -> 1.58 s
(wall, medians of 7 alternated, venvs built alike). The same 16,210 trades and decisions.

Issue 15, the replay's per-trade Python (an empty book's decisions from per-signal parts computed
with the rules' vector forms, `risk.book_refusals` / `risk.quote_refusals` / `sim.bar_exits`; with
one position per symbol the replay a chain of trades, the signals between marked and counted at the
end): 370,000 bars, four strategies, medians of 9 in one process, 3 rounds alternated with the
starting commit (db9fdda): `_Replay.run` 0.48 -> 0.19 s, its set-up (`_Paths`, `_Parts`) 0.063 ->
0.080 s; the whole command (`scalper backtest --data bench/out/xau_370k.csv --symbol XAUUSD --json`,
7 rounds alternated, wall) 1.67 -> 1.39 s, peak RSS 143.4 -> 140.1 MiB; the pin bar (peers' setup)
0.86 -> 0.85 s. The same 16,210 trades and decisions.

Issue 15, replay and output (i15-replay3): trades kept as their fields (`TradeLog`, a tuple per trade;
`BacktestResult.trades` built on first reading), the rows and summary from its columns, the statistics'
drawdown and win/loss split with numpy (same floats), no upkeep of an empty book where the kill-switch
cannot act on one (`exposure.kill_switch_idle_when_flat`), a bar's signals read from the parts on
asking. 370,000 bars, four strategies, in one process, medians of 5, 3 rounds alternated with main
(8e161ea), load ~2-3: replay set-up 0.088 -> 0.080 s, `run` 0.214 -> 0.134 s, rows 0.050 -> 0.045 s,
summary 0.020 -> 0.011 s, JSON 0.054 -> 0.054 s (0.43 -> 0.32 s); the whole command (7 rounds
alternated, wall, compiled bytecode, bar cache warm) 0.87 -> 0.76 s, peak RSS 90 -> 91 MiB; the pin
bar 0.26 -> 0.27 s (noise: few trades). The same trades, decisions, rows and JSON.

Issue 10 (one simulated exchange, `scalper.core.sim`; margin check and stop-out added): the same
16,210 trades, bit for bit. Load average ~12, so CPU time (process_time) is the figure to compare,
alternated in one session, 370,000 bars, 3 rounds of best-of-3: before 0.95-0.98 s best
(medians 0.98-1.04 s), after 0.99-1.00 s best (medians 1.00-1.05 s); wall 3.1-3.6 s for both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scalper.backtest import Setup, run_backtest
from scalper.core.rules import RiskRules
from scalper.core.strategies import STRATEGY_NAMES, resolve_params
from scalper.feeds.csvfile import read_bars
from scalper.symbols import spec_for

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SCALPER_SHARED", HERE.parents[1] / "shared"))
SHARED_FILE = SHARED / "data" / "XAUUSD_M1.csv"
TARGETS = {20_000: 2.0, 370_000: 5.0}   # seconds: "well under 2 s" and "a few seconds"


def ensure_series(bars: int) -> Path:
    out = HERE / "out" / f"xau_{bars // 1000}k.csv"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(SHARED / "tools" / "tile_bars.py"), str(SHARED_FILE), str(out),
                        str(bars)], check=True)
    return out


def gold() -> Setup:
    return Setup(symbol="XAUUSD", spec=spec_for("XAUUSD"), strategies=STRATEGY_NAMES,
                 params={n: resolve_params(n, None, 100) for n in STRATEGY_NAMES}, lookback=100, qty=0.01,
                 rules=RiskRules(), balance=10_000.0)


def bench(path: Path, repeat: int) -> None:
    start = time.perf_counter()
    history, _ = read_bars(path)
    load = time.perf_counter() - start
    runs, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run_backtest(history, gold())
        runs.append(time.perf_counter() - start)
    best, median = min(runs), statistics.median(runs)
    target = TARGETS.get(min(TARGETS, key=lambda n: abs(n - len(history))))
    print(f"{path.name}: {len(history):,} bars (load {load:.2f} s)  run_backtest best {best:.3f} s, "
          f"median {median:.3f} s over {repeat} runs (target < {target} s: {'ok' if best < target else 'MISSED'})")
    print(f"  signals {len(result.signals):,}  trades {len(result.trades):,}  "
          f"trailing moves {result.trailed:,}  final balance {result.final_balance:,.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bars", nargs="?", type=int, default=370_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    bench(SHARED_FILE, args.repeat)
    bench(ensure_series(args.bars), args.repeat)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scalper", "backtest", "--data", str(SHARED_FILE), "--symbol", "XAUUSD",
                    "--json"], check=True, stdout=subprocess.DEVNULL)
    print(f"whole command on {SHARED_FILE.name} (start-up, load, replay, JSON): "
          f"{time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
