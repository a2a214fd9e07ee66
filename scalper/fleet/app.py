"""The Celery side of the fleet: the app, its tasks, the beat schedule, and how a worker and a
beat are started. Imported only by `scalper worker`, `scalper beat` and the operator commands
that put a task on a host's queue.

- Each host has its own queue (`<fleet.queue_prefix>.<host>`); `scalper worker --host H` consumes
  only that one, one task at a time (prefork with one child; the solo pool on Windows).
- `scalper beat` sends one `scalper.pass` per host on the epoch grid of `engine.interval_s`, with
  the slot number and an expiry of half an interval: a pass that cannot start by then is dropped
  by the worker (Celery's `expires`), never run late.
- The worker claims (host, slot) in the ledger before the pass (scalper.ledger.fleet.claim_slot):
  two beats started by mistake send two tasks, one pass runs.
- Passes are acknowledged early: a pass lost with a worker is not redelivered late; the next
  slot's pass reconciles whatever it left. Operator requests are acknowledged late and kept in
  the ledger, so a lost one is served by the host's next pass anyway.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from celery.beat import Scheduler
from celery.schedules import schedstate, schedule

from scalper.config import Config
from scalper.errors import BadInput, LockHeld
from scalper.fleet.hosts import check_host, hosts_of, queue_name, slot_of, slot_start

log = logging.getLogger("scalper.fleet")

BROKER_ENV = "SCALPER_BROKER_URL"
PASS_TASK = "scalper.pass"
SERVE_TASK = "scalper.serve_requests"
EXPIRY_FRACTION = 0.5   # of the interval: a pass not started by then is dropped


def broker_url(cfg: Config) -> str:
    url = os.environ.get(BROKER_ENV) or cfg.fleet.broker_url
    if not url:
        raise BadInput("no Celery broker is configured", where="fleet.broker_url",
                       fix="set `fleet: {broker_url: redis://HOST:6379/0}` (or amqp://HOST:5672//) in bots.yaml, "
                           f"or export {BROKER_ENV} (which may carry credentials)")
    return url


def expiry_s(cfg: Config) -> float:
    return cfg.engine.interval_s * EXPIRY_FRACTION


def make_app(cfg: Config) -> Celery:
    url = broker_url(cfg)
    app = Celery("scalper", broker=url, set_as_current=False)
    transport: dict[str, Any] = {}
    if url.startswith(("redis://", "rediss://")):
        # every key kombu keeps (queues, the unacked set) under the fleet's prefix: fleets share a server
        transport["global_keyprefix"] = f"{cfg.fleet.queue_prefix}:"
        transport["visibility_timeout"] = 3600
    app.conf.update(
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_enable_remote_control=False,   # no broadcast exchanges shared with other fleets
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,    # a broker that went away: keep trying, passes resume with it
        broker_transport_options=transport,
        task_default_queue=f"{cfg.fleet.queue_prefix}.default",
        enable_utc=True,
        timezone="UTC",
    )
    app.task(name=PASS_TASK, bind=True, acks_late=False)(_pass_task)
    app.task(name=SERVE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_serve_task)
    return app


# --- tasks (run in the worker; the config and ledger come from its environment) -----------------
def _options() -> tuple[str | None, str | None]:
    return os.environ.get("SCALPER_CONFIG"), os.environ.get("SCALPER_LEDGER")


def _pass_task(task: Any, host: str, slot: int | None = None, now: str | None = None) -> dict[str, Any]:
    config, ledger = _options()
    return run_pass(host, slot=slot, now=now, config=config, ledger=ledger)


def _serve_task(task: Any, host: str) -> list[dict[str, Any]]:
    from scalper import wiring
    from scalper.fleet.requests import serve
    from scalper.services.run import host_view

    config, ledger = _options()
    cfg = wiring.load(config)
    view, host = host_view(cfg, host)
    return serve(view, wiring.ledger_path(cfg, ledger), host)


def run_pass(host: str, *, slot: int | None, now: str | None = None, config: str | None = None,
             ledger: str | None = None) -> dict[str, Any]:
    """One pass of `host` for interval slot `slot` (the current one when None): claimed once in
    the ledger, started before the slot's expiry or dropped, then the host's operator requests."""
    from scalper import wiring
    from scalper.fleet.requests import serve
    from scalper.ledger import Ledger
    from scalper.ledger import fleet as books
    from scalper.ledger.lock import run_lock
    from scalper.services.run import host_view, run_loaded

    received = time.time()
    cfg = wiring.load(config)
    interval = cfg.engine.interval_s
    slot = slot_of(received, interval) if slot is None else slot
    scheduled = slot_start(slot, interval)
    deadline = scheduled + expiry_s(cfg)
    path = wiring.ledger_path(cfg, ledger)
    if now is not None:   # a replay (tests, drills): its slot is a label, its deadline from now
        scheduled, deadline = received, received + expiry_s(cfg)
    doc: dict[str, Any] = {"host": host, "slot": slot, "scheduled": scheduled}
    if received > deadline:
        doc["dropped"] = f"received {received - scheduled:.1f} s after its slot began (expiry {expiry_s(cfg):g} s)"
        log.warning("host %s: pass for slot %s %s", host, slot, doc["dropped"])
        return doc
    # the config as this host runs it, loaded once for the pass (its run and the requests it serves),
    # before the claim: a host the config does not know claims nothing
    view, host = host_view(cfg, host)
    with Ledger(path) as led:
        if not books.claim_slot(led, host, slot, time.time(), detail={"scheduled": scheduled, "pid": os.getpid(),
                                                                       "lateness_s": round(received - scheduled, 3)}):
            doc["dropped"] = "duplicate: this slot already had its pass"
            return doc
    try:   # the slot is claimed: whatever goes wrong now, its end is recorded with it
        while True:   # the host's lock: another pass of the host (or, on SQLite, of any host) may hold it
            started = time.time()
            try:
                summary = run_loaded(view, host, ledger=ledger, now=now)
                break
            except LockHeld:
                # Wait on the lock itself (its own polling), not by setting the whole pass up again
                # (config, feed reads, brokers) every few ms; once it is free, the pass takes it anew.
                try:
                    with run_lock(path, holder="fleet pass (waiting)", host=host,
                                  wait_s=max(0.0, deadline - time.time())):
                        pass
                except LockHeld:
                    doc["dropped"] = "the host's lock stayed taken until the slot expired"
                    log.warning("host %s: pass for slot %s dropped: %s", host, slot, doc["dropped"])
                    _end(path, host, slot, {"dropped": doc["dropped"]})
                    return doc
    except Exception as exc:   # the books would show a pass that never ended; the task fails as it did
        _record_failed_end(path, host, slot, exc)
        raise
    doc.update(run_id=summary.run_id, exit_code=summary.exit_code, started=started, ended=time.time(),
               duration_s=summary.duration_s, lateness_s=round(started - scheduled, 3),
               orders_created=summary.orders_created)
    try:
        doc["requests"] = serve(view, path, host)
    except Exception as exc:
        doc["requests_error"] = f"{type(exc).__name__}: {exc}"
    _end(path, host, slot, {k: doc[k] for k in ("run_id", "exit_code", "started", "ended", "duration_s", "lateness_s")})
    return doc


def _end(path, host: str, slot: int, detail: dict[str, Any]) -> None:
    """Record the end of `host`'s pass for `slot` (what it did, or why it did nothing)."""
    from scalper.ledger import Ledger
    from scalper.ledger import fleet as books

    with Ledger(path) as led:
        books.record_pass_end(led, host, slot, time.time(), detail)


