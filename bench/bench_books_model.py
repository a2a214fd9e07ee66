"""The model-based test of the books (tests/test_books_model.py), run long: thousands of steps over
the paper broker and the MetaTrader 5 fake. Prints steps run, sequences tried, divergences found
(a divergence stops the run with hypothesis's shrunk, reproducible sequence) and how often the
interesting states came up.

usage: .venv/bin/python bench/bench_books_model.py [--examples 150] [--steps 60] [--kind paper|mt5|both]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis.stateful import run_state_machine_as_test

from tests import test_books_model as model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=150, help="sequences per broker")
    ap.add_argument("--steps", type=int, default=60, help="rules per sequence (a `trade` rule runs 2-10 passes)")
    ap.add_argument("--kind", choices=["paper", "mt5", "both"], default="both")
    args = ap.parse_args()
    failed = False
    for kind, machine in (("paper", model.Books), ("mt5", model.MT5Books)):
        if args.kind not in (kind, "both"):
            continue
        for k in model.STATS:
            model.STATS[k] = 0
        t0 = time.perf_counter()
        outcome = "no divergence"
        try:
            run_state_machine_as_test(machine, settings=model._settings(args.examples, args.steps))
        except AssertionError as exc:
            failed = True
            outcome = f"DIVERGENCE:\n{exc}"
        s = model.STATS
        print(f"{kind}: {s['steps']} steps, {s['sequences']} sequences, {s['divergences']} divergent states, "
              f"{time.perf_counter() - t0:.0f} s; states with open positions {s['open_seen']}, with two bots' "
              f"positions on one account {s['shared_states']}, with a `closing` position {s['closing_seen']}; "
              f"{outcome}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
