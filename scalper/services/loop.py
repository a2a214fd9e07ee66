"""`scalper loop`: run-once on a fixed cadence, for machines without cron and for supervisors."""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time

from scalper import jsonout
from scalper.errors import LockHeld, ScalperError


def run_loop(*, config: str | None, ledger: str | None, interval: float, max_runs: int | None,
             clock=time.monotonic, out=sys.stderr) -> int:
    from scalper.services.run import run_once

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
        _say_from_handler(out, f"loop: {signal.Signals(signum).name} received; stopping after the current run")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    runs, last_code = 0, 0
    start = clock()
    try:
        while not stop.is_set():
            try:
                # bots.yaml is re-read each time: an edit applies from the next run
                summary = run_once(config=config, ledger=ledger)
                last_code = summary.exit_code
                print(jsonout.dumps({"run_id": summary.run_id, "started_at": summary.started_at,
                                  "duration_s": summary.duration_s, "signals": summary.signals,
                                  "orders": summary.orders, "errors": summary.errors}), file=out, flush=True)
            except LockHeld as exc:
                last_code = exc.exit_code
                print(f"loop: {exc}", file=out, flush=True)
            except ScalperError as exc:  # a bad edit or a broker outage must not kill the loop
                last_code = exc.exit_code
                print(f"loop: run failed (exit {exc.exit_code}): {exc}", file=out, flush=True)
            runs += 1
            if max_runs is not None and runs >= max_runs:
                break
            # Drift-free: the next start is the next point on the grid start + k*interval;
            # a run that overran skips the missed slots instead of piling up.
            elapsed = clock() - start
            next_slot = start + math.floor(elapsed / interval + 1) * interval
            stop.wait(max(0.0, next_slot - clock()))
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    # Stopped by Ctrl-C/SIGTERM: a clean stop, whatever the last pass met (a lock held by a
    # manual run-once, an outage): the supervisor must not read it as a failure and restart.
    # Otherwise (--max-runs) the last pass's exit code.
    return 0 if stop.is_set() else last_code


def _say_from_handler(out, text: str) -> None:
    """Print from a signal handler. The handler runs between two bytecodes of whatever the main
    thread was doing, maybe inside a print to the same stream: a buffered write there raises
    "reentrant call" and turns a clean stop into a crash. A raw write to the descriptor cannot."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):   # an in-memory stream (tests)
        print(text, file=out, flush=True)
        return
    try:
        os.write(fd, (text + "\n").encode(errors="replace"))
    except OSError:
        pass   # stderr gone (a closed pipe): the stop itself still happens
