"""Alerts as a service: after each pass, from the stall watch (`scalper check --notify`) and
`scalper notify test`.

After a pass (never inside it): what the ledger recorded since the last look becomes
events, queued in the ledger's outbox per target in one transaction with the cursors
(scalper.ledger.outbox); then every target with pending alerts gets ONE message holding
them, all targets at once within a short deadline. A delivery that fails leaves its
alerts pending for the next pass; after `max_tries` they are dropped with an audit row.
A crash after a delivery and before the outbox marks it sent makes the next pass send
that message again: at most one duplicate, never a lost alert.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from scalper.clock import iso, parse_instant
from scalper.config import Config, NotifyTarget
from scalper.errors import LockHeld, ScalperError
from scalper.ledger.postgres import is_url

log = logging.getLogger("scalper.notify")

HORIZON_S = 2 * 3600      # records older than this are history, not news (alerts switched on late)
BATCH = 20                # alerts in one message; the rest go with the next pass
TITLE = "scalper"


# --- after a pass ---------------------------------------------------------------------------------
def after_pass(cfg: Config, ledger_path: Path, summary=None, *, now: float | None = None) -> list[str]:
    """Queue what the pass recorded and deliver what is pending. Never raises (a trading
    run must not fail because a phone cannot be reached); returns notes for the operator."""
    if not cfg.notify:
        return []
    if now is None:
        now = parse_instant(summary.as_of) if summary is not None and summary.as_of else time.time()
    notes: list[str] = []
    try:
        from scalper.ledger import Ledger

        with Ledger(ledger_path) as ledger:
            collect(cfg, ledger, now)
            notes += deliver_pending(cfg, ledger_path, ledger)
    except ScalperError as exc:
        notes.append(f"alerts: {exc}")
    except Exception as exc:   # a bug here must not turn a good pass into a failed one
        log.exception("alerts failed")
        notes.append(f"alerts: unexpected {type(exc).__name__} (details in the log file)")
    for n in notes:
        log.warning("%s", n)
    return notes


def _accounts(cfg: Config) -> dict[int, str]:
    return {a.id: f"account {a.name} (#{a.id})" if a.name else f"account #{a.id}" for a in cfg.accounts}


def _currency(cfg: Config):
    brokers = {a.id: a.broker for a in cfg.accounts}

    def currency_of(account_id: int) -> str:
        return cfg.paper.currency if brokers.get(account_id) == "paper" else "(account currency)"

    return currency_of


def route(cfg: Config, c, *, event: str, key: str, bot: str | None, text: str, now: float) -> int:
    """Queue one event for every target that wants it. Returns how many rows were new."""
    from scalper.ledger import outbox

    n = 0
    for t in cfg.notify:
        if t.wants(event, bot):
            n += outbox.enqueue(c, target=t.label, event_key=key, event=event, bot=bot, text=text, now=now)
    return n


def collect(cfg: Config, ledger, now: float) -> int:
    """Turn what the ledger recorded since the last look into queued alerts (one transaction)."""
    from scalper.ledger import outbox
    from scalper.notify import messages

    accounts, currency_of = _accounts(cfg), _currency(cfg)
    queued = 0
    with ledger.tx() as c:
        rec = outbox.new_records(c, iso(now - HORIZON_S))
        for p in rec["opened"]:
            queued += route(cfg, c, event="fills", key=f"fill:{p['account_id']}:{p['ticket']}", bot=p["bot"],
                            text=messages.fill(p, accounts.get(p["account_id"], str(p["account_id"]))), now=now)
        for p in rec["closes"]:
            text = messages.close(p, accounts.get(p["account_id"], str(p["account_id"])),
                                  currency_of(p["account_id"]))
            queued += route(cfg, c, event="closes", key=f"close:{p['account_id']}:{p['ticket']}", bot=p["bot"],
                            text=text, now=now)
        for k in rec["kill_switches"]:
            queued += route(cfg, c, event="kill_switch", key=f"kill_switch:{k['audit_id']}", bot=k["bot"],
                            text=messages.kill_switch(k), now=now)
        for r in rec["runs"]:
            general = {**r, "summary": {**r["summary"], "order_problems": []}}
            lines = messages.run_errors(general, accounts)
            if lines:
                queued += route(cfg, c, event="errors", key=f"run:{r['id']}", bot=None, text="\n".join(lines),
                                now=now)
            for p in r["summary"].get("order_problems") or []:
                one = {"id": r["id"], "status": "ok", "summary": {"order_problems": [p]}}
                queued += route(cfg, c, event="errors", bot=p.get("bot"),
                                key=f"order:{p.get('client_order_id')}:{p.get('status')}",
                                text=messages.run_errors(one, accounts)[0], now=now)
        outbox.store_cursors(c, rec["cursors"], now)
        queued += _recovery(cfg, c, ledger, now)
        queued += _daily_summaries(cfg, c, now, accounts, currency_of)
    return queued


def _recovery(cfg: Config, c, ledger, now: float) -> int:
    """A stall was alerted and a pass has succeeded since: say the engine runs again (once)."""
    from scalper.ledger import outbox
    from scalper.notify import messages

    alerted = outbox.get_state(c, outbox.STALL_KEY)
    if alerted is None:
        return 0
    last = outbox.last_successful_run(ledger)
    if last is None or last["id"] == alerted:
        return 0
    outbox.set_state(c, outbox.STALL_KEY, None, now)
    return route(cfg, c, event="stale", key=f"recovered:{alerted}", bot=None, text=messages.recovered(last), now=now)


def _daily_summaries(cfg: Config, c, now: float, accounts, currency_of) -> int:
    from scalper.ledger import outbox
    from scalper.notify import messages

    stamp = iso(now)
    day, hhmm = stamp[:10], stamp[11:16]
    n = 0
    for t in cfg.notify:
        if "daily_summary" not in t.events or hhmm < t.daily_summary_at:
            continue
        key = f"daily_summary:{day}"
        if outbox.queued(c, t.label, key):
            continue
        activity = outbox.day_activity(c, f"{day}T00:00:00Z", t.bots)
        text = messages.daily_summary(day, activity, accounts, currency_of)
        n += outbox.enqueue(c, target=t.label, event_key=key, event="daily_summary", bot=None, text=text, now=now)
    return n


# --- delivery -------------------------------------------------------------------------------------
def _lock_path(ledger_path: Path) -> Path:
    """Delivery is serialised per ledger (its own lock, not the run lock: alerts never hold up a pass);
    a PostgreSQL ledger's lock is an advisory lock of its own scope (see deliver_pending)."""
    if is_url(ledger_path):
        return ledger_path
    p = Path(ledger_path)
    return p.with_name(p.name + ".notify")


