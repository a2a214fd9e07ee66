"""Operator controls: kill-switch, rollback/resume, status. Each takes the run
lock (waiting briefly) so it never interleaves with a run-once pass."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scalper import wiring
from scalper.clock import FixedClock, SystemClock, iso, parse_instant, parse_since
from scalper.config import Config
from scalper.core.exposure import day_start
from scalper.errors import BadInput, BrokerUnavailable, quote
from scalper.fleet.hosts import LOCAL, is_fleet
from scalper.fleet.requests import ask_hosts, nudge, pending_hosts, split_by_host
from scalper.ledger import Ledger, run_lock
from scalper.ledger.passes import rebuild_daily_pnl
from scalper.ledger.rows import KillSwitchRow, PositionRow, RunRow
from scalper.orders import OrderDesk
from scalper.vocab import CloseCause, KillSwitchSource, RunStatus, Side

LOCK_WAIT_S = 60.0
REPLAY_GAP_S = 3600.0   # a run whose engine clock trailed the wall clock this much was a replay (--now)


def _bots(cfg: Config, bot: str | None, all_bots: bool) -> list:
    if bot:
        try:
            return [cfg.bot(bot)]
        except KeyError:
            raise BadInput(f"no bot named {quote(bot)}", where="--bot",
                           fix=f"use one of: {', '.join(b.name for b in cfg.bots)}") from None
    if all_bots:
        return list(cfg.bots)
    raise BadInput("say which bot", where="--bot", fix="pass --bot NAME or --all")


def connect_brokers(cfg: Config, account_ids: set[int], clock, factory=None) -> tuple[dict, list[str]]:
    """Connected brokers of `account_ids` (by id), and one line per account that could not be reached."""
    if factory is None:
        feed = wiring.make_feed(cfg)
        factory = wiring.make_broker_factory(cfg, feed, clock)
    brokers, errors = {}, []
    for acc_id in sorted(account_ids):
        try:
            b = factory(cfg.account(acc_id))
            b.connect()
            brokers[acc_id] = b
        except BrokerUnavailable as exc:
            errors.append(f"account {acc_id}: {exc}")
    return brokers, errors


def books_clock(ledger: Ledger, clock=None):
    """The clock operator commands close positions by: the one given, else the wall clock — unless
    the ledger is a replay (`run-once --now`), whose positions are priced at the replay's instant,
    never at today's price. → (clock, note or None)."""
    if clock is not None:
        return clock, None
    last = ledger.runs.last()
    if last is not None:
        as_of, started = parse_instant(last.as_of), parse_instant(last.started_at)
        if started - as_of > REPLAY_GAP_S:
            return FixedClock(as_of), (f"this ledger is a replay (its last run was as of {last.as_of}); "
                                      "positions are closed at that instant's prices")
    return SystemClock(), None


