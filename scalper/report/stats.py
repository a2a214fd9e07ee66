"""Trade statistics, pure: P&L numbers in, figures out. Shared by `backtest`
(simulated trades) and `report` (closed positions in the ledger).

Conventions:
- a trade with P&L > 0 is a win, < 0 a loss; a break-even trade is neither,
  but it counts in `trades`, so the win rate is wins / trades;
- profit factor = gross profit / gross loss; with no losing trade it is
  undefined (math.inf in Python when there are wins); `to_dict` writes it as
  null, and `gross_loss` = 0 says why;
- expectancy = net P&L / trades (the average trade);
- max drawdown = the largest fall of the cumulative P&L from a running peak,
  starting from 0 before the first trade, in money (>= 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Stats:
    trades: int
    wins: int
    losses: int
    win_rate: float | None          # None without trades
    gross_profit: float
    gross_loss: float               # >= 0
    profit_factor: float | None     # math.inf with wins and no loss; None without either
    expectancy: float | None        # None without trades
    net_pnl: float
    max_drawdown: float

    def to_dict(self) -> dict:
        """JSON-ready: an infinite profit factor becomes None (see the module's conventions)."""
        doc = asdict(self)
        if doc["profit_factor"] is not None and math.isinf(doc["profit_factor"]):
            doc["profit_factor"] = None
        return doc


def summarize(pnls: Sequence[float]) -> Stats:
    """Statistics of trades given by their P&L, in the order they closed."""
    if len(pnls) >= VECTOR_FROM:
        return _summarize_array(pnls)
    return _summarize_plain(pnls)


def _summarize_plain(pnls: Sequence[float]) -> Stats:
    return _stats(len(pnls), [p for p in pnls if p > 0], [p for p in pnls if p < 0], pnls, max_drawdown(pnls))


VECTOR_FROM = 256   # trades from which numpy pays for its arrays


def _summarize_array(pnls: Sequence[float]) -> Stats:
    """`summarize` with numpy picking the wins and losses and running the drawdown: the same
    numbers bit for bit (the sums are math.fsum's of the same floats, exact in any order)."""
    import numpy as np

    values = np.asarray(pnls, dtype=np.float64)
    if not np.isfinite(values).all():   # NaN compares as Python's max() would not: the plain loop
        return _summarize_plain(pnls)
    return _stats(len(values), values[values > 0].tolist(), values[values < 0].tolist(), pnls,
                  max_drawdown_array(values))


def _stats(n: int, wins: list[float], losses: list[float], pnls: Sequence[float], drawdown: float) -> Stats:
    gross_profit = math.fsum(wins)
    gross_loss = -math.fsum(losses)
    net = math.fsum(pnls)
    profit_factor: float | None
    if gross_loss > 0:
        profit_factor = gross_profit / gross_loss
    else:
        profit_factor = math.inf if gross_profit > 0 else None
    return Stats(trades=n, wins=len(wins), losses=len(losses), win_rate=len(wins) / n if n else None,
                 gross_profit=gross_profit, gross_loss=gross_loss, profit_factor=profit_factor,
                 expectancy=net / n if n else None, net_pnl=net, max_drawdown=drawdown)


def max_drawdown_array(pnls) -> float:
    """`max_drawdown` of a float array: np.cumsum adds one value after the other, as `cumulative`
    does (no pairwise summation), so the levels, peaks and gaps are the same floats."""
    import numpy as np

    if not len(pnls):
        return 0.0
    levels = np.cumsum(pnls)
    peaks = np.maximum(np.maximum.accumulate(levels), 0.0)
    return float(max(0.0, float((peaks - levels).max())))


def cumulative(pnls: Iterable[float]) -> list[float]:
    """Running total of the P&L, one value per trade."""
    out, total = [], 0.0
    for p in pnls:
        total += p
        out.append(total)
    return out


def max_drawdown(pnls: Iterable[float]) -> float:
    peak = trough_gap = 0.0
    for level in cumulative(pnls):
        peak = max(peak, level)
        trough_gap = max(trough_gap, peak - level)
    return trough_gap


def equity_curve(rows: Iterable[tuple[float, float]], start_balance: float = 0.0) -> list[tuple[float, float]]:
    """(time, equity) after each trade, from (close time, pnl) rows in closing order."""
    out, equity = [], start_balance
    for when, pnl in rows:
        equity += pnl
        out.append((when, equity))
    return out
