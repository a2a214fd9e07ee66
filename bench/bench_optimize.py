"""Benchmark: `scalper optimize` over ~a year of M1 bars, and side by side with
backtesting.py's `Backtest.optimize` on the same pin-bar grid and data.

usage: python bench/bench_optimize.py [BARS] [--trials 200] [--jobs 2] [--skip-theirs]

1. The whole command, as a trader runs it (a fresh process, CSV load included):
   200 TPE trials of price_action_pinbar over bench/out/xau_370k.csv with
   --jobs 2. Target: <= 3 minutes on the 2-core machine.
2. The same pin-bar grid (rr × sl_buffer_atr, 25 points) searched exhaustively
   by both, on the same bars: ours replays each point with the optimiser's own
   evaluator (the backtest engine: risk, fills, sizing; trailing and the
   kill-switch off, one position at a time, as the other side does); theirs is
   backtesting.py's grid `Backtest.optimize` maximising the final equity, with a
   strategy that trades our pin-bar signals (our scan computes them in its init:
   the strategy logic is identical, only the engines differ), entering at the
   next bar's open with the signal's SL/TP, 1 ounce (our 0.01 lot), the symbol's
   spread. Reported: seconds per trial each, ours ÷ theirs, and both winners.

backtesting.py is not a dependency of scalper: `pip install backtesting` into
the venv to run part 2 (or pass --skip-theirs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_backtest import ensure_series  # noqa: E402

PINBAR = "price_action_pinbar"
TPE_SPACE = (f"{PINBAR}.rr=1.0..3.0:0.25,{PINBAR}.sl_buffer_atr=0.0..0.5:0.05,"
             f"{PINBAR}.wick_body_ratio=1.5..3.0:0.25")
GRID = {"rr": [1.0, 1.5, 2.0, 2.5, 3.0], "sl_buffer_atr": [0.0, 0.1, 0.2, 0.3, 0.4]}


def bench_command(path: Path, trials: int, jobs: int) -> None:
    cmd = [sys.executable, "-m", "scalper", "optimize", "--data", str(path), "--symbol", "XAUUSD", "--strategies",
           PINBAR, "--space", TPE_SPACE, "--trials", str(trials), "--jobs", str(jobs), "--min-trades", "30",
           "--seed", "1", "--json"]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    doc = json.loads(out)
    print(f"1. scalper optimize: {trials} trials of {PINBAR} over {doc['bars']:,} bars, --jobs {jobs}: "
          f"{wall:.1f} s whole command ({doc['duration_s']:.1f} s searching; {doc['duration_s'] / trials:.3f} s "
          f"per trial) — target <= 180 s: {'ok' if wall <= 180 else 'MISSED'}")
    best = doc["best"]
    print(f"   best #{best['number']}: {best['params']}  expectancy {best['value']:.3f} over {best['trades']} trades; "
          f"verdict: {doc['verdict']['label']} (PBO {doc['verdict']['pbo'] and doc['verdict']['pbo']['pbo']}, "
          f"DSR {doc['verdict']['dsr'] and doc['verdict']['dsr']['dsr']})")


def _setup():
    from scalper.backtest import Setup
    from scalper.config import RiskConfig
    from scalper.core.strategies import resolve_params
    from scalper.settings import risk_rules
    from scalper.symbols import spec_for

    risk = RiskConfig.model_validate({"kill_switch": False, "trailing": {"enabled": False}, "max_concurrent": 1})
    return Setup(symbol="XAUUSD", spec=spec_for("XAUUSD"), strategies=(PINBAR,),
                 params={PINBAR: resolve_params(PINBAR, None, 100)}, lookback=100, qty=0.01, rules=risk_rules(risk),
                 balance=10_000.0)


def ours(history, setup) -> tuple[float, dict, float]:
    from scalper.optimize.evaluate import BacktestEvaluator
    from scalper.optimize.space import parse_space

    dims = parse_space(",".join(f"{PINBAR}.{k}={min(v)}..{max(v)}" for k, v in GRID.items()), setup)
    evaluator = BacktestEvaluator(history, setup, dims)
    results = {}
    start = time.perf_counter()
    for rr, buf in itertools.product(GRID["rr"], GRID["sl_buffer_atr"]):
        out = evaluator.evaluate(setup.lookback - 1, len(history) - 1, {f"{PINBAR}.rr": rr,
                                                                         f"{PINBAR}.sl_buffer_atr": buf})
        results[(rr, buf)] = out["metrics"]["net_pnl"]
    per_trial = (time.perf_counter() - start) / len(results)
    best = max(results, key=results.get)
    return per_trial, {"rr": best[0], "sl_buffer_atr": best[1]}, results[best]


_CONTEXT: dict = {}


def _context() -> dict:
    """The bars, their index and the default parameters, loaded once per process (backtesting.py's
    optimize may run the strategy in worker processes: they rebuild this from the environment)."""
    if not _CONTEXT:
        from scalper.feeds.csvfile import read_bars

        history, _ = read_bars(os.environ["BENCH_OPTIMIZE_DATA"])
        _CONTEXT.update(history=history, index_of={int(t): i for i, t in enumerate(history.time.tolist())},
                        setup=_setup())
    return _CONTEXT


def _pinbar_strategy():
    from backtesting import Strategy

    from scalper.core.scan import scan_history

    class PinBar(Strategy):
        rr = 1.5
        sl_buffer_atr = 0.1

        def init(self):
            ctx = _context()
            setup = ctx["setup"]
            params = {**setup.params[PINBAR], "rr": self.rr, "sl_buffer_atr": self.sl_buffer_atr}
            self.signals = {ctx["index_of"][s.bar_time]: s for s in
                            scan_history(ctx["history"], [PINBAR], {PINBAR: params}, setup.lookback).signals}

        def next(self):
            s = self.signals.get(len(self.data) - 1)
            if s is None or self.position:
                return
            try:
                (self.buy if s.direction == "buy" else self.sell)(size=1, sl=s.sl, tp=s.tp)
            except ValueError:
                pass        # stops on the wrong side of the price: the broker would refuse it too

    PinBar.__qualname__ = "PinBar"
    return PinBar


try:
    PinBar = _pinbar_strategy()
except ImportError:         # backtesting.py not installed: part 2 is skipped
    PinBar = None


def theirs(path: Path, history, setup) -> tuple[float, dict, float]:
    import warnings

    import numpy as np
    import pandas as pd
    from backtesting import Backtest

    df = pd.read_csv(path)
    df.columns = [c.capitalize() for c in df.columns]
    df.index = pd.to_datetime(df.pop("Time"))
    spread = setup.spec.spread_points * setup.spec.point / float(np.median(history.close))
    bt = Backtest(df, PinBar, cash=10_000, spread=spread, finalize_trades=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.optimize(rr=GRID["rr"], sl_buffer_atr=GRID["sl_buffer_atr"], maximize="Equity Final [$]")
    per_trial = (time.perf_counter() - start) / (len(GRID["rr"]) * len(GRID["sl_buffer_atr"]))
    best = stats._strategy
    return (per_trial, {"rr": float(best.rr), "sl_buffer_atr": float(best.sl_buffer_atr)},
            float(stats["Equity Final [$]"]) - 10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bars", nargs="?", type=int, default=370_000)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--skip-command", action="store_true")
    parser.add_argument("--skip-theirs", action="store_true")
    args = parser.parse_args()

    path = ensure_series(args.bars)
    os.environ["BENCH_OPTIMIZE_DATA"] = str(path)
    if not args.skip_command:
        bench_command(path, args.trials, args.jobs)
    from scalper.feeds.csvfile import read_bars

    history, _ = read_bars(path)
    setup = _setup()
    mine = ours(history, setup)
    print(f"2. pin-bar grid {len(GRID['rr'])}×{len(GRID['sl_buffer_atr'])} over {len(history):,} bars "
          "(wall seconds per trial):")
    print(f"   scalper, one process:                   {mine[0]:.3f} s per trial; best {mine[1]}  net {mine[2]:.2f}")
    if not args.skip_theirs:
        other = theirs(path, history, setup)
        print(f"   backtesting.py, its default fork pool:  {other[0]:.3f} s per trial; best {other[1]}  net {other[2]:.2f}")
        print(f"   ours ÷ theirs: {mine[0] / other[0]:.3f} (seconds per trial); same best parameters: "
              f"{'yes' if mine[1] == other[1] else 'no'}")


if __name__ == "__main__":
    main()
