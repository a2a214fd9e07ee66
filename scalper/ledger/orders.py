"""Orders: the intent recorded before anything is sent, and every move after it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from scalper.ledger.rows import OrderRow, fetch_one
from scalper.vocab import ORDER_IN_FLIGHT, OrderKind, OrderStatus

if TYPE_CHECKING:
    from scalper.ledger.store import Ledger

# What a move may change; id, client id and the intent itself never change.
_MOVABLE = frozenset({"status", "attempts", "broker_ticket", "fill_price", "filled_volume", "code", "message",
                      "position_ticket"})


class Orders:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    def record_intent(self, c: sqlite3.Connection, *, client_order_id: str, signal_id: int | None,
                      account_id: int, bot: str, kind: OrderKind, symbol: str, side: str, volume: float,
                      sl: float | None, tp: float | None, magic: int, position_ticket: int | None,
                      run_id: str, at: str, reason: str | None = None) -> bool:
        """Record a `new` order unless one with this client id exists. Returns whether it was added."""
        if c.execute("SELECT id FROM orders WHERE client_order_id = ?", (client_order_id,)).fetchone():
            return False
        c.execute("INSERT INTO orders (client_order_id, signal_id, account_id, bot, kind, symbol, side, volume, "
                  "sl, tp, magic, position_ticket, status, attempts, run_id, created_at, updated_at, reason) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                  (client_order_id, signal_id, account_id, bot, kind, symbol, side, volume, sl, tp, magic,
                   position_ticket, OrderStatus.NEW, run_id, at, at, reason))
        return True

    def move(self, c: sqlite3.Connection, order_id: int, *, at: str, **fields: Any) -> None:
        """Update an order's outcome fields (status, attempts, code, message, broker ticket, fill)."""
        unknown = set(fields) - _MOVABLE
        if unknown:
            raise ValueError(f"not an order outcome field: {', '.join(sorted(unknown))}")
        sets = "".join(f"{k} = ?, " for k in fields)
        c.execute(f"UPDATE orders SET {sets}updated_at = ? WHERE id = ?", (*fields.values(), at, order_id))

    def get(self, order_id: int) -> OrderRow:
        row = self._ledger.row(OrderRow, "SELECT * FROM orders WHERE id = ?", (order_id,))
        if row is None:
            raise KeyError(f"no order {order_id} in the ledger")
        return row

    def by_client_id(self, client_order_id: str) -> OrderRow | None:
        return self._ledger.row(OrderRow, "SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))

    def id_for_comment(self, c: sqlite3.Connection, comment: str, account_id: int) -> int | None:
        """The order whose client id a broker position carries as its comment, on this account."""
        row = fetch_one(c, OrderRow, "SELECT * FROM orders WHERE client_order_id = ? AND account_id = ?",
                        (comment, account_id))
        return row.id if row else None

    def in_flight(self, account_ids: Iterable[int] | None = None, *, kind: OrderKind | None = None) -> list[OrderRow]:
        """Orders not yet settled (new/sent), oldest first: they count as exposure, and the next
        run reconciles them against the broker."""
        rows = self._ledger.rows(OrderRow, "SELECT * FROM orders WHERE status IN (?, ?) ORDER BY id",
                                 ORDER_IN_FLIGHT)
        accounts = None if account_ids is None else set(account_ids)
        return [r for r in rows if (accounts is None or r.account_id in accounts) and (kind is None or r.kind == kind)]

    def cancel_unsent(self, c: sqlite3.Connection, *, created_since: str, at: str, message: str) -> int:
        """Cancel every `new` order created from `created_since` on (rollback). Returns how many."""
        cur = c.execute("UPDATE orders SET status = ?, message = ?, updated_at = ? WHERE status = ? "
                        "AND created_at >= ?", (OrderStatus.CANCELED, message, at, OrderStatus.NEW, created_since))
        return int(cur.rowcount)