def kill_switch(cfg: Config, ledger_path: Path, action: str, *, bot: str | None, all_bots: bool,
                close: bool = True, clock=None, broker_factory=None) -> dict:
    """Engage, release or show kill-switches. Engaging closes the bot's open positions (unless
    `close` is False) — also when the switch was engaged already and some are still open (a crash
    or a refused close left them). `clock` and `broker_factory` default to the wall clock (or the
    replay's, see books_clock) and the config's brokers."""
    from scalper.engine import close_brokers
    from scalper.engine.upkeep import close_bot_positions

    given_clock = clock
    clock = clock or SystemClock()
    now = clock.now()
    if action == "status":
        states = status_of_kill_switches(cfg, ledger_path)
        if bot:
            _bots(cfg, bot, False)  # an unknown name is bad input
            states = [st for st in states if st["bot"] == bot]
        return {"action": "status", "bots": states}
    bots = _bots(cfg, bot, all_bots)
    out: dict[str, Any] = {"action": action, "bots": [], "errors": []}
    with run_lock(ledger_path, holder="kill-switch", wait_s=LOCK_WAIT_S), Ledger(ledger_path) as ledger:
        run_id = "manual-" + uuid.uuid4().hex[:8]
        clock, note = books_clock(ledger, given_clock)
        if note:
            out["note"] = note
            now = clock.now()
        for b in bots:
            switch = ledger.kill_switches.get(b.name)
            was_engaged = switch is not None
            positions = [p for p in ledger.positions.open(b.accounts) if p.bot == b.name]
            unchanged = was_engaged == (action == "engage")
            # engaged with --no-close, engaged again with closing: from now on it closes
            if unchanged and action == "engage" and close and switch is not None \
                    and switch.source == KillSwitchSource.KEEP_POSITIONS:
                unchanged = False
            entry: dict[str, Any] = {"bot": b.name, "engaged": action == "engage", "positions_closed": 0,
                                     "unchanged": unchanged}
            if not unchanged:
                with ledger.tx() as c:
                    source = (KillSwitchSource.MANUAL if action != "engage" or close
                              else KillSwitchSource.KEEP_POSITIONS)
                    reason = ("released by hand" if action != "engage" else "engaged by hand"
                              + ("" if close else " (--no-close: its positions are kept open)"))
                    ledger.kill_switches.set(c, b.name, action == "engage", source=source, reason=reason, now=now)
                    ledger.audit(c, now, "kill_switch", f"{action}d by hand", run_id=run_id, bot=b.name)
            if action == "engage" and close and positions:
                positions, elsewhere = split_by_host(cfg, positions)   # fleet: other hosts close theirs
                if elsewhere:
                    with ledger.tx() as c:
                        entry["hosts_asked"] = ask_hosts(ledger, c, "kill_switch", elsewhere, now, bots=[b.name])
                brokers, errors = connect_brokers(cfg, {p.account_id for p in positions}, clock, broker_factory)
                out["errors"] += errors
                try:
                    desk = OrderDesk(ledger, clock, run_id=run_id)
                    entry["positions_closed"] = close_bot_positions(ledger, desk, brokers, b, positions)
                finally:
                    close_brokers(brokers)
                entry["positions_left_open"] = len([p for p in ledger.positions.open(b.accounts)
                                                    if p.bot == b.name])
            out["bots"].append(entry)
        if any(e["positions_closed"] for e in out["bots"]):
            rebuild_daily_pnl(ledger, day_start(now))   # the report's daily P&L counts these closes now
        if is_fleet(cfg):
            out["hosts_pending"] = pending_hosts(ledger)
    if is_fleet(cfg):
        out["errors"] += nudge(cfg, sorted({h for e in out["bots"] for h in e.get("hosts_asked", [])}))
    return out


def status_of_kill_switches(cfg: Config, ledger_path: Path) -> list[dict]:
    rows: dict[str, KillSwitchRow] = {}
    if ledger_path.exists():
        with Ledger(ledger_path, readonly=True) as ledger:
            rows = ledger.kill_switches.all()
    out = []
    for b in cfg.bots:
        r = rows.get(b.name)
        engaged = bool(r and r.engaged)
        out.append({"bot": b.name, "engaged": engaged, "source": r.source if r and engaged else None,
                    "reason": r.reason if r else None, "since": r.changed_at if r else None})
    return out


