"""The clock is an edge: the system clock live, a fixed instant for --now and backtests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""


class SystemClock:
    def now(self) -> float:
        return time.time()


@dataclass
class FixedClock:
    instant: float

    def now(self) -> float:
        return self.instant


def parse_instant(text: str) -> float:
    """ISO 8601 → epoch seconds. A naive time is read as UTC (bar files carry no offset)."""
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def iso(ts: float | int | None) -> str | None:
    """Epoch seconds → 'YYYY-MM-DDTHH:MM:SSZ' (UTC)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def bar_iso(ts: int) -> str:
    """A bar time as the file's own clock, no offset: 'YYYY-MM-DD HH:MM:SS'."""
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def parse_instant_option(text: str | None, option: str) -> float | None:
    """A command-line time option (ISO 8601, UTC unless an offset is given); BadInput if unreadable."""
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        from scalper.errors import BadInput

        raise BadInput(f"cannot read {text!r} as a time", where=option,
                       fix="use ISO 8601, e.g. 2025-05-20 or 2025-05-20T14:30 (UTC; bar files: their own clock)"
                       ) from None


def parse_span_options(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """--from/--to as epoch seconds; BadInput when --from is after --to."""
    lo, hi = parse_instant_option(since, "--from"), parse_instant_option(until, "--to")
    if lo is not None and hi is not None and lo > hi:
        from scalper.errors import BadInput

        raise BadInput(f"--from {since} is after --to {until}", where="--from/--to", fix="swap them")
    return lo, hi


def human_age(seconds: float) -> str:
    """45 s, 12 min, 3.5 h, 537 days — for messages about stale data."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
