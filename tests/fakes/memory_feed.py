"""A Feed over bars held in memory, for tests: MemoryFeed({"XAUUSD": bars}).

It follows the Feed protocol (scalper/feeds/base.py) exactly, so whatever
drives it sees what a CSV or live feed would show at the same instant: only
bars closed at `now`, and the open of the forming bar as the latest price.
A symbol it has no bars for is simply unknown: no bars, no price.
"""

from __future__ import annotations

import numpy as np

from scalper.core.bars import BAR_SECONDS, Bars


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
        if bars is None:
            return None
        forming = bars.index_of(int(now // BAR_SECONDS) * BAR_SECONDS)
        if forming is not None:
            return float(bars.open[forming])
        closed = bars.closed_at(now)
        return float(closed.close[-1]) if len(closed) else None

    def _closed(self, symbol: str, now: float) -> Bars:
        bars = self._bars.get(symbol)
        return bars.closed_at(now) if bars is not None else Bars.empty()
