"""Walk-forward validation: K consecutive folds, each searched on its in-sample
window and judged on the next, unseen window.

The bars from the first one a window can read (lookback − 1) to the last are cut
into K + 1 equal segments. Fold k (1..K) searches in-sample on segment k
(rolling) or segments 1..k (`anchored`), then replays its winner on segment
k + 1. The out-of-sample segments follow each other, so their trades stitch
into one out-of-sample equity curve. A fold's search reads bars up to its
in-sample end only (see evaluate.py), so no fold ever sees a later bar.

Walk-forward efficiency (WFE) = out-of-sample P&L per bar ÷ in-sample P&L per
bar of the same winner: about 1 when the edge carries over, near 0 or negative
when the search found noise. Undefined when the in-sample P&L is not positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scalper.optimize.search import Runner, SearchResult, StopFlag, TrialRecord, run_search
from scalper.optimize.space import Dimension


@dataclass(frozen=True)
class Fold:
    number: int            # 1..K
    is_start: int          # bar indexes, inclusive
    is_end: int
    oos_start: int
    oos_end: int

    def to_dict(self, time) -> dict:
        from scalper.clock import bar_iso

        return {"fold": self.number, "in_sample": [bar_iso(int(time[self.is_start])), bar_iso(int(time[self.is_end]))],
                "out_of_sample": [bar_iso(int(time[self.oos_start])), bar_iso(int(time[self.oos_end]))],
                "in_sample_bars": self.is_end - self.is_start + 1,
                "out_of_sample_bars": self.oos_end - self.oos_start + 1}


def make_folds(bars: int, lookback: int, k: int, anchored: bool = False) -> list[Fold]:
    """K folds over a history of `bars` bars; ValueError when the segments would be too short."""
    first = max(lookback - 1, 0)
    usable = bars - first
    if k < 1:
        raise ValueError("--walk-forward needs at least 1 fold")
    seg = usable // (k + 1)
    if seg < max(lookback, 60):
        raise ValueError(f"{bars:,} bars cut into {k + 1} segments leave {seg:,} bars each; "
                         f"use fewer folds (at most {max(1, usable // max(lookback, 60) - 1)}) or more data")
    bounds = [first + i * seg for i in range(k + 1)] + [bars]
    folds = []
    for i in range(1, k + 1):
        is_start = bounds[0] if anchored else bounds[i - 1]
        folds.append(Fold(i, is_start, bounds[i] - 1, bounds[i], bounds[i + 1] - 1))
    return folds


@dataclass
class FoldResult:
    fold: Fold
    search: SearchResult
    chosen: TrialRecord | None
    oos: dict | None = None               # the winner replayed on the out-of-sample window
    oos_trades: list = field(default_factory=list)   # (exit_time, pnl)

    def wfe(self) -> float | None:
        if self.chosen is None or self.oos is None:
            return None
        return efficiency(self.chosen.metrics.get("net_pnl", 0.0), self.fold.is_end - self.fold.is_start + 1,
                          self.oos["metrics"]["net_pnl"], self.fold.oos_end - self.fold.oos_start + 1)


def efficiency(is_net: float, is_bars: int, oos_net: float, oos_bars: int) -> float | None:
    if not is_net or is_net <= 0 or not is_bars or not oos_bars:
        return None
    return (oos_net / oos_bars) / (is_net / is_bars)


def run_fold(runner: Runner, dims: list[Dimension], fold: Fold, *, trials: int, seed: int | None, objective: str,
             min_trades: int, storage=None, stamp: str = "", stop: StopFlag | None = None, progress=None,
             done_before: int = 0, total: int | None = None, out_of_sample: bool = True) -> FoldResult:
    """Search on the fold's in-sample window; replay the winner out of sample (unless interrupted,
    or `out_of_sample` is False: the history may then end with the in-sample window)."""
    stop = stop or StopFlag()
    search = run_search(runner, dims, start=fold.is_start, end=fold.is_end, trials=trials,
                        seed=None if seed is None else seed + fold.number, objective=objective,
                        min_trades=min_trades, study_name=f"fold-{fold.number}", storage=storage, stamp=stamp,
                        stop=stop, progress=progress, done_before=done_before, total=total)
    chosen = search.best
    result = FoldResult(fold, search, chosen)
    if chosen is not None and not search.interrupted and out_of_sample:
        out = runner.map(fold.oos_start, fold.oos_end, [chosen.values], StopFlag(), trades=True)[0]
        result.oos = out
        result.oos_trades = out.pop("trades", [])
    return result


def summary(results: list[FoldResult]) -> dict:
    """Totals over the folds: in- and out-of-sample P&L per bar and the overall WFE."""
    done = [(r.fold, r.chosen, r.oos) for r in results if r.oos is not None and r.chosen is not None]
    is_net = sum(chosen.metrics.get("net_pnl", 0.0) for _, chosen, _ in done)
    is_bars = sum(fold.is_end - fold.is_start + 1 for fold, _, _ in done)
    oos_net = sum(oos["metrics"]["net_pnl"] for _, _, oos in done)
    oos_bars = sum(fold.oos_end - fold.oos_start + 1 for fold, _, _ in done)
    oos_trades = sum(oos["metrics"]["trades"] for _, _, oos in done)
    wfe = efficiency(is_net, is_bars, oos_net, oos_bars)
    return {"folds_done": len(done), "in_sample_net": is_net, "out_of_sample_net": oos_net,
            "out_of_sample_trades": oos_trades, "walk_forward_efficiency": None if wfe is None or math.isnan(wfe)
            else round(wfe, 4)}
