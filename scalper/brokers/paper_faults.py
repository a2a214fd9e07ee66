"""Faults for tests and drills, injected into the paper broker: make it refuse, lose an
answer, crash or be unreachable (FaultConfig in bots.yaml, or SCALPER_PAPER_FAULTS)."""

from __future__ import annotations

import math
import os
import signal
from typing import TYPE_CHECKING

from scalper.brokers.base import RETCODE_NAMES

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import FaultConfig

FAULTS_ENV = "SCALPER_PAPER_FAULTS"


def faults_from_env(base: FaultConfig | None = None) -> FaultConfig:
    """`base` with the keys given in SCALPER_PAPER_FAULTS laid over it.

    Format: `key=value` pairs separated by `;`, e.g.
    `retcodes=10004,10004;lost_answer=1;crash_at=after_fill;unreachable=1`.
    Keys: retcodes (comma-separated MT5 codes, empty for none), crash_at
    (before_fill | after_fill | none), unreachable and lost_answer (1/0,
    true/false, yes/no, on/off), answer_delay_s (seconds, 0 or more).
    Raises ValueError on anything else.
    """
    if base is None:
        from scalper.config import FaultConfig

        base = FaultConfig()
    text = os.environ.get(FAULTS_ENV, "")
    if not text.strip():
        return base
    return base.model_copy(update=_parse_faults(text))


def _parse_faults(text: str) -> dict:
    def bad(why: str) -> ValueError:
        return ValueError(f"{FAULTS_ENV}={text!r}: {why} "
                          "(expected e.g. 'retcodes=10004,10004;lost_answer=1;crash_at=after_fill;unreachable=1')")

    flags = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    values: dict = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, raw = (s.strip() for s in part.partition("="))
        if not sep:
            raise bad(f"{part!r} is not key=value")
        if key in values:
            raise bad(f"{key} is given twice")
        if key == "retcodes":
            codes = [c.strip() for c in raw.split(",")] if raw else []
            if not all(c.isdigit() and int(c) in RETCODE_NAMES for c in codes):
                raise bad(f"retcodes must be MT5 trade return codes (10004 … 10046), got {raw!r}")
            values[key] = [int(c) for c in codes]
        elif key == "crash_at":
            if raw.lower() not in ("before_fill", "after_fill", "none", ""):
                raise bad(f"crash_at must be before_fill, after_fill or none, got {raw!r}")
            values[key] = raw.lower() if raw.lower() in ("before_fill", "after_fill") else None
        elif key in ("unreachable", "lost_answer"):
            if raw.lower() not in flags:
                raise bad(f"{key} must be 1 or 0, got {raw!r}")
            values[key] = flags[raw.lower()]
        elif key == "answer_delay_s":
            try:
                delay = float(raw)
            except ValueError:
                delay = -1.0
            if not (math.isfinite(delay) and delay >= 0):
                raise bad(f"answer_delay_s must be a number of seconds, 0 or more, got {raw!r}")
            values[key] = delay
        else:
            raise bad(f"unknown key {key!r}; known: retcodes, crash_at, unreachable, lost_answer, answer_delay_s")
    return values


def die() -> None:
    """Die at once, as a power cut would: no cleanup, no rollback, no answer."""
    os.kill(os.getpid(), signal.SIGKILL)
