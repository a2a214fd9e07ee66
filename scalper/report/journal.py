"""The trade journal and the chart marks of `scalper report`, per symbol.

Read-only, from the `reports` questions of a Ledger opened with `readonly=True`,
like ledger_report. A closed trade: entry and exit time and price, the R multiple
(the move in units of the initial risk, entry to initial stop), how long it was
held, what closed it (the broker's reason, or why scalper closed it), the P&L.
Prices to the symbol's digits, money to cents.
"""

from __future__ import annotations

from collections.abc import Callable

from scalper import rounding
from scalper.clock import iso, parse_instant
from scalper.ledger import Ledger
from scalper.ledger.rows import PositionRow
from scalper.report import charts
from scalper.vocab import CloseReason, Side

JOURNAL_FIELDS = ["bot", "strategy", "account_id", "ticket", "symbol", "side", "volume", "entry_time", "entry",
                  "exit_time", "exit", "initial_sl", "tp", "r_multiple", "duration_s", "exit_reason", "pnl"]


def r_multiple(side: str, entry: float, exit_price: float | None, initial_sl: float | None) -> float | None:
    """The trade's result in R: +1.0 gained what the initial stop risked; None without a stop."""
    if exit_price is None or initial_sl is None:
        return None
    risk = abs(entry - initial_sl)
    if risk <= 0:
        return None
    move = exit_price - entry if side == Side.BUY else entry - exit_price
    return round(move / risk, 2)


def closed_trades(ledger: Ledger, *, since: float, bot: str | None = None,
                  digits_of: Callable[[str], int | None] = lambda symbol: None) -> list[dict]:
    """Positions closed in the span, in closing order."""
    closed = ledger.reports.closed_positions(iso(since), bot)
    causes = ledger.reports.close_causes(closed)
    out = []
    for p in closed:
        d = digits_of(p.symbol)
        stop = p.stop_for_r
        opened, closed_at = parse_instant(p.opened_at), parse_instant(p.closed_at or p.opened_at)
        out.append({
            "bot": p.bot, "strategy": p.strategy or "(adopted)", "account_id": p.account_id,
            "ticket": p.ticket, "symbol": p.symbol, "side": p.side, "volume": rounding.volume(p.volume),
            "entry_time": p.opened_at, "entry": rounding.price(p.price_open, d),
            "exit_time": p.closed_at, "exit": rounding.price(p.close_price, d),
            "initial_sl": rounding.price(stop, d), "tp": rounding.price(p.tp, d),
            "r_multiple": r_multiple(p.side, p.price_open, p.close_price, stop),
            "duration_s": round(closed_at - opened), "exit_reason": exit_reason(p, causes.get(p.id)),
            "pnl": rounding.money(p.profit), "digits": d,
        })
    return out


def exit_reason(position: PositionRow, cause: str | None) -> str | None:
    """What closed the trade: the broker's deal reason (sl, tp, client, ...), except that a close
    by an expert advisor — scalper's own close order — says why scalper sent it (kill_switch,
    rollback), as a backtest's trade does."""
    if position.close_reason == CloseReason.EXPERT and cause is not None:
        return cause
    return position.close_reason


def chart_marks_by_symbol(ledger: Ledger, *, since: float, bot: str | None = None) -> dict[str, tuple[list, list]]:
    """symbol → (signal marks, trade marks) of the span."""
    start = iso(since)
    out: dict[str, tuple[list, list]] = {}
    for m in ledger.reports.signal_marks(start, bot):
        out.setdefault(m.symbol, ([], []))[0].append(charts.SignalMark(m.bar_ts, m.entry, m.direction, m.approved))
    for p in ledger.reports.positions_touching(start, bot):
        out.setdefault(p.symbol, ([], []))[1].append(charts.TradeMark(
            parse_instant(p.opened_at), p.price_open, parse_instant(p.closed_at) if p.closed_at else None,
            p.close_price, p.side, p.profit, p.stop_for_r, p.tp))
    return dict(sorted(out.items()))