def deliver_pending(cfg: Config, ledger_path: Path, ledger, *, lock_wait_s: float = 0.0,
                    clock=time.time) -> list[str]:
    """One message per target holding its pending alerts (up to BATCH), all targets at once.
    Returns notes (targets that failed or cannot be tried). Another process delivering
    right now (the lock) means nothing to do here: it sends them."""
    from scalper.ledger import outbox, run_lock

    notes: list[str] = []
    try:
        with run_lock(_lock_path(ledger_path), holder="alert delivery", scope="notify", wait_s=lock_wait_s):
            jobs, rows = [], {}
            for t in cfg.notify:
                batch = outbox.pending(ledger, t.label, BATCH)
                if not batch:
                    continue
                url = os.environ.get(t.url_env)
                if not url:
                    notes.append(f"alerts: target {t.label}: ${t.url_env} is not set; {len(batch)} alert(s) "
                                 "wait in the ledger")
                    continue
                rows[t.label] = batch
                jobs.append(_job(t, url, batch))
            if not jobs:
                return notes
            from scalper.faults import crash_point
            from scalper.notify.deliver import send_all

            results = send_all(jobs)
            crash_point("after_notify_send")   # drills: delivered, not yet marked sent
            by_label = {t.label: t for t in cfg.notify}
            for label, (ok, why) in results.items():
                ids = [r["id"] for r in rows[label]]
                if ok:
                    outbox.mark_sent(ledger, ids, clock())
                    continue
                dropped = outbox.mark_failed(ledger, ids, why, by_label[label].max_tries, clock())
                notes.append(f"alerts: target {label}: {why}; {len(ids) - len(dropped)} alert(s) retried on the "
                             "next pass" + (f", {len(dropped)} dropped after {by_label[label].max_tries} tries"
                                            if dropped else ""))
    except LockHeld:
        pass   # another process is delivering right now: the pending alerts go with it
    return notes


