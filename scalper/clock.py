"""The clock is an edge: the system clock live, a fixed instant for --now and backtests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, overload

if TYPE_CHECKING:
    import numpy as np


DAY_SECONDS = 86_400   # a UTC day (epoch seconds count no leap seconds)


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


# The instants this tool deals in: bar files, ledgers and replays all live after 1970 and
# before year 10000 (what datetime, iso() and SQLite's text times can hold).
EARLIEST = 0.0                 # 1970-01-01T00:00:00Z
LATEST = 253_402_300_799.0     # 9999-12-31T23:59:59Z


class OutOfRange(ValueError):
    """A well-formed time outside [EARLIEST, LATEST]; the message says so."""


def parse_instant(text: str) -> float:
    """ISO 8601 → epoch seconds. A naive time is read as UTC (bar files carry no offset).
    ValueError if unreadable; OutOfRange (a ValueError) before 1970 or after 9999."""
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        ts = dt.timestamp()
    except (OverflowError, OSError):  # 0001-01-01T00:00+14:00 is before year 1 in UTC
        ts = float("-inf") if dt.year < 1970 else float("inf")
    check_in_range(ts)
    return ts


def check_in_range(ts: float) -> float:
    if not EARLIEST <= ts <= LATEST:
        raise OutOfRange("before 1970-01-01" if not ts > EARLIEST else "after 9999-12-31")
    return ts


@overload
def iso(ts: float) -> str: ...
@overload
def iso(ts: None) -> None: ...
@overload
def iso(ts: float | None) -> str | None: ...
def iso(ts: float | int | None) -> str | None:
    """Epoch seconds → 'YYYY-MM-DDTHH:MM:SSZ' (UTC)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bar_iso(ts: float) -> str:
    """A bar time as the file's own clock, no offset: 'YYYY-MM-DD HH:MM:SS'."""
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_bar_times(epochs: np.ndarray) -> list[str]:
    """bar_iso of many epoch values at once ('YYYY-MM-DD HH:MM:SS', the file's own clock), by numpy:
    each day's date formatted once, the time of day from tables of minutes and seconds."""
    import numpy as np

    epochs = np.asarray(epochs, dtype=np.int64)
    if not len(epochs):
        return []
    if int(epochs.min()) < 0 or int(epochs.max()) >= _YEAR_10000:   # five-digit or negative years
        return [bar_iso(e) for e in epochs.tolist()]
    day, second = np.divmod(epochs, DAY_SECONDS)
    days, which = np.unique(day, return_inverse=True)
    dates = [d + " " for d in np.datetime_as_string(days.astype("datetime64[D]"), unit="D").tolist()]
    minutes, seconds = _time_tables()
    return [dates[d] + minutes[m] + seconds[s] for d, m, s in
            zip(which.tolist(), (second // 60).tolist(), (second % 60).tolist())]


_YEAR_10000 = 253_402_300_800   # 10000-01-01 00:00:00 UTC
_TABLES: tuple[list[str], list[str]] | None = None


def _time_tables() -> tuple[list[str], list[str]]:
    """'HH:MM' of each minute of a day, ':SS' of each second of a minute."""
    global _TABLES
    if _TABLES is None:
        _TABLES = ([f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)], [f":{s:02d}" for s in range(60)])
    return _TABLES


def parse_instant_option(text: str | None, option: str) -> float | None:
    """A command-line time option (ISO 8601, UTC unless an offset is given); BadInput if unreadable."""
    from scalper.errors import BadInput, quote

    if text is None:
        return None
    fix = "use ISO 8601, e.g. 2025-05-20 or 2025-05-20T14:30 (UTC; bar files: their own clock)"
    if not text.strip():
        raise BadInput(f"{quote(text)} is empty; give a time", where=option, fix=fix)
    try:
        return parse_instant(text)
    except OutOfRange as exc:
        raise BadInput(f"{quote(text)} is {exc}, outside the times scalper handles", where=option,
                       fix=fix) from None
    except ValueError:
        raise BadInput(f"cannot read {quote(text)} as a time", where=option, fix=fix) from None


def parse_span_options(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """--from/--to as epoch seconds; BadInput when --from is after --to."""
    lo, hi = parse_instant_option(since, "--from"), parse_instant_option(until, "--to")
    if lo is not None and hi is not None and lo > hi:
        from scalper.errors import BadInput

        raise BadInput(f"--from {since} is after --to {until}", where="--from/--to", fix="swap them")
    return lo, hi


def parse_since(text: str, now: float) -> float:
    """--since: '30m', '24h', '7d', '90s' (back from `now`) or an ISO instant → epoch seconds;
    BadInput if unreadable or outside the times scalper handles."""
    from scalper.errors import BadInput, quote

    t = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    fix = "use 30m, 24h, 7d or an ISO time such as 2025-05-20T14:00"
    if t and t[-1] in units and t[:-1].replace(".", "", 1).isdigit():
        try:
            return check_in_range(now - float(t[:-1]) * units[t[-1]])
        except OutOfRange:
            raise BadInput(f"{quote(text)} reaches back before 1970-01-01", where="--since", fix=fix) from None
    try:
        return parse_instant(t)
    except OutOfRange as exc:
        raise BadInput(f"{quote(text)} is {exc}, outside the times scalper handles", where="--since",
                       fix=fix) from None
    except ValueError:
        raise BadInput(f"cannot read {quote(text)} as a span or a time", where="--since", fix=fix) from None


def human_age(seconds: float) -> str:
    """45 s, 12 min, 3.5 h, 537 days — for messages about stale data."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
