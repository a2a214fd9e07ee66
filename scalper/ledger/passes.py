"""The ledger operations of an engine pass: runs, signals, decisions, a refused intent, trailing stops,
kill-switches, realized P&L today and the daily P&L rebuild. The engine speaks no SQL: it calls these.

Each operation is one transaction (or one read) and returns frozen rows, never the driver's dicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from scalper.clock import iso
from scalper.core.risk import Decision
from scalper.core.signals import Direction, Signal
from scalper.ledger.store import Ledger
from scalper.vocab import DecisionAction, OrderKind, OrderStatus, PositionStatus, RunStatus


# --- rows ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InterruptedRun:
    """A run found still `running` by the next one (it holds the lock): it died without finishing."""
    id: str
    pid: int | None


@dataclass(frozen=True)
class DecisionRow:
    signal_id: int
    action: DecisionAction
    reason: str
    detail: str | None


@dataclass(frozen=True)
class SignalToResume:
    """A signal an interrupted run left half done: undecided (`action` None), or approved while
    `served` (the accounts its opening orders went to) may not yet hold every account of the bot."""
    signal: Signal
    dedupe_key: str
    action: DecisionAction | None
    served: frozenset[int]


@dataclass(frozen=True)
class EngagedSwitch:
    bot: str
    source: str
    reason: str | None


# --- runs ---------------------------------------------------------------------------------------
def start_run(ledger: Ledger, *, run_id: str, started_at: str, now: float, pid: int,
              dry_run: bool) -> list[InterruptedRun]:
    """Record this run as `running`. The caller holds the run lock, so a run still marked `running`
    died without finishing (a crash): marked `interrupted` (finished_at = when that was noticed) and audited."""
    with ledger.tx() as c:
        dead = [InterruptedRun(id=r[0], pid=r[1])
                for r in c.execute("SELECT id, pid FROM runs WHERE status = ?", (RunStatus.RUNNING,)).fetchall()]
        for run in dead:
            ledger.update_run(c, run.id, status=RunStatus.INTERRUPTED, finished_at=started_at)
            ledger.audit(c, now, "run_interrupted", f"run {run.id} (pid {run.pid}) ended without "
                         "finishing (killed or crashed); its orders are reconciled by this run", run_id=run_id)
        ledger.insert(c, "runs", {"id": run_id, "started_at": started_at, "as_of": iso(now), "status": RunStatus.RUNNING,
                                  "pid": pid, "dry_run": int(dry_run)})
    return dead


def finish_run(ledger: Ledger, run_id: str, *, finished_at: str, duration_s: float, status: RunStatus,
               summary: dict[str, Any]) -> None:
    with ledger.tx() as c:
        ledger.update_run(c, run_id, finished_at=finished_at, duration_s=duration_s, status=status,
                          summary=json.dumps(summary, sort_keys=True))


# --- signals and decisions -----------------------------------------------------------------------
def record_signal(ledger: Ledger, signal: Signal, *, dedupe_key: str, run_id: str, bot: str, symbol: str,
                  now: float) -> tuple[int, bool]:
    """(signal id, created): one row per dedupe key, whoever records it first."""
    with ledger.tx() as c:
        row = c.execute("SELECT id FROM signals WHERE dedupe_key = ?", (dedupe_key,)).fetchone()
        if row:
            return int(row[0]), False
        sid = ledger.insert(c, "signals", {
            "dedupe_key": dedupe_key, "run_id": run_id, "bot": bot, "strategy": signal.strategy,
            "symbol": symbol, "bar_time": iso(signal.bar_time), "bar_ts": int(signal.bar_time),
            "direction": signal.direction, "entry": signal.entry, "sl": signal.sl, "tp": signal.tp,
            "score": signal.score, "params": json.dumps(dict(signal.params), sort_keys=True),
            "created_at": iso(now)})
        return sid, True


def signal_bar_ts(ledger: Ledger, signal_id: int) -> int | None:
    """The open time of a recorded signal's bar (epoch seconds), None for an unknown id."""
    row = ledger.one("SELECT bar_ts FROM signals WHERE id = ?", (signal_id,))
    return None if row is None else int(row["bar_ts"])


def decision_for(ledger: Ledger, signal_id: int) -> DecisionRow | None:
    row = ledger.one("SELECT signal_id, action, reason, detail FROM decisions WHERE signal_id = ?", (signal_id,))
    if row is None:
        return None
    return DecisionRow(signal_id=row["signal_id"], action=DecisionAction(row["action"]), reason=row["reason"],
                       detail=row["detail"])


def record_decision(ledger: Ledger, signal_id: int, decision: Decision, *, run_id: str, bot: str,
                    now: float) -> None:
    with ledger.tx() as c:
        ledger.insert(c, "decisions", {
            "signal_id": signal_id, "run_id": run_id, "bot": bot, "action": decision.action,
            "reason": decision.reason, "detail": decision.detail, "created_at": iso(now)})


