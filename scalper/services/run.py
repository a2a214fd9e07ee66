"""`scalper run-once` as a service: load the config, run one pass, write metrics."""

from __future__ import annotations

import logging

from scalper.errors import BadInput, ScalperError

log = logging.getLogger("scalper.run")


def run_once(*, config: str | None, ledger: str | None, now: str | None = None, dry_run: bool = False,
             bots: list[str] | None = None, allow_backwards: bool = False, host: str | None = None):
    from scalper import wiring

    cfg, host = host_view(wiring.load(config), host)
    return run_loaded(cfg, host, ledger=ledger, now=now, dry_run=dry_run, bots=bots, allow_backwards=allow_backwards)


def run_loaded(cfg, host: str, *, ledger: str | None, now: str | None = None, dry_run: bool = False,
               bots: list[str] | None = None, allow_backwards: bool = False):
    """`run_once` with its config loaded already, as terminal host `host` sees it (`host_view`):
    a fleet pass loads the config once and hands it to the run and to the requests it serves."""
    from scalper import wiring

    # built first: it refuses a bad --now or ledger path before anything (the log file) is written
    engine = wiring.build_engine(cfg, ledger=ledger, now=now, dry_run=dry_run)
    engine.host = host
    if now and not dry_run and not allow_backwards:
        _refuse_going_back(engine.ledger_path, engine.clock.now(), now)
    if not dry_run:
        from scalper import logsetup

        logsetup.configure(cfg)
    try:
        summary = engine.run_once(bots)
    except Exception as exc:
        if not dry_run and not isinstance(exc, ScalperError):
            _alerts(cfg, engine.ledger_path, None)   # the pass recorded its failure: tell it now
        raise
    log.info("run %s: %d signal(s), decisions %s, orders %s, %.3fs, exit %d", summary.run_id, summary.signals,
             summary.decisions, summary.orders, summary.duration_s, summary.exit_code)
    for e in summary.errors:
        log.warning("run %s: %s", summary.run_id, e)
    if cfg.engine.metrics_file and not dry_run:
        _write_metrics(cfg, engine.ledger_path, summary)
    if not dry_run:
        summary.errors.extend(_alerts(cfg, engine.ledger_path, summary))
    return summary


def host_view(cfg, host: str | None):
    """The fleet's hook (scalper.fleet.hosts): the bots and accounts of terminal host `host`
    (default `local`), the whole config when every account is on it (a single machine) → (config, host)."""
    from scalper.fleet.hosts import LOCAL, check_host, for_host

    host = host or LOCAL
    check_host(cfg, host, fix="pass --host with one of: {hosts}")
    return for_host(cfg, host), host


def _refuse_going_back(ledger_path, instant: float, text: str) -> None:
    """A replay earlier than the ledger's last run would record trades out of order (P&L
    days, limits and reports read them by time): refused unless asked for explicitly."""

    from scalper.clock import iso, parse_instant
    from scalper.ledger import Ledger, ledger_exists

    if not ledger_exists(ledger_path):
        return
    try:
        with Ledger(ledger_path, readonly=True) as led:
            last_as_of = led.runs.latest_as_of()
    except ScalperError:   # not a ledger yet (empty file, older schema): the run itself says what is wrong
        return
    if last_as_of and instant < parse_instant(last_as_of):
        raise BadInput(f"--now {text} ({iso(instant)}) is earlier than this ledger's last run ({last_as_of}); "
                       "nothing done", where="--now",
                       fix="replay forward from there, use another --ledger for an earlier span, "
                           "or add --allow-backwards if you mean it")


def _alerts(cfg, ledger_path, summary) -> list[str]:
    """After the pass, never inside it: alerts from what the ledger recorded (see services/notify)."""
    if not cfg.notify:
        return []
    from scalper.services.notify import after_pass

    return after_pass(cfg, ledger_path, summary)


def _write_metrics(cfg, ledger_path, summary) -> None:
    from scalper.ledger import Ledger
    from scalper.report import metrics

    try:
        with Ledger(ledger_path, readonly=True) as led:
            metrics.write(led, cfg.resolve_path(cfg.engine.metrics_file), bots=[b.name for b in cfg.bots])
    except (OSError, ScalperError) as exc:  # metrics must never fail a trading run
        summary.errors.append(f"metrics file not written: {exc}")
