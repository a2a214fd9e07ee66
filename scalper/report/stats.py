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
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_profit = math.fsum(wins)
    gross_loss = -math.fsum(losses)
    net = math.fsum(pnls)
    n = len(pnls)
    profit_factor: float | None
    if gross_loss > 0:
        profit_factor = gross_profit / gross_loss
    else:
        profit_factor = math.inf if gross_profit > 0 else None
    return Stats(trades=n, wins=len(wins), losses=len(losses), win_rate=len(wins) / n if n else None,
                 gross_profit=gross_profit, gross_loss=gross_loss, profit_factor=profit_factor,
                 expectancy=net / n if n else None, net_pnl=net, max_drawdown=max_drawdown(pnls))


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
