"""Benchmark: one live pass of the CSV feed on a small file and on a ~200 MB file.

usage: python bench/bench_csv_feed.py [--mb 200] [--runs 5]

Builds bench/out/xau_<MB>mb.csv by tiling the shared gold file (../shared/tools/tile_bars.py),
then times, in fresh processes alternating small and large, what a run-once pass asks of
the feed for one bot: `closed_bars(symbol, 100, now)` and `price_at(symbol, now)` at the
file's last bar. Imports are timed apart (the same for both files). Peak RSS from the kernel.

Target (issue 15): the large file costs <= 50 ms more per pass than the small one, <= 100 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SCALPER_SHARED", HERE.parents[1] / "shared"))
SMALL = SHARED / "data" / "XAUUSD_M1.csv"

PASS = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from pathlib import Path
from scalper.feeds.csvfile import CsvFeed
t1 = time.perf_counter()
feed = CsvFeed({"XAUUSD": Path(sys.argv[1])})
now = float(sys.argv[2]) + 65   # just after the newest bar closed
t2 = time.perf_counter()
window = feed.closed_bars("XAUUSD", 100, now)
price = feed.price_at("XAUUSD", now)
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "pass": t3 - t2, "bars": len(window),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def ensure(mb: int) -> Path:
    """bench/out/xau_<MB>mb.csv: the 370,000 tiled bars (tile_bars.py), then copies of them
    shifted in time, streamed line by line (tile_bars.py holds every row in memory)."""
    out = HERE / "out" / f"xau_{mb}mb.csv"
    if out.exists():
        return out
    base = HERE / "out" / "xau_370k.csv"
    if not base.exists():
        base.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(SHARED / "tools" / "tile_bars.py"), str(SMALL), str(base), "370000"],
                       check=True)
    from datetime import datetime, timedelta

    lines = base.read_text().splitlines()
    first, last = (datetime.fromisoformat(lines[k].split(",", 1)[0]) for k in (1, -1))
    span = last - first + timedelta(minutes=1)
    tmp = out.with_suffix(".part")
    with tmp.open("w") as f:
        f.write(lines[0] + "\n")
        copy = 0
        while f.tell() < mb * 1_000_000:
            shift = span * copy
            for line in lines[1:]:
                stamp, rest = line.split(",", 1)
                f.write(f"{(datetime.fromisoformat(stamp) + shift).isoformat(sep=' ')},{rest}\n")
            copy += 1
    tmp.rename(out)
    return out


def newest_bar(path: Path) -> int:
    """The open time of the file's last bar (epoch seconds, the file's clock read as UTC)."""
    from datetime import datetime

    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 200))
        last = f.read().decode().strip().splitlines()[-1]
    return int(datetime.fromisoformat(last.split(",")[0]).replace(tzinfo=UTC).timestamp())


def run(path: Path) -> dict:
    p = subprocess.run([sys.executable, "-c", PASS, str(path), str(newest_bar(path))], capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_only:
        ensure(args.mb)
        return
    # made by a child: the kernel's peak RSS of a process outlives fork and exec, so the passes
    # started by a parent that had just held the rows (~76 MB) would report its peak, not theirs
    subprocess.run([sys.executable, __file__, "--mb", str(args.mb), "--make-only"], check=True)
    big = ensure(args.mb)
    results = {SMALL: [], big: []}
    for _ in range(args.runs):
        for path in (SMALL, big):
            results[path].append(run(path))
    for path, rows in results.items():
        print(f"{path.name} ({path.stat().st_size / 1e6:.0f} MB): pass median "
              f"{statistics.median(r['pass'] for r in rows) * 1000:.1f} ms, imports "
              f"{statistics.median(r['imports'] for r in rows) * 1000:.0f} ms, peak RSS "
              f"{max(r['rss_mb'] for r in rows):.0f} MB, window {rows[0]['bars']} bars")
    extra = statistics.median(r["pass"] for r in results[big]) - statistics.median(r["pass"] for r in results[SMALL])
    peak = max(r["rss_mb"] for r in results[big])
    print(f"large - small per pass: {extra * 1000:+.1f} ms (target <= 50 ms: {'ok' if extra <= 0.05 else 'MISSED'}); "
          f"peak {peak:.0f} MB (target <= 100 MB: {'ok' if peak <= 100 else 'MISSED'})")


if __name__ == "__main__":
    main()
