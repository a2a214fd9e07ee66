"""The read-only questions `report`, `status`, `metrics` and `rollback` ask of the ledger.

A span starts at `since` (UTC ISO text). A `bot` narrows every question to that bot's records.
Counts come back as plain mappings keyed by what they count; records as row dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scalper.ledger.rows import DailyPnlRow, PositionRow, R
from scalper.vocab import DecisionAction, OrderKind, OrderStatus, PositionStatus, Side

if TYPE_CHECKING:
    from scalper.ledger.store import Ledger


@dataclass(frozen=True)
class SignalMark:
    """A signal as a chart shows it: where, which way, and whether risk approved it."""

    symbol: str
    bar_ts: int
    entry: float
    direction: Side
    approved: bool


@dataclass(frozen=True)
class Activity:
    """What the ledger recorded from an instant on (what a rollback reaches back over)."""

    runs: int
    signals: int
    approved: int
    rejected: int
    orders: dict[str, int] = field(default_factory=dict)   # status → count
    positions_opened: int = 0


@dataclass(frozen=True)
class Tallies:
    """Everything the metrics count, whole ledger."""

    signals: dict[tuple[str, str], int]     # (bot, strategy)
    decisions: dict[tuple[str, str], int]   # (bot, reason)
    orders: dict[tuple[str, str], int]      # (bot, status)
    runs: dict[str, int]                    # status (real runs only)


class Reports:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    def _q(self, sql: str, params: tuple[Any, ...], bot: str | None, column: str = "bot") -> list[dict[str, Any]]:
        """`sql`'s `{bot}` (after its WHERE clause) becomes `AND column = ?` when a bot is named."""
        if bot is None:
            return self._ledger.query(sql.replace("{bot}", ""), params)
        return self._ledger.query(sql.replace("{bot}", f"AND {column} = ?"), (*params, bot))

    # --- what there is --------------------------------------------------------------------------
    def known_bots(self) -> set[str]:
        rows = self._ledger.query("SELECT bot FROM signals UNION SELECT bot FROM positions WHERE bot IS NOT NULL")
        return {r["bot"] for r in rows}

    def signalled_symbols(self, since: str, bot: str | None = None) -> list[str]:
        return [r["symbol"] for r in self._q("SELECT DISTINCT symbol FROM signals WHERE created_at >= ? {bot} "
                                             "ORDER BY symbol", (since,), bot)]

    # --- the funnel: signals → decisions → orders, by strategy ----------------------------------
    def signals_by_strategy(self, since: str, bot: str | None = None) -> dict[str, int]:
        return {r["strategy"]: r["n"] for r in self._q(
            "SELECT strategy, COUNT(*) AS n FROM signals WHERE created_at >= ? {bot} GROUP BY strategy",
            (since,), bot)}

    def decisions_by_strategy(self, since: str, bot: str | None = None) -> dict[tuple[str, str], int]:
        """(strategy, reason) → count, for signals recorded in the span."""
        return {(r["strategy"], r["reason"]): r["n"] for r in self._q(
            "SELECT s.strategy, d.reason, COUNT(*) AS n FROM decisions d JOIN signals s ON s.id = d.signal_id "
            "WHERE s.created_at >= ? {bot} GROUP BY s.strategy, d.reason", (since,), bot, "s.bot")}

    def open_orders_by_strategy(self, since: str, bot: str | None = None) -> dict[tuple[str, str], int]:
        """(strategy, status) → count of opening orders, for signals recorded in the span."""
        return {(r["strategy"], r["status"]): r["n"] for r in self._q(
            "SELECT s.strategy, o.status, COUNT(*) AS n FROM orders o JOIN signals s ON s.id = o.signal_id "
            "WHERE o.kind = ? AND s.created_at >= ? {bot} GROUP BY s.strategy, o.status",
            (OrderKind.OPEN, since), bot, "s.bot")}

    def orders_by_kind(self, since: str, bot: str | None = None) -> dict[tuple[str, str], int]:
        """(kind, status) → count of orders created in the span, most frequent first per kind."""
        return {(r["kind"], r["status"]): r["n"] for r in self._q(
            "SELECT kind, status, COUNT(*) AS n FROM orders WHERE created_at >= ? {bot} "
            "GROUP BY kind, status ORDER BY kind, n DESC, status", (since,), bot)}

    # --- positions ------------------------------------------------------------------------------
    def closed_positions(self, since: str, bot: str | None = None) -> list[PositionRow]:
        """Positions closed in the span, in closing order."""
        return self._rows_of(PositionRow, "SELECT * FROM positions WHERE status = ? AND closed_at >= ? {bot} "
                                          "ORDER BY closed_at, id", (PositionStatus.CLOSED, since), bot)

    def open_positions(self, bot: str | None = None) -> list[PositionRow]:
        """Open now, whenever opened, in opening order."""
        return self._rows_of(PositionRow, "SELECT * FROM positions WHERE status = ? {bot} ORDER BY opened_at, id",
                             (PositionStatus.OPEN,), bot)

    def positions_touching(self, since: str, bot: str | None = None) -> list[PositionRow]:
        """Positions opened or closed in the span, or open now, in opening order (chart marks)."""
        return self._rows_of(PositionRow, "SELECT * FROM positions WHERE (opened_at >= ? OR closed_at >= ? OR "
                                          "status = ?) {bot} ORDER BY opened_at, id",
                             (since, since, PositionStatus.OPEN), bot)

    def daily_pnl(self, since_day: str, bot: str | None = None) -> list[DailyPnlRow]:
        return self._rows_of(DailyPnlRow, "SELECT * FROM pnl_daily WHERE day >= ? {bot} ORDER BY day, bot, account_id",
                             (since_day,), bot)

    def signal_marks(self, since: str, bot: str | None = None) -> list[SignalMark]:
        return [SignalMark(r["symbol"], r["bar_ts"], r["entry"], Side(r["direction"]), r["action"] == DecisionAction.OPEN)
                for r in self._q("SELECT s.symbol, s.bar_ts, s.entry, s.direction, d.action FROM signals s "
                                 "LEFT JOIN decisions d ON d.signal_id = s.id WHERE s.created_at >= ? {bot} "
                                 "ORDER BY s.bar_ts", (since,), bot, "s.bot")]

    def close_causes(self, positions: list[PositionRow]) -> dict[int, str]:
        """position id → why scalper closed it (orders.reason of the close order that did), for
        those of `positions` our own close order closed."""
        if not positions or self._ledger.schema_version() < 5:   # orders.reason came with v5
            return {}
        by_ticket = {(p.account_id, p.ticket): p.id for p in positions}
        out: dict[int, str] = {}
        for r in self._ledger.query("SELECT account_id, position_ticket, reason FROM orders WHERE kind = ? "
                                    "AND status = ? AND reason IS NOT NULL ORDER BY id",
                                    (OrderKind.CLOSE, OrderStatus.FILLED)):
            pid = by_ticket.get((r["account_id"], r["position_ticket"]))
            if pid is not None:
                out[pid] = r["reason"]
        return out

    # --- rollback's span ------------------------------------------------------------------------
    def activity(self, since: str) -> Activity:
        def count(sql: str, *params: Any) -> int:
            return int(self._ledger.query(sql, (*params, since))[0]["n"])

        return Activity(
            runs=count("SELECT COUNT(*) AS n FROM runs WHERE as_of >= ?"),
            signals=count("SELECT COUNT(*) AS n FROM signals WHERE created_at >= ?"),
            approved=count("SELECT COUNT(*) AS n FROM decisions WHERE action = ? AND created_at >= ?",
                           DecisionAction.OPEN),
            rejected=count("SELECT COUNT(*) AS n FROM decisions WHERE action = ? AND created_at >= ?",
                           DecisionAction.REJECT),
            orders={r["status"]: r["n"] for r in self._ledger.query(
                "SELECT status, COUNT(*) AS n FROM orders WHERE created_at >= ? GROUP BY status", (since,))},
            positions_opened=count("SELECT COUNT(*) AS n FROM positions WHERE opened_at >= ?"))

    # --- metrics --------------------------------------------------------------------------------
    def tallies(self) -> Tallies:
        def pairs(sql: str) -> dict[tuple[str, str], int]:
            return {(r["a"], r["b"]): r["n"] for r in self._ledger.query(sql)}

        return Tallies(
            signals=pairs("SELECT bot AS a, strategy AS b, COUNT(*) AS n FROM signals GROUP BY bot, strategy"),
            decisions=pairs("SELECT bot AS a, reason AS b, COUNT(*) AS n FROM decisions GROUP BY bot, reason"),
            orders=pairs("SELECT bot AS a, status AS b, COUNT(*) AS n FROM orders GROUP BY bot, status"),
            runs={r["status"]: r["n"] for r in self._ledger.query(
                "SELECT status, COUNT(*) AS n FROM runs WHERE dry_run = 0 GROUP BY status")})

    def closed_profits(self) -> list[tuple[str | None, int, float | None]]:
        """(bot, account, profit) of every closed position, in closing order."""
        return [(r["bot"], r["account_id"], r["profit"]) for r in self._ledger.query(
            "SELECT bot, account_id, profit FROM positions WHERE status = ? ORDER BY closed_at, id",
            (PositionStatus.CLOSED,))]

    def _rows_of(self, cls: type[R], sql: str, params: tuple[Any, ...], bot: str | None) -> list[R]:
        if bot is None:
            return self._ledger.rows(cls, sql.replace("{bot}", ""), params)
        return self._ledger.rows(cls, sql.replace("{bot}", "AND bot = ?"), (*params, bot))
