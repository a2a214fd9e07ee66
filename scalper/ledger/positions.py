"""Positions, their fills, and the daily P&L built from them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

from scalper.clock import iso
from scalper.ledger.rows import DailyPnlRow, PositionRow, fetch_one
from scalper.vocab import CloseState, FillEntry, PositionStatus

if TYPE_CHECKING:
    from scalper.ledger.store import Ledger

ADOPTED_BOT = "(adopted)"   # how P&L of a position no bot opened is booked


class Positions:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    # --- reads ---------------------------------------------------------------------------------
    def open(self, account_ids: Iterable[int] | None = None) -> list[PositionRow]:
        """Open positions, oldest first; of the given accounts only when named."""
        if account_ids is None:
            return self._ledger.rows(PositionRow, "SELECT * FROM positions WHERE status = ? ORDER BY id",
                                     (PositionStatus.OPEN,))
        ids = list(account_ids)
        marks = ",".join("?" for _ in ids)
        return self._ledger.rows(PositionRow, f"SELECT * FROM positions WHERE status = ? AND account_id IN ({marks}) "
                                              "ORDER BY id", (PositionStatus.OPEN, *ids))

    def opened_since(self, since: str) -> list[PositionRow]:
        """Positions still open that were opened from `since` on."""
        return self._ledger.rows(PositionRow, "SELECT * FROM positions WHERE status = ? AND opened_at >= ? "
                                              "ORDER BY id", (PositionStatus.OPEN, since))

    def closing(self, account_id: int) -> list[PositionRow]:
        """Closed positions whose P&L is still pending (their closing deal not in the history yet)."""
        return self._ledger.rows(PositionRow, "SELECT * FROM positions WHERE account_id = ? AND close_state = ? "
                                              "ORDER BY id", (account_id, CloseState.CLOSING))

    def unsettled(self, account_id: int, ticket: int) -> PositionRow | None:
        """The position with this ticket while it is open or `closing`."""
        return self._ledger.row(PositionRow, "SELECT * FROM positions WHERE account_id = ? AND ticket = ? AND "
                                             "(status = ? OR close_state = ?)",
                                (account_id, ticket, PositionStatus.OPEN, CloseState.CLOSING))

    def open_one(self, account_id: int, ticket: int) -> PositionRow | None:
        return self._ledger.row(PositionRow, "SELECT * FROM positions WHERE account_id = ? AND ticket = ? "
                                             "AND status = ?", (account_id, ticket, PositionStatus.OPEN))

    def find(self, c: sqlite3.Connection, account_id: int, ticket: int) -> PositionRow | None:
        """The position with this ticket, in any state, as the transaction sees it."""
        return fetch_one(c, PositionRow, "SELECT * FROM positions WHERE account_id = ? AND ticket = ?",
                         (account_id, ticket))

    def realized_today(self, day_start: float) -> dict[str, float]:
        """Each bot's realized P&L from `day_start` (a UTC day start) on: positions closed since,
        P&L still pending counting 0. THE figure for risk limits and kill-switches."""
        return {r["bot"]: float(r["p"]) for r in self._ledger.query(
            "SELECT bot, COALESCE(SUM(profit), 0) AS p FROM positions WHERE status = ? AND closed_at >= ? "
            "AND bot IS NOT NULL GROUP BY bot", (PositionStatus.CLOSED, iso(day_start)))}

    # --- writes --------------------------------------------------------------------------------
    def add(self, c: sqlite3.Connection, *, account_id: int, ticket: int, order_id: int | None,
            signal_id: int | None, bot: str | None, strategy: str | None, symbol: str, side: str, volume: float,
            price_open: float, sl: float | None, tp: float | None, magic: int | None, opened_at: str,
            last_price: float | None, unrealized: float | None, adopted: bool) -> None:
        """An open position: opened by our order, or adopted (found at the broker, unknown to us)."""
        c.execute("INSERT INTO positions (account_id, ticket, order_id, signal_id, bot, strategy, symbol, side, "
                  "volume, price_open, sl, tp, initial_sl, magic, opened_at, status, last_price, unrealized, "
                  "adopted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (account_id, ticket, order_id, signal_id, bot, strategy, symbol, side, volume, price_open, sl, tp,
                   sl, magic, opened_at, PositionStatus.OPEN, last_price, unrealized, int(adopted)))

    def claim(self, c: sqlite3.Connection, position_id: int, *, order_id: int, signal_id: int | None, bot: str,
              strategy: str | None) -> None:
        """Our order opened this position (adopted before its fill was recorded): it is ours, not adopted."""
        c.execute("UPDATE positions SET order_id = ?, signal_id = ?, bot = ?, strategy = ?, adopted = 0 "
                  "WHERE id = ?", (order_id, signal_id, bot, strategy, position_id))

    def refresh(self, c: sqlite3.Connection, position_id: int, *, sl: float | None, tp: float | None,
                volume: float, last_price: float | None, unrealized: float, opened_at: str) -> None:
        """What the broker says of an open position now."""
        c.execute("UPDATE positions SET sl = ?, tp = ?, volume = ?, last_price = ?, unrealized = ?, opened_at = ? "
                  "WHERE id = ?", (sl, tp, volume, last_price, unrealized, opened_at, position_id))

    def set_stops(self, c: sqlite3.Connection, position_id: int, sl: float | None, tp: float | None) -> None:
        c.execute("UPDATE positions SET sl = ?, tp = ? WHERE id = ?", (sl, tp, position_id))

    def close(self, c: sqlite3.Connection, position_id: int, *, closed_at: str, close_price: float | None,
              close_reason: str | None, profit: float | None, close_state: CloseState | None) -> None:
        """Closed at the broker: with its P&L, or `closing` (P&L pending) while the history lags."""
        c.execute("UPDATE positions SET status = ?, closed_at = ?, close_price = ?, close_reason = ?, profit = ?, "
                  "unrealized = 0, close_state = ? WHERE id = ?",
                  (PositionStatus.CLOSED, closed_at, close_price, close_reason, profit, close_state, position_id))

    # --- fills ---------------------------------------------------------------------------------
    def record_fill(self, c: sqlite3.Connection, *, order_id: int | None, account_id: int, deal_ticket: int,
                    position_ticket: int, side: str, entry: FillEntry, price: float, volume: float, profit: float,
                    reason: str | None, time: str, replace: bool = False) -> None:
        """A broker deal of a position. A deal recorded already is kept as is, or with `replace`
        takes the broker's figures (the broker's deal wins over what a close result said of it)."""
        on_conflict = ("DO UPDATE SET price = excluded.price, volume = excluded.volume, profit = excluded.profit, "
                       "reason = excluded.reason, time = excluded.time") if replace else "DO NOTHING"
        c.execute("INSERT INTO fills (order_id, account_id, deal_ticket, position_ticket, side, entry, price, volume, "
                  "profit, reason, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  f"ON CONFLICT (account_id, deal_ticket) {on_conflict}",
                  (order_id, account_id, deal_ticket, position_ticket, side, entry, price, volume, profit, reason,
                   time))

    # --- daily P&L -----------------------------------------------------------------------------
    def rebuild_daily_pnl(self, c: sqlite3.Connection, since: float) -> None:
        """Rebuild pnl_daily from closed positions, from `since` (a UTC day start) on."""
        since_iso = iso(since)
        c.execute("DELETE FROM pnl_daily WHERE day >= ?", (since_iso[:10],))
        c.execute("""
            INSERT INTO pnl_daily (day, bot, account_id, realized, trades, wins, losses)
            SELECT substr(closed_at, 1, 10), COALESCE(bot, ?), account_id,
                   SUM(COALESCE(profit, 0)), COUNT(*),
                   SUM(CASE WHEN profit > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN profit < 0 THEN 1 ELSE 0 END)
            FROM positions WHERE status = ? AND closed_at >= ?
            GROUP BY 1, 2, 3""", (ADOPTED_BOT, PositionStatus.CLOSED, since_iso))

    def daily_pnl(self, day: str) -> list[DailyPnlRow]:
        return self._ledger.rows(DailyPnlRow, "SELECT * FROM pnl_daily WHERE day = ? ORDER BY bot, account_id",
                                 (day,))

