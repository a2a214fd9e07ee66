"""Crash points for drills and tests: die for real at a named step of the order path.

Set SCALPER_CRASH_AT to one of CRASH_POINTS and the process SIGKILLs itself
when it reaches that step (first time only in this process). This is how the
exactly-once guarantees are tested with real processes, and how an operator
can rehearse a crash. Unset, it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_POINTS = (
    "after_signal",      # signal row committed, no decision yet
    "after_decision",    # decision committed, no order intent yet
    "after_intent",      # order row committed (status new), nothing sent
    "during_send",       # broker received the request, has not filled it
    "after_fill",        # broker filled and committed; the ledger has not heard
    "after_notify_send", # an alert was delivered; the outbox has not marked it sent
)

_ENV = "SCALPER_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(_ENV) == name:
        os.environ.pop(_ENV, None)
        os.kill(os.getpid(), signal.SIGKILL)
