"""What the ledger says the engine did over a span: the queries behind `scalper report`.

Read-only: every function takes a Ledger opened with `readonly=True` and asks
its `reports` questions. The span starts at `since` (UTC epoch seconds):
- signals count when the engine recorded them (`created_at`), and their
  decisions and orders count with them, so the three line up side by side;
- trades are positions closed in the span (`closed_at`), by the strategy that
  opened them (positions adopted from the broker count as "(adopted)");
- daily P&L is the `pnl_daily` table from the span's first day on;
- open positions are those open now, whenever they were opened.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from scalper.clock import iso, parse_instant
from scalper.core.risk import APPROVED
from scalper.core.strategies import STRATEGY_NAMES
from scalper.ledger import Ledger
from scalper.report import charts, stats
from scalper.vocab import ADOPTED


def known_bots(ledger: Ledger) -> set[str]:
    return ledger.reports.known_bots()


def symbols(ledger: Ledger, *, since: float, bot: str | None = None) -> list[str]:
    """The symbols signalled in the span."""
    return ledger.reports.signalled_symbols(iso(since), bot)


def build(ledger: Ledger, *, since: float, bot: str | None = None) -> dict:
    """The report as one JSON-ready document."""
    start = iso(since)
    reports = ledger.reports
    signals = Counter(reports.signals_by_strategy(start, bot))
    decisions: dict[str, Counter] = defaultdict(Counter)
    for (strategy, reason), count in reports.decisions_by_strategy(start, bot).items():
        decisions[strategy][reason] = count
    orders: dict[str, Counter] = defaultdict(Counter)
    for (strategy, status), count in reports.open_orders_by_strategy(start, bot).items():
        orders[strategy][status] = count
    closed = reports.closed_positions(start, bot)
    pnls: dict[str, list[float]] = defaultdict(list)
    with_pnl = [(p.strategy or ADOPTED, profit) for p in closed if (profit := _money(p.profit)) is not None]
    for strategy, profit in with_pnl:
        pnls[strategy].append(profit)

    names = [n for n in STRATEGY_NAMES if n in signals or n in pnls]
    names += sorted((set(signals) | set(pnls)) - set(names))
    per_strategy = {n: _strategy_row(signals[n], decisions[n], orders[n], pnls[n]) for n in names}
    all_decisions: Counter[str] = Counter()
    all_orders: Counter[str] = Counter()
    for n in names:
        all_decisions.update(decisions[n])
        all_orders.update(orders[n])
    all_pnls = [profit for _, profit in with_pnl]
    totals = _strategy_row(sum(signals.values()), all_decisions, all_orders, all_pnls)
    totals["trades_without_pnl"] = len(closed) - len(all_pnls)
    return {
        "since": start, "bot": bot,
        "decisions": dict(all_decisions.most_common()),
        "orders": _orders_by_status(ledger, start, bot),
        "totals": totals,
        "per_strategy": per_strategy,
        "daily_pnl": [_finite({"day": r.day, "bot": r.bot, "account_id": r.account_id, "realized": r.realized,
                               "trades": r.trades, "wins": r.wins, "losses": r.losses})
                      for r in reports.daily_pnl(start[:10], bot)],
        "open_positions": [_finite({k: getattr(p, k) for k in OPEN_POSITION_FIELDS})
                           for p in reports.open_positions(bot)],
    }


OPEN_POSITION_FIELDS = ("bot", "strategy", "account_id", "ticket", "symbol", "side", "volume", "price_open", "sl",
                        "tp", "opened_at", "last_price", "unrealized")


def chart_marks(ledger: Ledger, *, since: float, bot: str | None = None):
    """(signal marks, trade marks, equity points) of the span, for `charts.draw`."""
    start = iso(since)
    reports = ledger.reports
    signals = [charts.SignalMark(m.bar_ts, m.entry, m.direction, m.approved) for m in reports.signal_marks(start, bot)]
    trades = [charts.TradeMark(parse_instant(p.opened_at), p.price_open,
                               parse_instant(p.closed_at) if p.closed_at else None, p.close_price,
                               p.side, p.profit) for p in reports.positions_touching(start, bot)]
    closes = [(parse_instant(p.closed_at or start), profit) for p in reports.closed_positions(start, bot)
              if (profit := _money(p.profit)) is not None]
    equity = stats.equity_curve(closes)
    if equity:
        equity.insert(0, (equity[0][0], 0.0))   # the curve starts from zero
    return signals, trades, equity


def _strategy_row(signals: int, decisions: Counter, orders: Counter, pnls: list[float]) -> dict:
    rejected = {r: n for r, n in decisions.most_common() if r != APPROVED}
    return {"signals": signals, "approved": decisions[APPROVED], "rejected_total": sum(rejected.values()),
            "rejected": rejected, "orders": dict(orders.most_common()), **stats.summarize(pnls).to_dict()}


def _orders_by_status(ledger: Ledger, start: str, bot: str | None) -> dict[str, dict[str, int]]:
    """kind (open | close) → status → count, for orders created in the span."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (kind, status), n in ledger.reports.orders_by_kind(start, bot).items():
        out[kind][status] = n
    return dict(out)


def _money(value: float | None) -> float | None:
    """A money figure from the ledger, or None when there is none or it is not finite (a ledger
    written before prices were checked may hold an infinite P&L: it counts as a trade without P&L)."""
    return value if value is not None and math.isfinite(value) else None


def _finite(row: dict) -> dict:
    """`row` with every non-finite number shown as None."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
