"""The feed edge: where bars come from (MT5, CSV files, the built-in source)."""

from __future__ import annotations

from typing import Protocol

from scalper.core.bars import Bars


class Feed(Protocol):
    name: str

    def closed_bars(self, symbol: str, count: int, now: float) -> Bars:
        """The last `count` bars that are closed at `now` (open_time + 60 <= now),
        oldest first. The forming bar is never returned. Times are UTC epoch
        seconds (for CSV files: the file's own clock read as UTC).
        Raises FeedUnavailable when the source cannot be reached, DataError
        when its data is bad."""

    def bars_between(self, symbol: str, start: float, now: float) -> Bars:
        """Closed bars (at `now`) whose open time is >= `start`."""

    def price_at(self, symbol: str, now: float) -> float | None:
        """The latest price at `now`: the open of the bar forming at that instant,
        else the close of the newest closed bar; None when nothing is known."""
