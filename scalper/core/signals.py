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
    columns = {"strategy": repeat(strategy, count), "direction": directions, "bar_time": bar_times,
               "entry": entries, "sl": sls, "tp": tps, "score": scores, "params": repeat(params, count)}
    for f in fields(Signal):   # by name: a field added to Signal without a column here is a KeyError
        deque(map(getattr(Signal, f.name).__set__, made, columns.pop(f.name)), maxlen=0)
    assert not columns, f"columns that are no Signal field: {sorted(columns)}"
    return made


@dataclass(frozen=True)
class Skip:
    strategy: str
    reason: str          # <strategy>_insufficient_candles | _no_setup | _invalid_stop


Outcome = Signal | Skip
