"""A Feed over bars held in memory, for tests: MemoryFeed({"XAUUSD": bars}).

It follows the Feed protocol (scalper/feeds/base.py) exactly, so whatever
drives it sees what a CSV or live feed would show at the same instant: only
bars closed at `now`, and the latest price the simulated exchange reads
(`scalper.core.sim.latest_price`: the open of the forming bar, else the last close).
A symbol it has no bars for is simply unknown: no bars, no price.
"""

from __future__ import annotations

import numpy as np

from scalper.core.bars import Bars
from scalper.core.sim import latest_price


class MemoryFeed:
    name = "memory"

    def __init__(self, bars_by_symbol: dict[str, Bars]):
        for symbol, bars in bars_by_symbol.items():
            if len(bars) > 1 and not bool(np.all(np.diff(bars.time) > 0)):
                raise ValueError(f"MemoryFeed: bars of {symbol} must have strictly increasing times")
        self._bars = dict(bars_by_symbol)

    def closed_bars(self, symbol: str, count: int, now: float) -> Bars:
        return self._closed(symbol, now).tail(count)

    def bars_between(self, symbol: str, start: float, now: float) -> Bars:
        return self._closed(symbol, now).between(start, None)

    def price_at(self, symbol: str, now: float) -> float | None:
        bars = self._bars.get(symbol)
        return None if bars is None else latest_price(bars, now)

    def _closed(self, symbol: str, now: float) -> Bars:
        bars = self._bars.get(symbol)
        return bars.closed_at(now) if bars is not None else Bars.empty()