def signals_to_resume(ledger: Ledger, *, bot: str, symbol: str, since_ts: float,
                      approved_since_ts: float) -> list[SignalToResume]:
    """The bot's signals on `symbol` from `since_ts` on that were never decided, and those approved
    from `approved_since_ts` on (still fresh enough to send), oldest first."""
    rows = ledger.query(
        "SELECT s.*, d.action AS action, (SELECT GROUP_CONCAT(o.account_id) FROM orders o "
        "WHERE o.signal_id = s.id AND o.kind = ?) AS order_accounts "
        "FROM signals s LEFT JOIN decisions d ON d.signal_id = s.id "
        "WHERE s.bot = ? AND s.bar_ts >= ? AND s.symbol = ? "
        "AND (d.id IS NULL OR (d.action = ? AND s.bar_ts >= ?)) ORDER BY s.bar_ts, s.id",
        (OrderKind.OPEN, bot, since_ts, symbol, DecisionAction.OPEN, approved_since_ts))
    return [SignalToResume(
        signal=Signal(strategy=r["strategy"], direction=_direction(r["direction"]), bar_time=int(r["bar_ts"]),
                      entry=r["entry"], sl=r["sl"], tp=r["tp"], score=r["score"],
                      params=json.loads(r["params"] or "{}")),
        dedupe_key=r["dedupe_key"], action=None if r["action"] is None else DecisionAction(r["action"]),
        served=frozenset(int(a) for a in (r["order_accounts"] or "").split(",") if a)) for r in rows]


def _direction(text: str) -> Direction:
    if text == "buy":
        return "buy"
    if text == "sell":
        return "sell"
    raise ValueError(f"signal direction {text!r}")   # the schema's CHECK allows no other


# --- orders and positions ---------------------------------------------------------------------------
def refuse_intent(ledger: Ledger, order_id: int, message: str, *, audit_message: str, now: float, run_id: str,
                  bot: str, account_id: int) -> None:
    """An order recorded but not sent (no spec, account unreachable): `error`, with why, and audited."""
    with ledger.tx() as c:
        ledger.update(c, "orders", order_id, {"status": OrderStatus.ERROR, "message": message, "updated_at": iso(now)})
        ledger.audit(c, now, "order_error", audit_message, run_id=run_id, bot=bot, account_id=account_id)


def record_trailing(ledger: Ledger, position_id: int, levels: tuple[float | None, float | None] | None,
                    message: str, *, now: float, run_id: str, bot: str, account_id: int) -> None:
    """A trailing-stop move: the position's SL/TP as the broker now holds them (None: unchanged), audited."""
    with ledger.tx() as c:
        if levels is not None:
            c.execute("UPDATE positions SET sl = ?, tp = ? WHERE id = ?", (*levels, position_id))
        ledger.audit(c, now, "trailing_stop", message, run_id=run_id, bot=bot, account_id=account_id)


# --- kill-switches ------------------------------------------------------------------------------
def engaged_switches(ledger: Ledger) -> dict[str, EngagedSwitch]:
    """Every engaged kill-switch, by bot."""
    return {r["bot"]: EngagedSwitch(bot=r["bot"], source=r["source"], reason=r["reason"])
            for r in ledger.query("SELECT bot, source, reason FROM kill_switches WHERE engaged = 1")}


def engage_switch(ledger: Ledger, bot: str, *, source: str, reason: str, now: float, run_id: str) -> None:
    with ledger.tx() as c:
        ledger.set_kill_switch(c, bot, True, source=source, reason=reason, now=now)
        ledger.audit(c, now, "kill_switch", f"engaged: {reason}", run_id=run_id, bot=bot)


def audit_event(ledger: Ledger, now: float, kind: str, message: str, *, run_id: str | None = None,
                bot: str | None = None, account_id: int | None = None, data: dict[str, Any] | None = None) -> None:
    """One audit line in a transaction of its own."""
    with ledger.tx() as c:
        ledger.audit(c, now, kind, message, run_id=run_id, bot=bot, account_id=account_id, data=data)


# --- P&L ---------------------------------------------------------------------------------------
def realized_by_bot(ledger: Ledger, since: float) -> dict[str, float]:
    """Closed positions' profit per bot from `since` (a UTC day start: realized P&L today) on.
    Adopted positions (no bot) are not any bot's."""
    return {r["bot"]: float(r["p"]) for r in ledger.query(
        "SELECT bot, COALESCE(SUM(profit), 0) AS p FROM positions WHERE status = ? AND closed_at >= ? "
        "AND bot IS NOT NULL GROUP BY bot", (PositionStatus.CLOSED, iso(since)))}


def rebuild_daily_pnl(ledger: Ledger, since: float) -> None:
    """Rebuild pnl_daily rows from closed positions, from `since` (a UTC day start) on."""
    since_iso = iso(since)
    with ledger.tx() as c:
        c.execute("DELETE FROM pnl_daily WHERE day >= ?", (since_iso[:10],))
        c.execute("""
            INSERT INTO pnl_daily (day, bot, account_id, realized, trades, wins, losses)
            SELECT substr(closed_at, 1, 10), COALESCE(bot, '(adopted)'), account_id,
                   SUM(COALESCE(profit, 0)), COUNT(*),
                   SUM(CASE WHEN profit > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN profit < 0 THEN 1 ELSE 0 END)
            FROM positions WHERE status = ? AND closed_at >= ?
            GROUP BY 1, 2, 3""", (PositionStatus.CLOSED, since_iso))
