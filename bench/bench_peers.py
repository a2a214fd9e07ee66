"""Benchmark: scalper's backtest and scan side by side with backtesting.py 0.6.6 and vectorbt.

usage: python bench/bench_peers.py [--rounds 3] [--warmup 1] [--bars 370000]

Whole processes, alternated round by round (each round runs every scenario once, in
turn), medians of the wall times, peak RSS of each process from the kernel (wait4). On
bench/out/xau_<BARS/1000>k.csv, tiled from the shared gold file by ../shared/tools/tile_bars.py.

backtesting.py and vectorbt are not scalper dependencies: install them into the venv for
this bench only (`pip install backtesting==0.6.6 vectorbt`); a peer that is not installed
is reported as such. The peers trade the pin bar of docs/strategies.md (bench/peers/,
written from the document) without costs, without a trailing stop, one position at a time;
scalper is configured alike with `--strategies price_action_pinbar --spread 0 --no-trailing`.

Each scalper scenario runs twice: as a trader's second run on a file (the parsed bars read from
scalper's bar cache, filled by the warm-up round) and with SCALPER_BARS_CACHE=0 (the CSV parsed in
the process, as a first run). The peers parse the CSV in every run: they have no such cache.

Targets (issue 15): the 4-strategy backtest with full risk <= 0.2x backtesting.py's pin-bar
run; scalper's pin bar <= 0.1x backtesting.py, with the same trades; peak <= 150 MB for both;
a scan <= 1.3x reading the file with pandas alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SCALPER_SHARED", HERE.parents[1] / "shared"))
PY = sys.executable


def ensure(bars: int) -> Path:
    out = HERE / "out" / f"xau_{bars // 1000}k.csv"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([PY, str(SHARED / "tools" / "tile_bars.py"), str(SHARED / "data" / "XAUUSD_M1.csv"),
                        str(out), str(bars)], check=True)
    return out


FOUR, PIN, SCAN = ("scalper backtest, 4 strategies, full risk", "scalper backtest, pin bar, peers' setup",
                   "scalper scan, 4 strategies")
COLD = ", no bar cache"   # the same scenario with SCALPER_BARS_CACHE=0: the CSV parsed in the process


def scenarios(data: Path) -> dict[str, list[str]]:
    scalper = [PY, "-m", "scalper"]
    pin = ["--strategies", "price_action_pinbar", "--spread", "0", "--no-trailing"]
    ours = {
        FOUR: scalper + ["backtest", "--data", str(data), "--symbol", "XAUUSD", "--json"],
        PIN: scalper + ["backtest", "--data", str(data), "--symbol", "XAUUSD", "--json"] + pin,
        SCAN: scalper + ["scan", "--data", str(data), "--json"],
    }
    return {
        **ours,
        **{name + COLD: cmd for name, cmd in ours.items()},
        "backtesting.py 0.6.6, pin bar": [PY, str(HERE / "peers" / "pinbar_backtesting.py"), str(data)],
        "vectorbt, pin bar": [PY, str(HERE / "peers" / "pinbar_vectorbt.py"), str(data)],
        "pandas.read_csv alone": [PY, "-c", f"import pandas; pandas.read_csv({str(data)!r})"],
    }


def installed(module: str) -> bool:
    return subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0


def run(name: str, cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout) of one whole process."""
    env = dict(os.environ, SCALPER_BARS_CACHE="0") if name.endswith(COLD) else None
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=HERE / "peers", env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def trades(name: str, out: str) -> int | None:
    if name.startswith("pandas") or "scan" in name:
        return None
    doc = json.loads(out)
    return doc["totals"]["trades"] if "totals" in doc else doc["trades"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted (numba's "
                                                                "compile cache, the OS file cache)")
    parser.add_argument("--bars", type=int, default=370_000)
    args = parser.parse_args()
    data = ensure(args.bars)
    todo = scenarios(data)
    for name, module in (("backtesting.py 0.6.6, pin bar", "backtesting"), ("vectorbt, pin bar", "vectorbt")):
        if not installed(module):
            print(f"{name}: NOT INSTALLED (pip install backtesting==0.6.6 vectorbt), skipped")
            del todo[name]
    print(f"{data.name}: {args.bars:,} bars; load average at start {os.getloadavg()}, {os.cpu_count()} CPUs")
    walls: dict[str, list[float]] = {n: [] for n in todo}
    peaks: dict[str, float] = {n: 0.0 for n in todo}
    counts: dict[str, int | None] = {}
    for _ in range(args.warmup):   # also fills the bar cache the warm scenarios read
        for name, cmd in todo.items():
            run(name, cmd)
    for _ in range(args.rounds):
        for name, cmd in todo.items():
            wall, peak, out = run(name, cmd)
            walls[name].append(wall)
            peaks[name] = max(peaks[name], peak)
            counts[name] = trades(name, out)
    print(f"load average at end {os.getloadavg()}\n")
    med = {n: statistics.median(w) for n, w in walls.items()}
    width = max(map(len, todo)) + 1
    print(f"{'scenario':{width}s} {'median':>8s} {'runs':>22s} {'peak':>8s} {'trades':>7s}")
    for name in todo:
        runs = ", ".join(f"{w:.2f}" for w in walls[name])
        print(f"{name:{width}s} {med[name]:7.2f}s {runs:>22s} {peaks[name]:6.0f}MB {counts[name] or '':>7}")
    print()
    bt, vb, pandas_alone = "backtesting.py 0.6.6, pin bar", "vectorbt, pin bar", "pandas.read_csv alone"

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    for suffix, label in (("", "warm bar cache"), (COLD, "no bar cache")):
        four, pin, scan = FOUR + suffix, PIN + suffix, SCAN + suffix
        print(f"-- {label}")
        if bt in med:
            r4, rp = med[four] / med[bt], med[pin] / med[bt]
            print(f"4 strategies / backtesting.py pin bar: {r4:.2f}x (target <= 0.2x: {verdict(r4 <= 0.2)})")
            print(f"pin bar / backtesting.py pin bar:      {rp:.2f}x (target <= 0.1x: {verdict(rp <= 0.1)}); "
                  f"trades {counts[pin]} vs {counts[bt]}")
        if vb in med:
            print(f"pin bar / vectorbt pin bar:            {med[pin] / med[vb]:.2f}x; "
                  f"trades {counts[pin]} vs {counts[vb]}")
        for name in (four, pin):
            print(f"peak {name}: {peaks[name]:.0f} MB (target <= 150 MB: {verdict(peaks[name] <= 150)})")
        rs = med[scan] / med[pandas_alone]
        print(f"scan / pandas.read_csv alone: {rs:.2f}x (target <= 1.3x: {verdict(rs <= 1.3)})")


if __name__ == "__main__":
    main()
