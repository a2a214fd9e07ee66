"""Signals and the risk decisions taken on them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scalper.ledger.rows import DecisionRow, SignalRow, fetch_one
from scalper.vocab import DecisionAction, OrderKind

if TYPE_CHECKING:
    from scalper.ledger.store import Ledger


@dataclass(frozen=True)
class UnfinishedSignal:
    """A signal an interrupted run left half done: undecided (action None), or approved with
    open orders on `order_accounts` only."""

    signal: SignalRow
    action: DecisionAction | None
    order_accounts: frozenset[int]


class Signals:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    def record(self, c: sqlite3.Connection, *, dedupe_key: str, run_id: str, bot: str, strategy: str,
               symbol: str, bar_time: str, bar_ts: int, direction: str, entry: float, sl: float, tp: float,
               score: float, params: str, created_at: str) -> tuple[int, bool]:
        """(signal id, created): a signal seen before (same dedupe key) is found, never added twice."""
        row = c.execute("SELECT id FROM signals WHERE dedupe_key = ?", (dedupe_key,)).fetchone()
        if row:
            return int(row[0]), False
        cur = c.execute("INSERT INTO signals (dedupe_key, run_id, bot, strategy, symbol, bar_time, bar_ts, "
                        "direction, entry, sl, tp, score, params, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (dedupe_key, run_id, bot, strategy, symbol, bar_time, bar_ts, direction, entry, sl, tp,
                         score, params, created_at))
        return int(cur.lastrowid or 0), True

    def get(self, signal_id: int) -> SignalRow | None:
        return self._ledger.row(SignalRow, "SELECT * FROM signals WHERE id = ?", (signal_id,))

    def strategy_of(self, c: sqlite3.Connection, signal_id: int | None) -> str | None:
        if signal_id is None:
            return None
        row = fetch_one(c, SignalRow, "SELECT * FROM signals WHERE id = ?", (signal_id,))
        return row.strategy if row else None

    def unfinished(self, *, bot: str, symbol: str, since_ts: float, approved_since_ts: float) -> list[UnfinishedSignal]:
        """The bot's signals on `symbol` from `since_ts` on that are undecided, or approved (from
        `approved_since_ts` on) — with the accounts their open orders went to — oldest first."""
        rows = self._ledger.query(
            "SELECT s.*, d.action AS action FROM signals s LEFT JOIN decisions d ON d.signal_id = s.id "
            "WHERE s.bot = ? AND s.bar_ts >= ? AND s.symbol = ? "
            "AND (d.id IS NULL OR (d.action = ? AND s.bar_ts >= ?)) ORDER BY s.bar_ts, s.id",
            (bot, since_ts, symbol, DecisionAction.OPEN, approved_since_ts))
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ", ".join("?" for _ in ids)
        served: dict[int, set[int]] = {}
        for o in self._ledger.query(f"SELECT signal_id, account_id FROM orders WHERE kind = ? "
                                    f"AND signal_id IN ({marks})", (OrderKind.OPEN, *ids)):
            served.setdefault(o["signal_id"], set()).add(o["account_id"])
        cols = list(rows[0])
        return [UnfinishedSignal(SignalRow.from_row(cols, list(r.values())),
                                 DecisionAction(r["action"]) if r["action"] is not None else None,
                                 frozenset(served.get(r["id"], ()))) for r in rows]

    # --- decisions ---------------------------------------------------------------------------
    def decision(self, signal_id: int) -> DecisionRow | None:
        return self._ledger.row(DecisionRow, "SELECT * FROM decisions WHERE signal_id = ?", (signal_id,))

    def decide(self, c: sqlite3.Connection, *, signal_id: int, run_id: str, bot: str, action: DecisionAction,
               reason: str, detail: str, created_at: str) -> bool:
        """Record the decision on a signal unless one is there already (a fleet: another host's pass
        may have decided it since this pass looked; inside the write transaction the check and the
        insert are one step, and the first decision stands). True when this one was recorded."""
        if c.execute("SELECT 1 FROM decisions WHERE signal_id = ?", (signal_id,)).fetchone() is not None:
            return False
        c.execute("INSERT INTO decisions (signal_id, run_id, bot, action, reason, detail, created_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", (signal_id, run_id, bot, action, reason, detail, created_at))
        return True
