"""The trade journal and the chart marks of `scalper report`, per symbol.

Read-only queries on a Ledger opened with `readonly=True`, like ledger_report.
A closed trade: entry and exit time and price, the R multiple (the move in units
of the initial risk, entry to initial stop), how long it was held, why it
closed, the P&L. Prices to the symbol's digits, money to cents.
"""

from __future__ import annotations

from scalper import rounding
from scalper.clock import iso, parse_instant
from scalper.core.risk import APPROVED
from scalper.ledger import Ledger
from scalper.report import charts

JOURNAL_FIELDS = ["bot", "strategy", "account_id", "ticket", "symbol", "side", "volume", "entry_time", "entry",
                  "exit_time", "exit", "initial_sl", "tp", "r_multiple", "duration_s", "exit_reason", "pnl"]


def _where_bot(bot: str | None, column: str = "bot") -> tuple[str, tuple]:
    return (f" AND {column} = ?", (bot,)) if bot else ("", ())


def r_multiple(side: str, entry: float, exit_price: float | None, initial_sl: float | None) -> float | None:
    """The trade's result in R: +1.0 gained what the initial stop risked; None without a stop."""
    if exit_price is None or initial_sl is None:
        return None
    risk = abs(entry - initial_sl)
    if risk <= 0:
        return None
    move = exit_price - entry if side == "buy" else entry - exit_price
    return round(move / risk, 2)


def closed_trades(ledger: Ledger, *, since: float, bot: str | None = None,
                  digits_of=lambda symbol: None) -> list[dict]:
    """Positions closed in the span, in closing order."""
    extra, params = _where_bot(bot)
    rows = ledger.query("SELECT bot, strategy, account_id, ticket, symbol, side, volume, price_open, opened_at, "
                        "close_price, closed_at, close_reason, profit, initial_sl, sl, tp FROM positions "
                        f"WHERE status = 'closed' AND closed_at >= ?{extra} ORDER BY closed_at, id",
                        (iso(since), *params))
    out = []
    for r in rows:
        d = digits_of(r["symbol"])
        stop = r["initial_sl"] if r["initial_sl"] is not None else r["sl"]
        opened, closed = parse_instant(r["opened_at"]), parse_instant(r["closed_at"])
        out.append({
            "bot": r["bot"], "strategy": r["strategy"] or "(adopted)", "account_id": r["account_id"],
            "ticket": r["ticket"], "symbol": r["symbol"], "side": r["side"], "volume": rounding.volume(r["volume"]),
            "entry_time": r["opened_at"], "entry": rounding.price(r["price_open"], d),
            "exit_time": r["closed_at"], "exit": rounding.price(r["close_price"], d),
            "initial_sl": rounding.price(stop, d), "tp": rounding.price(r["tp"], d),
            "r_multiple": r_multiple(r["side"], r["price_open"], r["close_price"], stop),
            "duration_s": int(round(closed - opened)), "exit_reason": r["close_reason"],
            "pnl": rounding.money(r["profit"]), "digits": d,
        })
    return out


def chart_marks_by_symbol(ledger: Ledger, *, since: float, bot: str | None = None) -> dict[str, tuple[list, list]]:
    """symbol → (signal marks, trade marks) of the span."""
    start = iso(since)
    out: dict[str, tuple[list, list]] = {}
    extra, params = _where_bot(bot, "s.bot")
    for r in ledger.query("SELECT s.symbol, s.bar_ts, s.entry, s.direction, d.action FROM signals s "
                          "LEFT JOIN decisions d ON d.signal_id = s.id "
                          f"WHERE s.created_at >= ?{extra} ORDER BY s.bar_ts", (start, *params)):
        out.setdefault(r["symbol"], ([], []))[0].append(
            charts.SignalMark(r["bar_ts"], r["entry"], r["direction"], r["action"] == APPROVED))
    extra, params = _where_bot(bot)
    for p in ledger.query("SELECT symbol, side, price_open, opened_at, close_price, closed_at, profit, "
                          "initial_sl, sl, tp FROM positions "
                          f"WHERE (opened_at >= ? OR closed_at >= ? OR status = 'open'){extra} "
                          "ORDER BY opened_at, id", (start, start, *params)):
        out.setdefault(p["symbol"], ([], []))[1].append(charts.TradeMark(
            parse_instant(p["opened_at"]), p["price_open"],
            parse_instant(p["closed_at"]) if p["closed_at"] else None, p["close_price"], p["side"], p["profit"],
            p["initial_sl"] if p["initial_sl"] is not None else p["sl"], p["tp"]))
    return dict(sorted(out.items()))
