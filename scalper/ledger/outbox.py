"""The alert outbox: the ledger's side of `notify:` (every SQL statement alerts need).

What happened in the ledger since the last look is read through cursors kept in
`notify_state` (the last positions id, audit id and runs rowid seen), so each
record becomes an event exactly once: reading the records, queueing their rows
and moving the cursors happen in one transaction. A row per (target, event) in
`notify_outbox` stays `pending` until a delivery succeeds (`sent`) or it has
failed too often (`dropped`, with an audit row).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from scalper.clock import iso
from scalper.ledger.store import Ledger
from scalper.vocab import RunStatus

CURSORS = ("positions", "audit", "runs")
STALL_KEY = "stall"          # notify_state: the stall an alert went out for (the last good run's id)
SUCCESSFUL_RUN = (RunStatus.OK, RunStatus.PAUSED)   # a pass that ran to its end (a paused engine still runs its passes)


def _rows(c: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    cur = c.execute(sql, params)
    cols = [d[0] for d in cur.description or ()]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


# --- state --------------------------------------------------------------------------------------
def get_state(c: sqlite3.Connection, key: str) -> str | None:
    row = c.execute("SELECT value FROM notify_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_state(c: sqlite3.Connection, key: str, value: str | None, now: float) -> None:
    if value is None:
        c.execute("DELETE FROM notify_state WHERE key = ?", (key,))
    else:
        c.execute("INSERT OR REPLACE INTO notify_state (key, value, updated_at) VALUES (?, ?, ?)",
                  (key, value, iso(now)))


# --- what the ledger recorded since the last look ----------------------------------------------
def new_records(c: sqlite3.Connection, since_iso: str) -> dict[str, Any]:
    """Records past the cursors (and not older than `since_iso`): opened positions, closes,
    kill-switch engagements, finished runs; and the cursors to store once they are queued."""
    cur = {k: int(get_state(c, f"cursor.{k}") or 0) for k in CURSORS}
    opened = _rows(c, "SELECT p.*, o.client_order_id FROM positions p LEFT JOIN orders o ON o.id = p.order_id "
                      "WHERE p.id > ? AND p.opened_at >= ? ORDER BY p.id", (cur["positions"], since_iso))
    closes = _rows(c, """
        SELECT a.id AS audit_id, a.message AS audit_message, p.*
        FROM audit a JOIN positions p ON p.account_id = a.account_id
                                       AND p.ticket = CAST(json_extract(a.data, '$.ticket') AS INTEGER)
        WHERE a.kind = 'position_closed' AND a.id > ? AND a.at >= ? ORDER BY a.id""",
                   (cur["audit"], since_iso))
    kills = _rows(c, """
        SELECT a.id AS audit_id, a.bot, a.message, a.at, k.source, k.reason
        FROM audit a LEFT JOIN kill_switches k ON k.bot = a.bot
        WHERE a.kind = 'kill_switch' AND a.message LIKE 'engaged%' AND a.id > ? AND a.at >= ?
        ORDER BY a.id""", (cur["audit"], since_iso))
    runs = []
    last_run = cur["runs"]
    for r in _rows(c, "SELECT rowid AS seq, id, status, as_of, summary FROM runs WHERE rowid > ? AND dry_run = 0 "
                      "ORDER BY rowid", (cur["runs"],)):
        if r["status"] == RunStatus.RUNNING:   # a pass still under way: look again next time
            break
        last_run = r["seq"]
        if r["as_of"] >= since_iso:
            r["summary"] = json.loads(r["summary"]) if r["summary"] else {}
            runs.append(r)
    top = {
        "positions": c.execute("SELECT COALESCE(MAX(id), 0) FROM positions").fetchone()[0],
        "audit": c.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0],
        "runs": last_run,
    }
    return {"opened": opened, "closes": closes, "kill_switches": kills, "runs": runs, "cursors": top}


def store_cursors(c: sqlite3.Connection, cursors: dict[str, int], now: float) -> None:
    for k, v in cursors.items():
        set_state(c, f"cursor.{k}", str(int(v)), now)


def day_activity(c: sqlite3.Connection, day_start_iso: str, bots: list[str] | None) -> dict[str, Any]:
    """For the daily summary: closed trades today per bot, open positions, engaged kill-switches."""
    closed = _rows(c, "SELECT bot, account_id, profit FROM positions WHERE status = 'closed' AND closed_at >= ?",
                   (day_start_iso,))
    open_ = _rows(c, "SELECT bot, account_id, symbol, side, volume, price_open, unrealized FROM positions "
                     "WHERE status = 'open' ORDER BY id")
    kills = _rows(c, "SELECT bot, source, reason FROM kill_switches WHERE engaged = 1 ORDER BY bot")
    if bots is not None:
        keep = set(bots)
        closed = [r for r in closed if r["bot"] in keep]
        open_ = [r for r in open_ if r["bot"] in keep]
        kills = [r for r in kills if r["bot"] in keep]
    return {"closed": closed, "open": open_, "kill_switches": kills}


# --- the outbox ---------------------------------------------------------------------------------
def enqueue(c: sqlite3.Connection, *, target: str, event_key: str, event: str, bot: str | None, text: str,
            now: float) -> bool:
    """Queue one event for one target; False when it was queued before (the unique key)."""
    cur = c.execute("INSERT OR IGNORE INTO notify_outbox (target, event_key, event, bot, text, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (target, event_key, event, bot, text, iso(now)))
    return cur.rowcount == 1


def queued(c: sqlite3.Connection, target: str, event_key: str) -> bool:
    return c.execute("SELECT 1 FROM notify_outbox WHERE target = ? AND event_key = ?",
                     (target, event_key)).fetchone() is not None


def pending(ledger: Ledger, target: str, limit: int) -> list[dict[str, Any]]:
    return ledger.query("SELECT * FROM notify_outbox WHERE status = 'pending' AND target = ? ORDER BY id LIMIT ?",
                        (target, limit))


def pending_count(ledger: Ledger, targets: list[str]) -> int:
    if not targets:
        return 0
    marks = ",".join("?" for _ in targets)
    row = ledger.one(f"SELECT COUNT(*) AS n FROM notify_outbox WHERE status = 'pending' AND target IN ({marks})",
                     tuple(targets))
    return int(row["n"]) if row else 0


def mark_sent(ledger: Ledger, ids: list[int], now: float) -> None:
    with ledger.tx() as c:
        c.executemany("UPDATE notify_outbox SET status = 'sent', sent_at = ?, tries = tries + 1 "
                      "WHERE id = ? AND status = 'pending'", [(iso(now), i) for i in ids])


def mark_failed(ledger: Ledger, ids: list[int], error: str, max_tries: int, now: float) -> list[dict[str, Any]]:
    """One more failed try for these rows; rows that reached max_tries are dropped, each with an
    audit row. Returns the dropped rows."""
    with ledger.tx() as c:
        c.executemany("UPDATE notify_outbox SET tries = tries + 1, last_error = ? WHERE id = ? AND "
                      "status = 'pending'", [(error, i) for i in ids])
        marks = ",".join("?" for _ in ids)
        dropped = _rows(c, f"SELECT * FROM notify_outbox WHERE id IN ({marks}) AND status = 'pending' "
                           "AND tries >= ?", (*ids, max_tries))
        for r in dropped:
            c.execute("UPDATE notify_outbox SET status = 'dropped' WHERE id = ?", (r["id"],))
            ledger.audit(c, now, "notify_dropped",
                         f"alert {r['event_key']} to target {r['target']} dropped after {r['tries']} failed "
                         f"tries (last: {error})", bot=r["bot"],
                         data={"outbox_id": r["id"], "target": r["target"], "event_key": r["event_key"]})
    return dropped


# --- the stall watch ----------------------------------------------------------------------------
def last_successful_run(ledger: Ledger) -> dict[str, Any] | None:
    marks = ",".join("?" for _ in SUCCESSFUL_RUN)
    return ledger.one(f"SELECT id, finished_at, status FROM runs WHERE status IN ({marks}) AND dry_run = 0 "
                      "AND finished_at IS NOT NULL ORDER BY finished_at DESC, rowid DESC LIMIT 1",
                      SUCCESSFUL_RUN)
