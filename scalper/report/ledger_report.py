"""What the ledger says the engine did over a span: the queries behind `scalper report`.

Read-only: every function takes a Ledger opened with `readonly=True` and only
runs SELECTs. The span starts at `since` (UTC epoch seconds):
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

ADOPTED = "(adopted)"


def known_bots(ledger: Ledger) -> set[str]:
    rows = ledger.query("SELECT bot FROM signals UNION SELECT bot FROM positions WHERE bot IS NOT NULL")
    return {r["bot"] for r in rows}


def symbols(ledger: Ledger, *, since: float, bot: str | None = None) -> list[str]:
    """The symbols signalled in the span."""
    return [r["symbol"] for r in _rows(ledger, "SELECT DISTINCT symbol FROM signals WHERE created_at >= ? {bot} "
                                               "ORDER BY symbol", (iso(since),), bot)]


def build(ledger: Ledger, *, since: float, bot: str | None = None) -> dict:
    """The report as one JSON-ready document."""
    start = iso(since)
    signals = Counter()
    for r in _rows(ledger, "SELECT strategy, COUNT(*) AS n FROM signals WHERE created_at >= ? {bot} "
                           "GROUP BY strategy", (start,), bot):
        signals[r["strategy"]] = r["n"]
    decisions: dict[str, Counter] = defaultdict(Counter)
    for r in _rows(ledger, "SELECT s.strategy, d.reason, COUNT(*) AS n FROM decisions d "
                           "JOIN signals s ON s.id = d.signal_id WHERE s.created_at >= ? {bot} "
                           "GROUP BY s.strategy, d.reason", (start,), bot, column="s.bot"):
        decisions[r["strategy"]][r["reason"]] = r["n"]
    orders: dict[str, Counter] = defaultdict(Counter)
    for r in _rows(ledger, "SELECT s.strategy, o.status, COUNT(*) AS n FROM orders o "
                           "JOIN signals s ON s.id = o.signal_id WHERE o.kind = 'open' AND s.created_at >= ? {bot} "
                           "GROUP BY s.strategy, o.status", (start,), bot, column="s.bot"):
        orders[r["strategy"]][r["status"]] = r["n"]
    closed = _rows(ledger, "SELECT COALESCE(strategy, ?) AS strategy, profit FROM positions "
                           "WHERE status = 'closed' AND closed_at >= ? {bot} ORDER BY closed_at, id",
                   (ADOPTED, start), bot)
    pnls: dict[str, list[float]] = defaultdict(list)
    for r in closed:
        if _money(r["profit"]) is not None:
            pnls[r["strategy"]].append(r["profit"])

    names = [n for n in STRATEGY_NAMES if n in signals or n in pnls]
    names += sorted((set(signals) | set(pnls)) - set(names))
    per_strategy = {n: _strategy_row(signals[n], decisions[n], orders[n], pnls[n]) for n in names}
    all_decisions, all_orders = Counter(), Counter()
    for n in names:
        all_decisions.update(decisions[n])
        all_orders.update(orders[n])
    all_pnls = [r["profit"] for r in closed if _money(r["profit"]) is not None]
    totals = _strategy_row(sum(signals.values()), all_decisions, all_orders, all_pnls)
    totals["trades_without_pnl"] = len(closed) - len(all_pnls)
    return {
        "since": start, "bot": bot,
        "decisions": dict(all_decisions.most_common()),
        "orders": _orders_by_status(ledger, start, bot),
        "totals": totals,
        "per_strategy": per_strategy,
        "daily_pnl": _finite_rows(ledger, "SELECT day, bot, account_id, realized, trades, wins, losses "
                                          "FROM pnl_daily WHERE day >= ? {bot} ORDER BY day, bot, account_id",
                                  (start[:10],), bot),
        "open_positions": _finite_rows(ledger, "SELECT bot, strategy, account_id, ticket, symbol, side, volume, "
                                               "price_open, sl, tp, opened_at, last_price, unrealized FROM positions "
                                               "WHERE status = 'open' {bot} ORDER BY opened_at, id", (), bot),
    }


def chart_marks(ledger: Ledger, *, since: float, bot: str | None = None):
    """(signal marks, trade marks, equity points) of the span, for `charts.draw`."""
    start = iso(since)
    signals = [charts.SignalMark(r["bar_ts"], r["entry"], r["direction"], r["action"] == APPROVED)
               for r in _rows(ledger, "SELECT s.bar_ts, s.entry, s.direction, d.action FROM signals s "
                                      "LEFT JOIN decisions d ON d.signal_id = s.id WHERE s.created_at >= ? {bot} "
                                      "ORDER BY s.bar_ts", (start,), bot, column="s.bot")]
    positions = _rows(ledger, "SELECT side, price_open, opened_at, close_price, closed_at, profit FROM positions "
                              "WHERE (opened_at >= ? OR closed_at >= ? OR status = 'open') {bot} "
                              "ORDER BY opened_at, id", (start, start), bot)
    trades = [charts.TradeMark(parse_instant(p["opened_at"]), p["price_open"],
                               parse_instant(p["closed_at"]) if p["closed_at"] else None, p["close_price"],
                               p["side"], p["profit"]) for p in positions]
    closes = [r for r in _rows(ledger, "SELECT closed_at, profit FROM positions WHERE status = 'closed' "
                                       "AND closed_at >= ? AND profit IS NOT NULL {bot} ORDER BY closed_at, id",
                               (start,), bot) if _money(r["profit"]) is not None]
    equity = stats.equity_curve((parse_instant(r["closed_at"]), r["profit"]) for r in closes)
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
    for r in _rows(ledger, "SELECT kind, status, COUNT(*) AS n FROM orders WHERE created_at >= ? {bot} "
                           "GROUP BY kind, status ORDER BY kind, n DESC", (start,), bot):
        out[r["kind"]][r["status"]] = r["n"]
    return dict(out)


def _money(value: float | None) -> float | None:
    """A money figure from the ledger, or None when there is none or it is not finite (a ledger
    written before prices were checked may hold an infinite P&L: it counts as a trade without P&L)."""
    return value if value is not None and math.isfinite(value) else None


def _finite_rows(ledger: Ledger, sql: str, params: tuple, bot: str | None) -> list[dict]:
    """_rows with every non-finite number shown as None."""
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
            for r in _rows(ledger, sql, params, bot)]


def _rows(ledger: Ledger, sql: str, params: tuple, bot: str | None, column: str = "bot") -> list[dict]:
    """Run `sql`, whose `{bot}` (after its WHERE clause) becomes `AND column = bot` when a bot is named."""
    if bot is None:
        return ledger.query(sql.replace("{bot}", ""), params)
    return ledger.query(sql.replace("{bot}", f"AND {column} = ?"), (*params, bot))