def _record_failed_end(path, host: str, slot: int, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"
    log.error("host %s: pass for slot %s failed: %s", host, slot, error)
    try:
        _end(path, host, slot, {"error": error})
    except Exception as also:   # the ledger itself may be what failed: the pass's own error is raised
        log.error("host %s: the end of the pass for slot %s could not be recorded: %s", host, slot, also)


# --- sending ------------------------------------------------------------------------------------
def send_serve_requests(cfg: Config, hosts: list[str]) -> None:
    app = make_app(cfg)
    try:
        for host in hosts:
            app.send_task(SERVE_TASK, args=(host,), queue=queue_name(cfg, host))
    finally:
        app.close()


def send_pass(cfg: Config, host: str, *, slot: int | None = None, now: str | None = None,
              app: Celery | None = None) -> None:
    """A pass of `host` sent by hand (tests, drills): the same task the beat sends."""
    own = app is None
    app = app or make_app(cfg)
    try:
        app.send_task(PASS_TASK, args=(host,), kwargs={"slot": slot, "now": now}, queue=queue_name(cfg, host),
                      expires=expiry_s(cfg) if now is None else None)
    finally:
        if own:
            app.close()


# --- beat ---------------------------------------------------------------------------------------
class GridSchedule(schedule):
    """Due at every multiple of the interval on the UTC epoch grid (xx:00, xx:45, …), so every
    beat — a second one started by mistake included — fires at the same instants."""

    run_every: timedelta   # set by schedule.__init__ (celery-types' stub leaves the attribute out)

    def is_due(self, last_run_at: datetime) -> schedstate:
        interval = self.run_every.total_seconds()
        now = time.time()
        last = self.maybe_make_aware(last_run_at).timestamp()
        wait = interval - (now % interval)
        return schedstate(math.floor(now / interval) > math.floor(last / interval), wait)


class FleetScheduler(Scheduler):
    """Celery's in-memory scheduler, stamping each pass with its slot when it is sent (a restart
    waits for the next grid instant instead of catching up late)."""

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        interval = entry.schedule.run_every.total_seconds()
        entry.kwargs = {**(entry.kwargs or {}), "slot": slot_of(time.time(), interval)}
        return super().apply_async(entry, producer=producer, advance=advance, **kwargs)


def beat_schedule(cfg: Config, app: Celery) -> dict[str, dict[str, Any]]:
    interval = cfg.engine.interval_s
    return {f"pass-{host}": {"task": PASS_TASK, "schedule": GridSchedule(interval, app=app), "args": (host,),
                             "options": {"queue": queue_name(cfg, host), "expires": expiry_s(cfg)}}
            for host in hosts_of(cfg)}


def start_beat(cfg: Config, *, loglevel: str = "INFO") -> None:
    app = make_app(cfg)
    app.conf.beat_schedule = beat_schedule(cfg, app)
    app.conf.beat_max_loop_interval = min(5.0, cfg.engine.interval_s / 4)
    # Celery resolves `scheduler` with symbol_by_name, which takes a class as well as a dotted name;
    # celery-types' stub says str only.
    app.Beat(scheduler=FleetScheduler, loglevel=loglevel, quiet=True).run()  # type: ignore[arg-type]


def start_worker(cfg: Config, host: str, *, pool: str | None = None, loglevel: str = "INFO") -> None:
    check_host(cfg, host, fix="use one of: {hosts}, or set `host: " + host + "` on its accounts")
    app = make_app(cfg)
    pool = pool or ("solo" if sys.platform == "win32" else "prefork")
    app.worker_main(["worker", "--queues", queue_name(cfg, host), "--concurrency", "1", "--pool", pool,
                     "--hostname", f"scalper-{host}@%h", "--loglevel", loglevel, "--without-gossip",
                     "--without-mingle", "--without-heartbeat", "--prefetch-multiplier", "1"])