def rollback(cfg: Config, ledger_path: Path, *, since: str, close_positions: bool, clock=None,
             broker_factory=None) -> dict:
    from scalper.engine import close_brokers
    from scalper.engine.upkeep import close_positions_by_bot

    given_clock = clock
    clock = clock or SystemClock()
    now = clock.now()
    parse_since(since, now)   # bad input is refused before anything is opened
    with run_lock(ledger_path, holder="rollback", wait_s=LOCK_WAIT_S), Ledger(ledger_path) as ledger:
        clock, _ = books_clock(ledger, given_clock)
        now = clock.now()
        start = parse_since(since, now)
        start_iso = iso(start)
        run_id = "rollback-" + uuid.uuid4().hex[:8]
        span = asdict(ledger.reports.activity(start_iso))
        with ledger.tx() as c:
            ledger.set_paused(c, True, f"rollback at {iso(now)} (since {start_iso})", now)
            n_canceled = ledger.orders.cancel_unsent(c, created_since=start_iso, at=iso(now),
                                                     message="canceled by rollback")
            ledger.audit(c, now, "rollback", f"engine paused; {n_canceled} pending order(s) canceled",
                         run_id=run_id, data={"since": start_iso})
        closed = 0
        errors: list[str] = []
        asked: list[str] = []
        if close_positions:
            recent = ledger.positions.opened_since(start_iso)
            recent, elsewhere = split_by_host(cfg, recent)   # fleet: other hosts close theirs
            if elsewhere:
                with ledger.tx() as c:
                    asked = ask_hosts(ledger, c, "rollback", elsewhere, now)
            brokers, errors = connect_brokers(cfg, {p.account_id for p in recent}, clock, broker_factory)
            desk = OrderDesk(ledger, clock, run_id=run_id)
            try:
                closed, problems = close_positions_by_bot(ledger, desk, brokers, cfg, recent, CloseCause.ROLLBACK)
                errors += problems
            finally:
                close_brokers(brokers)
            if closed:
                rebuild_daily_pnl(ledger, day_start(now))
        pending = pending_hosts(ledger) if is_fleet(cfg) else None
    doc: dict[str, Any] = {"paused": True, "since": start_iso, "orders_canceled": n_canceled,
                           "positions_closed": closed, "activity": span, "errors": errors}
    if pending is not None:
        doc["hosts_pending"] = pending
        doc["errors"] += nudge(cfg, asked)
    return doc


def resume(ledger_path: Path) -> dict:
    now = time.time()
    with run_lock(ledger_path, holder="resume", wait_s=LOCK_WAIT_S), Ledger(ledger_path) as ledger:
        was, why = ledger.paused()
        with ledger.tx() as c:
            ledger.set_paused(c, False, "resumed by hand", now)
            ledger.audit(c, now, "resume", "engine resumed" if was else "resume: engine was not paused")
    return {"paused": False, "was_paused": was, "reason_was": why}


STALE_RUNS = 3     # a last run older than this many intervals means the loop is not running


