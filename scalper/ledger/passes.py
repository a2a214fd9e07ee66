"""The units of work of an engine pass. Each is one transaction over the ledger's table operations
(`ledger.runs`, `.signals`, `.orders`, `.positions`, `.kill_switches`) with its audit line, so a
crash leaves either all of a step or none of it. The engine speaks no SQL: it calls these, and
reads through the table operations directly.
"""

from __future__ import annotations

import json
from typing import Any

from scalper.clock import iso
from scalper.core.risk import Decision
from scalper.core.signals import Direction, Signal
from scalper.ledger.rows import RunRow, SignalRow
from scalper.ledger.store import Ledger
from scalper.vocab import OrderStatus, RunStatus


# --- runs ---------------------------------------------------------------------------------------
def start_run(ledger: Ledger, *, run_id: str, started_at: str, now: float, pid: int,
              dry_run: bool, host: str) -> list[RunRow]:
    """Record this run as `running`. The caller holds the run lock, so a run still marked `running`
    died without finishing (a crash): it is marked `interrupted` (finished_at = when that was
    noticed) and audited. Returns those runs."""
    with ledger.tx() as c:
        dead = ledger.runs.mark_interrupted(c, noticed_at=started_at, host=host)
        for run in dead:
            ledger.audit(c, now, "run_interrupted", f"run {run.id} (pid {run.pid}) ended without "
                         "finishing (killed or crashed); its orders are reconciled by this run", run_id=run_id)
        ledger.runs.start(c, run_id, started_at=started_at, as_of=iso(now), pid=pid, dry_run=dry_run, host=host)
    return dead


def finish_run(ledger: Ledger, run_id: str, *, finished_at: str, duration_s: float, status: RunStatus,
               summary: dict[str, Any]) -> None:
    with ledger.tx() as c:
        ledger.runs.finish(c, run_id, status=status, finished_at=finished_at, duration_s=duration_s,
                           summary=json.dumps(summary, sort_keys=True))


# --- signals and decisions -----------------------------------------------------------------------
def record_signal(ledger: Ledger, signal: Signal, *, dedupe_key: str, run_id: str, bot: str, symbol: str,
                  now: float) -> tuple[int, bool]:
    """(signal id, created): one row per dedupe key, whoever records it first."""
    with ledger.tx() as c:
        return ledger.signals.record(
            c, dedupe_key=dedupe_key, run_id=run_id, bot=bot, strategy=signal.strategy, symbol=symbol,
            bar_time=iso(signal.bar_time), bar_ts=int(signal.bar_time), direction=signal.direction,
            entry=signal.entry, sl=signal.sl, tp=signal.tp, score=signal.score,
            params=json.dumps(dict(signal.params), sort_keys=True), created_at=iso(now))


def signal_of(row: SignalRow) -> Signal:
    """The strategy's signal a row was recorded from (the inverse of `record_signal`)."""
    return Signal(strategy=row.strategy, direction=_direction(row.direction), bar_time=int(row.bar_ts),
                  entry=row.entry, sl=row.sl, tp=row.tp, score=row.score, params=json.loads(row.params or "{}"))


def _direction(text: str) -> Direction:
    if text == "buy":
        return "buy"
    if text == "sell":
        return "sell"
    raise ValueError(f"signal direction {text!r}")   # the schema's CHECK allows no other


def record_decision(ledger: Ledger, signal_id: int, decision: Decision, *, run_id: str, bot: str,
                    now: float) -> bool:
    """True when this decision was recorded; False when another pass had decided the signal first."""
    with ledger.tx() as c:
        return ledger.signals.decide(c, signal_id=signal_id, run_id=run_id, bot=bot, action=decision.action,
                                     reason=decision.reason, detail=decision.detail, created_at=iso(now))


# --- orders and positions ---------------------------------------------------------------------------
def refuse_intent(ledger: Ledger, order_id: int, message: str, *, audit_message: str, now: float, run_id: str,
                  bot: str, account_id: int) -> None:
    """An order recorded but not sent (no spec to size it, account unreachable): `error`, with why, audited."""
    with ledger.tx() as c:
        ledger.orders.move(c, order_id, at=iso(now), status=OrderStatus.ERROR, message=message)
        ledger.audit(c, now, "order_error", audit_message, run_id=run_id, bot=bot, account_id=account_id)


def record_trailing(ledger: Ledger, position_id: int, levels: tuple[float | None, float | None] | None,
                    message: str, *, now: float, run_id: str, bot: str, account_id: int) -> None:
    """A trailing-stop move: the position's SL/TP as the broker now holds them (None: unchanged), audited."""
    with ledger.tx() as c:
        if levels is not None:
            ledger.positions.set_stops(c, position_id, *levels)
        ledger.audit(c, now, "trailing_stop", message, run_id=run_id, bot=bot, account_id=account_id)


def rebuild_daily_pnl(ledger: Ledger, since: float) -> None:
    """Today's (from `since`, a UTC day start) pnl_daily rows, rebuilt from closed positions."""
    with ledger.tx() as c:
        ledger.positions.rebuild_daily_pnl(c, since)


# --- kill-switches and the audit -------------------------------------------------------------------
def engage_switch(ledger: Ledger, bot: str, *, source: str, reason: str, now: float, run_id: str) -> None:
    with ledger.tx() as c:
        ledger.kill_switches.set(c, bot, True, source=source, reason=reason, now=now)
        ledger.audit(c, now, "kill_switch", f"engaged: {reason}", run_id=run_id, bot=bot)


def audit_event(ledger: Ledger, now: float, kind: str, message: str, *, run_id: str | None = None,
                bot: str | None = None, account_id: int | None = None, data: dict[str, Any] | None = None) -> None:
    """One audit line in a transaction of its own."""
    with ledger.tx() as c:
        ledger.audit(c, now, kind, message, run_id=run_id, bot=bot, account_id=account_id, data=data)
