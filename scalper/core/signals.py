"""Plain results of a strategy: a Signal, or a Skip with a reason code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["buy", "sell"]


@dataclass(frozen=True, slots=True)   # slots: a scan of a year holds ~32,000 of them
class Signal:
    strategy: str
    direction: Direction
    bar_time: int        # open time of the signal bar t (epoch seconds)
    entry: float         # reference entry: close of bar t
    sl: float
    tp: float
    score: float         # in [0, 1]
    params: Mapping[str, float | int] = field(default_factory=dict)

    @property
    def risk(self) -> float:
        return self.entry - self.sl if self.direction == "buy" else self.sl - self.entry


@dataclass(frozen=True)
class Skip:
    strategy: str
    reason: str          # <strategy>_insufficient_candles | _no_setup | _invalid_stop


Outcome = Signal | Skip
