"""Kill-switches: one row per bot that ever had one engaged or released."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from scalper.clock import iso
from scalper.ledger.rows import KillSwitchRow

if TYPE_CHECKING:
    from scalper.ledger.store import Ledger


class KillSwitches:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    def all(self) -> dict[str, KillSwitchRow]:
        """bot → its switch, engaged or not (bots never switched have no row)."""
        return {r.bot: r for r in self._ledger.rows(KillSwitchRow, "SELECT * FROM kill_switches ORDER BY bot")}

    def engaged(self) -> dict[str, KillSwitchRow]:
        return {r.bot: r for r in self._ledger.rows(KillSwitchRow, "SELECT * FROM kill_switches WHERE engaged = 1 "
                                                                   "ORDER BY bot")}

    def get(self, bot: str) -> KillSwitchRow | None:
        """The bot's switch while engaged, else None."""
        row = self._ledger.row(KillSwitchRow, "SELECT * FROM kill_switches WHERE bot = ?", (bot,))
        return row if row is not None and row.engaged else None

    def set(self, c: sqlite3.Connection, bot: str, engaged: bool, *, source: str, reason: str, now: float) -> None:
        c.execute("INSERT INTO kill_switches (bot, engaged, source, reason, changed_at) VALUES (?, ?, ?, ?, ?) "
                  "ON CONFLICT (bot) DO UPDATE SET engaged = excluded.engaged, source = excluded.source, "
                  "reason = excluded.reason, changed_at = excluded.changed_at",
                  (bot, 1 if engaged else 0, source, reason, iso(now)))