def status(cfg: Config, ledger_path: Path, now: float | None = None) -> dict:
    """What is going on, read-only: the engine's state (paused, never run, stalled, failing,
    running), each account's balance and equity, each bot's P&L today, open risk and
    drawdown, open positions. A ledger that does not exist is bad input (exit 2)."""
    from scalper import rounding
    from scalper.brokers.paper import read_accounts
    from scalper.report import stats
    from scalper.symbols import spec_for

    if not ledger_path.exists():
        raise BadInput(f"no ledger at {ledger_path}", where="--ledger",
                       fix="run `scalper run-once` first, or point --ledger (or `ledger:` in bots.yaml) at the "
                           "ledger file")
    now = time.time() if now is None else now
    doc: dict[str, Any] = {"config": cfg.source, "ledger": str(ledger_path), "as_of": iso(now), "paused": False,
                           "pause_reason": None, "engine": None, "last_run": None, "accounts": [], "bots": [],
                           "open_positions": []}
    switches = {s["bot"]: s for s in status_of_kill_switches(cfg, ledger_path)}
    overrides = cfg.symbol_overrides()
    with Ledger(ledger_path, readonly=True) as ledger:
        doc["paused"], doc["pause_reason"] = ledger.paused()
        last_run = ledger.runs.last()
        positions = ledger.positions.open()
        closed = [(bot, acc, profit) for bot, acc, profit in ledger.reports.closed_profits() if profit is not None]
        realized_today = ledger.positions.realized_today(day_start(now))
        if is_fleet(cfg):
            doc["hosts_pending"] = pending_hosts(ledger)
    last = _last_run_doc(last_run, now) if last_run is not None else None
    doc["last_run"] = last
    doc["engine"] = _engine_state(doc["paused"], last, cfg.engine.interval_s)

    paper = read_accounts(cfg.resolve_path(cfg.paper.state))
    for acc in cfg.accounts:
        mine = [p for p in positions if p.account_id == acc.id]
        unrealized = sum(p.unrealized or 0 for p in mine)
        balance, currency = paper.get(str(acc.id), (None, cfg.paper.currency)) if acc.broker == "paper" \
            else (None, None)
        pnls = [profit for _, account, profit in closed if account == acc.id]
        doc["accounts"].append({
            "id": acc.id, "name": acc.label, "broker": acc.broker, "currency": currency,
            "balance": rounding.money(balance), "equity": rounding.money(balance + unrealized) if balance is not None
            else None, "unrealized": rounding.money(unrealized), "open_positions": len(mine),
            "max_drawdown": rounding.money(stats.max_drawdown(pnls)),
            "note": None if balance is not None else (
                f"on terminal host {acc.host}: its balance is in that host's broker" if acc.host != LOCAL
                else "no paper state yet: run run-once" if acc.broker == "paper"
                else "live balance: `scalper check` reaches the terminal")})
    for b in cfg.bots:
        mine = [p for p in positions if p.bot == b.name]
        unrealized = sum(p.unrealized or 0 for p in mine)
        realized = realized_today.get(b.name, 0.0)
        pnls = [profit for bot, _, profit in closed if bot == b.name]
        curve = stats.cumulative(pnls)
        peak = max([0.0, *curve])
        doc["bots"].append({
            "bot": b.name, "symbol": b.symbol, "enabled": b.enabled, "engine_mode": b.engine_mode,
            "auto_trade": b.auto_trade, "accounts": b.accounts, "strategies": b.strategies,
            "kill_switch": switches[b.name], "open_positions": len(mine),
            "unrealized": rounding.money(unrealized), "realized_today": rounding.money(realized),
            "pnl_today": rounding.money(realized + unrealized),
            "open_risk": rounding.money(sum(_risk_at_stop(p, spec_for(p.symbol, overrides)) for p in mine)),
            "drawdown": rounding.money(peak - (curve[-1] if curve else 0.0)),
            "max_drawdown": rounding.money(stats.max_drawdown(pnls))})
    doc["open_positions"] = []
    for p in positions:
        d = spec_for(p.symbol, overrides).digits
        row = {"bot": p.bot, "account_id": p.account_id, "ticket": p.ticket, "symbol": p.symbol, "side": p.side,
               "volume": p.volume, "opened_at": p.opened_at, "price_open": rounding.price(p.price_open, d),
               "sl": rounding.price(p.sl, d), "tp": rounding.price(p.tp, d),
               "unrealized": rounding.money(p.unrealized), "digits": d}
        doc["open_positions"].append(row)
    return doc


def _last_run_doc(run: RunRow, now: float) -> dict:
    return {"id": run.id, "started_at": run.started_at, "as_of": run.as_of, "duration_s": run.duration_s,
            "status": run.status, "age_s": round(max(0.0, now - parse_instant(run.started_at)), 1)}


def _risk_at_stop(p: PositionRow, spec) -> float:
    """What the position loses if its stop is hit now (0 once the stop locks in a profit or is absent)."""
    if p.sl is None:
        return 0.0
    move = p.price_open - p.sl if p.side == Side.BUY else p.sl - p.price_open
    return max(0.0, move) * p.volume * spec.contract_size


def _engine_state(paused: bool, last: dict | None, interval_s: float) -> dict:
    """state: paused | never_run | stalled | failing | running, with the words a person reads."""
    from scalper.clock import human_age

    if paused:
        return {"state": "paused", "detail": "paused by rollback; `scalper resume` lifts it"}
    if last is None:
        return {"state": "never_run", "detail": "no run-once recorded in this ledger yet"}
    age = last["age_s"]
    if age > STALE_RUNS * interval_s:
        return {"state": "stalled", "detail": f"last run {human_age(age)} ago (expected every {interval_s:g} s): "
                                              "is `scalper loop` (or its scheduler) running?"}
    if last["status"] not in (RunStatus.OK, RunStatus.RUNNING):
        return {"state": "failing", "detail": f"last run ended {last['status']} {human_age(age)} ago"}
    return {"state": "running", "detail": f"last run {last['status']} {human_age(age)} ago"}
