"""Check that the commands' outputs stay the same across a change.

usage: python bench/check_outputs.py save DIR      # record the outputs of this checkout
       python bench/check_outputs.py compare DIR   # run again and compare with DIR

Runs `scalper backtest` and `scalper scan` as a user does (whole processes) on the
shared gold and bitcoin files and on bench/out/xau_370k.csv (tiled, 370,000 bars),
human output and --json, with --trades-out/--signals-out files. Compared:
- files and human output byte for byte (timings masked);
- --json as parsed documents (the encoder's layout may change; the data may not),
  without `duration_s`.

Differences a change makes on purpose can be allowed with --allow KEY (a JSON key
path such as `totals.rejected`), printed either way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SCALPER_SHARED", HERE.parents[1] / "shared"))
SCALPER = [sys.executable, "-m", "scalper"]
TIMING = re.compile(rb"\d+(\.\d+)? ?(ms|s)\b")


def cases(tmp: Path) -> dict[str, list[str]]:
    xau, btc = str(SHARED / "data" / "XAUUSD_M1.csv"), str(SHARED / "data" / "BTCUSD_M1.csv")
    big = str(HERE / "out" / "xau_370k.csv")
    peers = tmp / "peers.yaml"
    peers.write_text("accounts: [{id: 1, broker: paper}]\n"
                     "bots:\n  - name: pin\n    symbol: XAUUSD\n    accounts: [1]\n    strategies: [price_action_pinbar]\n"
                     "    risk: {max_concurrent: 1, max_per_symbol: 1, kill_switch: false,\n"
                     "           trailing: {enabled: false}}\n")
    return {
        "bt_xau_json": ["backtest", "--data", xau, "--symbol", "XAUUSD", "--json",
                        "--signals-out", str(tmp / "bt_xau_signals.csv")],
        "bt_xau_text": ["backtest", "--data", xau, "--symbol", "XAUUSD", "--trades-out",
                        str(tmp / "bt_xau_trades.csv")],
        "bt_btc_json": ["backtest", "--data", btc, "--symbol", "BTCUSD", "--json"],
        "bt_btc_risk_json": ["backtest", "--data", btc, "--symbol", "BTCUSD", "--json", "--strategies",
                             "doji_breakout,trend_pullback", "--from", "2025-05-20", "--to", "2025-05-27"],
        "bt_big_json": ["backtest", "--data", big, "--symbol", "XAUUSD", "--json",
                        "--trades-out", str(tmp / "bt_big_trades.csv")],
        "bt_big_pin_json": ["backtest", "--data", big, "--bot", "pin", "--config", str(peers), "--json"],
        "scan_xau_json": ["scan", "--data", xau, "--json"],
        "scan_big_text": ["scan", "--data", big, "--out", str(tmp / "scan_big.csv")],
    }


def run_all(tmp: Path) -> dict[str, bytes]:
    tmp.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, args in cases(tmp).items():
        p = subprocess.run(SCALPER + args, capture_output=True, cwd=tmp)
        out[name] = p.stdout
        out[name + ".err"] = TIMING.sub(b"<t>", p.stderr)
        out[name + ".rc"] = str(p.returncode).encode()
    for f in sorted(tmp.glob("*.csv")):
        out[f.name] = f.read_bytes()
    return out


def _flat(doc, prefix=""):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _flat(v, f"{prefix}{k}.")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _flat(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], doc


def normalize(name: str, data: bytes):
    if name.endswith("_json"):
        doc = json.loads(data)
        doc.pop("duration_s", None)
        return doc
    if name.endswith("_text"):
        return TIMING.sub(b"<t>", data)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "compare"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--allow", action="append", default=[], help="key path prefix allowed to differ")
    args = parser.parse_args()
    if args.action == "save":
        got = run_all(args.dir / "work")
        for name, data in got.items():
            (args.dir / f"{name}.out").write_bytes(data)
        print(f"saved {len(got)} outputs to {args.dir}")
        return 0
    got = run_all(args.dir / "work")   # the same paths as when saved
    bad = 0
    for name, data in got.items():
        ref_path = args.dir / f"{name}.out"
        if not ref_path.exists():
            print(f"NEW   {name}")
            continue
        ref, new = normalize(name, ref_path.read_bytes()), normalize(name, data)
        if ref == new:
            print(f"same  {name}")
            continue
        if isinstance(ref, dict):
            a, b = dict(_flat(ref)), dict(_flat(new))
            diffs = sorted(k for k in a.keys() | b.keys() if a.get(k, "<absent>") != b.get(k, "<absent>"))
            unexpected = [k for k in diffs if not any(k.startswith(p) for p in args.allow)]
            for k in diffs[:20]:
                print(f"  {name}: {k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}")
            print(f"{'DIFF ' if unexpected else 'ok   '} {name}: {len(diffs)} keys differ "
                  f"({len(unexpected)} not allowed)")
            bad += bool(unexpected)
        else:
            print(f"DIFF  {name} ({len(ref)} -> {len(new)} bytes)")
            bad += 1
    print("all outputs identical" if not bad else f"{bad} outputs differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
