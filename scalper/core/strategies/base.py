"""The flow every strategy shares, on one window (live) or on a whole history (fast).

A strategy supplies its rules as functions of a view (see views.py) and the
parameters: `setups` -> (buy holds, sell holds), `stop(side)`, `score(side, risk)`
and, when not `close_t ± rr * risk`, `target(side, risk)`. This module runs them
in the order of docs/strategies.md: enough bars, the rules, then the risk test,
then TP and score. The live and the fast path call the same rule functions, with
floats or with arrays, so a rule lives in exactly one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalper.core.bars import Bars
from scalper.core.signals import Direction, Signal, Skip, many_signals
from scalper.core.strategies.params import Param, Params, Relation, bars_reached, resolve
from scalper.core.strategies.tolerance import Value, gt
from scalper.core.strategies.views import HistoryView, View, WindowView

Side = Direction   # a strategy names the side a signal would open
BUY: Side = "buy"
SELL: Side = "sell"

# A strategy's rules, functions of the view and the parameters (see the module's docstring)
Setups = Callable[[View, Params], tuple[Value, Value]]     # -> (buy holds, sell holds)
Stop = Callable[[View, Params, Side], Value]                # -> SL
Score = Callable[[View, Params, Side, Value], Value]        # (…, risk) -> score
Target = Callable[[View, Params, Side, Value], Value]       # (…, risk) -> TP


@dataclass
class ScanResult:
    """Signals over a history, in (bar_time, canonical strategy order), and why
    the other evaluated bars gave none (reason code -> count)."""

    signals: list[Signal] = field(default_factory=list)
    skips: dict[str, int] = field(default_factory=dict)
    evaluated: int = 0


def risk_of(side: str, entry: Value, sl: Value) -> Value:
    return entry - sl if side == BUY else sl - entry


def rr_target(view: View, params: Params, side: str, risk: Value) -> Value:
    """The default take profit: close_t ± rr * risk (+ for a buy)."""
    entry = view.candle().close
    return entry + params["rr"] * risk if side == BUY else entry - params["rr"] * risk


@dataclass(frozen=True)
class Strategy:
    name: str
    specs: Mapping[str, Param]
    reaching: tuple[str, ...]   # parameters v whose rules read bar t-v
    setups: Setups
    stop: Stop
    score: Score
    target: Target = rr_target
    relations: tuple[Relation, ...] = ()

    @property
    def defaults(self) -> dict[str, Any]:
        return {name: spec.default for name, spec in self.specs.items()}

    def reason(self, what: str) -> str:
        return f"{self.name}_{what}"

    def min_bars_reach(self, params: Params) -> int:
        """How many bars the parameters make the rules read, bar t included."""
        return bars_reached({**self.defaults, **params}, self.reaching)

    def resolve(self, overrides: Params | None = None, lookback: int | None = None) -> dict[str, Any]:
        return resolve(self.specs, self.reaching, self.relations, overrides, lookback)

    def _complete(self, params: Params) -> dict[str, Any]:
        # Not validated: the config was checked when loaded, and tests build odd
        # parameters (a negative buffer) on purpose.
        return {**self.defaults, **params}

    def _bars_needed(self, params: Params) -> int:
        # min_bars is the rule; the reach guards unvalidated parameters from
        # reading before the window's first bar.
        needed: int = max(params["min_bars"], bars_reached(params, self.reaching))
        return needed

    def evaluate(self, window: Bars, params: Params) -> Signal | Skip:
        """The live path: one window, its last bar is the signal bar t."""
        p = self._complete(params)
        if len(window) < self._bars_needed(p):
            return Skip(self.name, self.reason("insufficient_candles"))
        view = WindowView(window)
        buy, sell = self.setups(view, p)
        side: Side
        if buy:
            side = BUY
        elif sell:
            side = SELL
        else:
            return Skip(self.name, self.reason("no_setup"))
        entry = view.candle().close
        sl = self.stop(view, p, side)
        risk = risk_of(side, entry, sl)
        if not gt(risk, 0.0, view.eps):
            return Skip(self.name, self.reason("invalid_stop"))
        return Signal(self.name, side, int(window.time[-1]), entry, float(sl),
                      float(self.target(view, p, side, risk)),
                      float(self.score(view, p, side, risk)), p)

    def scan(self, history: Bars, params: Params, lookback: int) -> ScanResult:
        """The fast path: for every bar t >= lookback-1, what `evaluate` gives on
        the window of bars t-lookback+1 .. t."""
        return self.scan_view(HistoryView(history, lookback), params)

    def scan_view(self, view: HistoryView, params: Params, counted: np.ndarray | None = None) -> ScanResult:
        """`counted`: which windows `evaluated` and the skips count (all when None); the signals
        are those of every window either way."""
        p = self._complete(params)
        if view.count == 0:
            return ScanResult()
        count = view.count if counted is None else int(np.count_nonzero(counted))
        if view.lookback < self._bars_needed(p):
            return ScanResult([], {self.reason("insufficient_candles"): count} if count else {}, count)
        # Every bar is computed, also those where a rule fails and a score would
        # divide by zero; the masks keep only bars whose rules hold.
        with np.errstate(divide="ignore", invalid="ignore"):
            buy, sell = (np.asarray(m, dtype=bool) for m in self.setups(view, p))
            sell = sell & ~buy
            fired = buy | sell
            entry = view.candle().close
            sl = {side: self.stop(view, p, side) for side in (BUY, SELL)}
            risk = {side: risk_of(side, entry, sl[side]) for side in (BUY, SELL)}
            valid = np.where(buy, gt(risk[BUY], 0.0, view.eps), gt(risk[SELL], 0.0, view.eps))
            rows = np.flatnonzero(fired & valid)
            is_buy = buy[rows]

            def pick(per_side: Callable[[Side], np.ndarray]) -> list[float]:
                picked: list[float] = np.where(is_buy, per_side(BUY)[rows], per_side(SELL)[rows]).tolist()
                return picked

            sls = pick(lambda side: sl[side])
            tps = pick(lambda side: self.target(view, p, side, risk[side]))
            scores = pick(lambda side: self.score(view, p, side, risk[side]))

        shared = dict(p)   # one parameters dict for all of this scan's signals (they are frozen)
        signals = many_signals(self.name, is_buy.tolist(), view.bar_times[rows].tolist(),
                               entry[rows].tolist(), sls, tps, scores, shared, len(rows))
        if counted is None:
            fired_count, valid_count = int(np.count_nonzero(fired)), len(signals)
        else:
            fired_count, valid_count = int(np.count_nonzero(fired & counted)), int(np.count_nonzero(counted[rows]))
        skips = {self.reason("no_setup"): count - fired_count,
                 self.reason("invalid_stop"): fired_count - valid_count}
        return ScanResult(signals, {k: v for k, v in skips.items() if v}, count)