def _job(t: NotifyTarget, url: str, batch: list[dict]):
    from scalper.notify.deliver import Job

    kinds = sorted({r["event"] for r in batch})
    first = batch[0]["text"].splitlines()[0]
    title = f"{TITLE}: " + (first[:60] + ("…" if len(first) > 60 else "") if len(batch) == 1
                            else f"{len(batch)} alerts ({', '.join(kinds)})")
    return Job(target=t.label, url=url, title=title, body="\n\n".join(r["text"] for r in batch),
               timeout_s=t.timeout_s)


# --- the stall watch --------------------------------------------------------------------------------
def stall_watch(cfg: Config, ledger_path: Path, max_age_s: float, *, notify: bool,
                now: float | None = None) -> dict:
    """Is the last successful pass older than max_age_s? With notify, a `stale` alert once per stall
    (keyed by the last good run) and a recovery message once it runs again. Returns a check item."""
    from scalper.clock import human_age
    from scalper.ledger import Ledger, ledger_exists, outbox
    from scalper.notify import messages

    now = time.time() if now is None else now
    if not ledger_exists(ledger_path):
        return {"what": "last pass", "ok": False, "detail": f"no ledger at {ledger_path}: no pass has run yet",
                "notes": []}
    notes: list[str] = []
    with Ledger(ledger_path, readonly=not (notify and cfg.notify)) as ledger:
        last = outbox.last_successful_run(ledger)
        age = now - parse_instant(last["finished_at"]) if last else None
        stale = age is None or age > max_age_s
        if notify and cfg.notify:
            with ledger.tx() as c:
                alerted = outbox.get_state(c, outbox.STALL_KEY)
                key = last["id"] if last else "never"
                if stale and alerted != key:
                    route(cfg, c, event="stale", key=f"stale:{key}", bot=None,
                          text=messages.stale(last, age, max_age_s), now=now)
                    outbox.set_state(c, outbox.STALL_KEY, key, now)
                elif not stale and alerted is not None:
                    assert last is not None   # not stale: a pass is recorded
                    route(cfg, c, event="stale", key=f"recovered:{alerted}", bot=None,
                          text=messages.recovered(last), now=now)
                    outbox.set_state(c, outbox.STALL_KEY, None, now)
            # the loop may be stuck inside a delivery: wait for its lock a little, then give up
            notes = deliver_pending(cfg, ledger_path, ledger, lock_wait_s=max(t.timeout_s for t in cfg.notify) * 2)
    if last is None:
        detail = "no successful pass recorded yet"
    else:
        assert age is not None   # measured whenever there is a last pass
        detail = f"last successful pass {human_age(age)} ago ({last['finished_at']}); allowed {human_age(max_age_s)}"
    return {"what": "last pass", "ok": not stale, "detail": detail, "notes": notes}


# --- scalper notify test ----------------------------------------------------------------------------
def send_test(cfg: Config, *, target: str | None = None) -> dict:
    """A test message to every target (or one); says which worked. Nothing is written to the ledger."""
    from scalper.errors import BadInput

    targets = [t for t in cfg.notify if target is None or t.label == target]
    if not cfg.notify:
        raise BadInput("no alert targets are configured", path=cfg.source, where="notify",
                       fix="add a `notify:` list to bots.yaml (see README, Alerts)")
    if not targets:
        raise BadInput(f"no target named {target!r}", where="--target",
                       fix=f"use one of: {', '.join(t.label for t in cfg.notify)}")
    from scalper.notify.deliver import Job, send_all

    items: list[dict[str, Any]] = []
    jobs = []
    for t in targets:
        url = os.environ.get(t.url_env)
        if not url:
            items.append({"target": t.label, "ok": False, "detail": f"${t.url_env} is not set in this environment"})
            continue
        jobs.append(Job(target=t.label, url=url, title=f"{TITLE}: test",
                        body=f"Test message from scalper to target {t.label}: alerts reach you here "
                             f"({', '.join(t.events)}).", timeout_s=t.timeout_s))
    results = send_all(jobs)
    for j in jobs:
        ok, why = results[j.target]
        items.append({"target": j.target, "ok": ok, "detail": "delivered" if ok else why})
    order = {t.label: i for i, t in enumerate(targets)}
    items.sort(key=lambda i: order[i["target"]])
    ok = all(i["ok"] for i in items)
    return {"ok": ok, "exit_code": 0 if ok else 3, "targets": items}
