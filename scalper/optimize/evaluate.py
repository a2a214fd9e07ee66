"""A trial = one `scalper backtest` replay (scalper.backtest.run_backtest: the same
strategies, risk rules, fill model and upkeep as run-once) of bars [start, end].

The history handed to the replay ends at bar `end`: a trial never sees a later bar
(no look-ahead through the last price or the windows). Bars before `start` are
still read by the windows that need them, as live. The strategies' indicators of
each history prefix are computed once per process and reused by every trial.
"""

from __future__ import annotations

from collections.abc import Mapping

from scalper.backtest import Setup, run_backtest
from scalper.core.bars import Bars
from scalper.optimize.search import outcome, period_edges
from scalper.optimize.space import Dimension, apply


class BacktestEvaluator:
    def __init__(self, history: Bars, setup: Setup, dims: list[Dimension]):
        self.history = history
        self.setup = setup
        self.dims = dims
        self._views: dict[int, tuple] = {}

    def __getstate__(self):
        return {"history": self.history, "setup": self.setup, "dims": self.dims, "_views": {}}

    def _prefix(self, end: int):
        """Bars 0..end and its shared HistoryView (a couple of prefixes live at once: a fold's
        in-sample and out-of-sample ends)."""
        from scalper.core.strategies.views import HistoryView

        if end not in self._views:
            if len(self._views) >= 4:
                self._views.pop(next(iter(self._views)))
            bars = self.history if end == len(self.history) - 1 else self.history.slice(0, end + 1)
            self._views[end] = (bars, HistoryView(bars, self.setup.lookback))
        return self._views[end]

    def evaluate(self, start: int, end: int, values: Mapping[str, float], trades: bool = False) -> dict:
        from scalper.core.strategies.params import InvalidParams

        try:
            setup = apply(self.setup, self.dims, values)
        except InvalidParams as exc:
            return {"invalid": str(exc), "metrics": {"trades": 0}, "sharpe": 0.0, "periods": []}
        bars, view = self._prefix(end)
        result = run_backtest(bars, setup, start=float(bars.time[start]), view=view)
        edges = period_edges(start, end)
        edge_times = bars.time[edges[:-1]].astype(float)
        log = result.trade_log   # two of the trades' fields: no Trade object built, no other column
        pnl, exits = log.column("pnl"), log.column("exit_time")
        out = outcome(pnl, exits, edge_times)
        if trades:
            out["trades"] = list(zip(exits, pnl))
        return out
