"""Operator requests that reach the hosts holding the positions.

`kill-switch engage` and `rollback --close-positions` close, from the operator's machine, the
positions on accounts of this machine (host `local`); for every other host holding some, they
record a request in the ledger (scalper.ledger.fleet) and put a task on that host's queue. The
host serves its pending requests when that task arrives and again after every pass, until none
of the positions is open; then it records its confirmation. The request lives in the ledger, not
in the broker: a host that is down, or a task lost with a broker, is served by the host's next pass.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from typing import Any

from scalper.config import Config
from scalper.errors import ScalperError
from scalper.fleet.hosts import LOCAL, account_hosts
from scalper.ledger import fleet as books

log = logging.getLogger("scalper.fleet")

LOCK_WAIT_S = 60.0


def split_by_host(cfg: Config, positions: list[Any]) -> tuple[list[Any], dict[str, list[Any]]]:
    """(positions this machine closes itself, {other host: its positions})."""
    hosts = account_hosts(cfg)
    here: list[Any] = []
    elsewhere: dict[str, list[Any]] = defaultdict(list)
    for p in positions:
        host = hosts.get(p.account_id, LOCAL)
        (here if host == LOCAL else elsewhere[host]).append(p)
    return here, dict(elsewhere)


def ask_hosts(ledger: Any, c: Any, kind: str, elsewhere: dict[str, list[Any]], now: float,
              *, bots: list[str] | None = None) -> list[str]:
    """Inside the operator's transaction: one request per host, unless the host has one pending
    already that covers the same bots (an engage repeated before the host answered). → the hosts asked."""
    request_id = f"{kind}-{uuid.uuid4().hex[:8]}"
    wanted = sorted(bots or {p.bot for ps in elsewhere.values() for p in ps if p.bot})
    for host, positions in sorted(elsewhere.items()):
        if kind == "kill_switch" and any(r["kind"] == kind and set(wanted) <= set(r["bots"])
                                         for r in books.requests(ledger, host=host)):
            continue   # that request closes these positions too (it closes every open one of its bots)
        books.add_request(ledger, c, request_id, host, {
            "kind": kind, "bots": sorted(bots or {p.bot for p in positions if p.bot}),
            "positions": sorted(p.id for p in positions), "closed": 0, "left_open": len(positions)}, now)
    return sorted(elsewhere)


def pending_hosts(ledger: Any) -> list[dict[str, Any]]:
    """Every request a host has not confirmed yet (for status, kill-switch and rollback output)."""
    return [{"host": r["host"], "request": r["request"], "kind": r["kind"], "bots": r["bots"],
             "requested_at": r["requested_at"], "left_open": r.get("left_open")} for r in books.requests(ledger)]


def nudge(cfg: Config, hosts: list[str]) -> list[str]:
    """Put a `serve requests` task on each host's queue. → problems (the request stays in the
    ledger either way: the host's next pass serves it)."""
    if not hosts:
        return []
    try:
        from scalper.fleet.app import send_serve_requests

        send_serve_requests(cfg, hosts)
    except Exception as exc:
        return [(f"could not reach the Celery broker ({type(exc).__name__}: {exc}); hosts "
                f"{', '.join(hosts)} close their positions on their next pass")]
    return []


def serve(cfg: Config, ledger_ref: Any, host: str, *, lock_wait_s: float = LOCK_WAIT_S) -> list[dict[str, Any]]:
    """On host `host`: close what its pending requests name and is still open on its accounts,
    and confirm each request none of whose positions is left open. `cfg` is the host's view
    (fleet.hosts.for_host). → the requests served, with what was done."""
    from scalper.core.exposure import day_start
    from scalper.engine import close_brokers
    from scalper.engine.upkeep import close_positions_by_bot
    from scalper.ledger import Ledger, run_lock
    from scalper.ledger.passes import rebuild_daily_pnl
    from scalper.orders import OrderDesk
    from scalper.services.control import books_clock, connect_brokers
    from scalper.vocab import CloseCause

    with Ledger(ledger_ref, readonly=True) as led:
        if not books.requests(led, host=host):
            return []   # the common case, every pass: one read, no lock
    mine = {a.id for a in cfg.accounts}
    done: list[dict[str, Any]] = []
    try:
        with run_lock(ledger_ref, holder="fleet request", host=host, wait_s=lock_wait_s), \
                Ledger(ledger_ref) as ledger:
            clock, _ = books_clock(ledger)
            now = clock.now()
            desk = OrderDesk(ledger, clock, run_id=f"fleet-{host}-{uuid.uuid4().hex[:6]}")
            closed_any = False
            for req in books.requests(ledger, host=host):
                ids = set(req["positions"])
                if req["kind"] == "kill_switch":
                    # a switch released since asks nothing more; an engaged one: everything of the bot
                    bots = [b for b in req["bots"] if ledger.kill_switches.get(b) is not None]
                    todo = [p for p in ledger.positions.open(sorted(mine)) if p.bot in bots]
                else:
                    todo = [p for p in ledger.positions.open(sorted(mine)) if p.id in ids]
                closed = 0
                errors: list[str] = []
                if todo:
                    brokers, errors = connect_brokers(cfg, {p.account_id for p in todo}, clock)
                    try:
                        closed, problems = close_positions_by_bot(
                            ledger, desk, brokers, cfg, todo,
                            reason=CloseCause.ROLLBACK if req["kind"] == "rollback" else CloseCause.KILL_SWITCH)
                        errors += problems
                    finally:
                        close_brokers(brokers)
                    closed_any = closed_any or closed > 0
                open_ids = {p.id for p in ledger.positions.open(sorted(mine))}
                left = len({p.id for p in todo} & open_ids)
                with ledger.tx() as c:
                    books.update_request(ledger, c, req, now, confirmed=left == 0,
                                         closed=req.get("closed", 0) + closed, left_open=left, errors=errors)
                    ledger.audit(c, now, "fleet_request", f"host {host}: {req['kind']} request {req['request']}: "
                                 f"{closed} position(s) closed, {left} left open"
                                 + ("; confirmed" if left == 0 else ""), run_id=desk.run_id)
                done.append({"request": req["request"], "kind": req["kind"], "closed": closed, "left_open": left,
                             "errors": errors, "confirmed": left == 0})
            if closed_any:
                rebuild_daily_pnl(ledger, day_start(now))
    except ScalperError as exc:
        log.warning("host %s: serving operator requests failed: %s", host, exc)
        raise
    return done
