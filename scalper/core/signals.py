"""Plain results of a strategy: a Signal, or a Skip with a reason code."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from itertools import repeat
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


def many_signals(strategy: str, is_buy: Iterable[bool], bar_times: Iterable[int], entries: Iterable[float],
                 sls: Iterable[float], tps: Iterable[float], scores: Iterable[float],
                 params: Mapping[str, float | int], count: int) -> list[Signal]:
    """`count` Signals of one strategy and one parameters dict, from columns: the very objects
    Signal(...) gives, built field by field through the slots' setters (a scan builds ~32,000;
    the frozen __init__'s eight object.__setattr__ calls each cost ~4x as much)."""
    made: list[Signal] = list(map(object.__new__, repeat(Signal, count)))
    directions = ["buy" if b else "sell" for b in is_buy]
    columns = (repeat(strategy, count), directions, bar_times, entries, sls, tps, scores, repeat(params, count))
    for f, values in zip(fields(Signal), columns, strict=True):
        deque(map(getattr(Signal, f.name).__set__, made, values), maxlen=0)
    return made


@dataclass(frozen=True)
class Skip:
    strategy: str
    reason: str          # <strategy>_insufficient_candles | _no_setup | _invalid_stop


Outcome = Signal | Skip
