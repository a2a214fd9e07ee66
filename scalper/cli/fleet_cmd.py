"""`scalper worker` and `scalper beat`: passes per terminal host through Celery (README, "From one
machine to a fleet")."""

from __future__ import annotations

import os

import typer

from scalper.cli import app
from scalper.cli.common import ConfigOpt, LedgerOpt
from scalper.fleet.hosts import LOCAL

_FLEET_FIX = "install the fleet extra: in the scalper checkout, pip install '.[fleet]'"


def _load(config: str | None, ledger: str | None):
    from scalper import wiring
    from scalper.errors import BadInput

    # the worker's tasks read these (in the pool's child process too)
    if config:
        os.environ["SCALPER_CONFIG"] = config
    if ledger:
        os.environ["SCALPER_LEDGER"] = ledger
    cfg = wiring.load(config)
    wiring.ledger_path(cfg, ledger)   # a wrong ledger is refused before anything starts
    try:
        from scalper.fleet import app as fleet
    except ImportError as exc:
        raise BadInput(f"the fleet needs Celery ({exc})", where="worker", fix=_FLEET_FIX) from None
    return cfg, fleet


@app.command("worker")
def worker(
    host: str = typer.Option(LOCAL, "--host", metavar="NAME",
                             help="The terminal host this worker serves: its passes and operator requests."),
    pool: str | None = typer.Option(None, "--pool", metavar="prefork|solo",
                                       help="Celery pool.  [default: prefork with one child; solo on Windows]"),
    loglevel: str = typer.Option("INFO", "--loglevel", metavar="LEVEL", help="Celery's log level."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt,
) -> int:
    """Run the Celery worker of one terminal host (in the foreground; stop it with Ctrl-C or SIGTERM).

    It consumes only the host's queue, one task at a time: the passes `scalper beat` schedules (the
    bots that have an account on the host, orders to the host's accounts only) and the operator's
    kill-switch and rollback requests. The broker is `fleet.broker_url` or SCALPER_BROKER_URL.
    """
    from scalper.errors import BadInput

    if pool not in (None, "prefork", "solo"):
        raise BadInput(f"unknown pool {pool!r}", where="--pool", fix="use prefork or solo")
    cfg, fleet = _load(config, ledger)
    fleet.start_worker(cfg, host, pool=pool, loglevel=loglevel)
    return 0


@app.command("beat")
def beat(
    loglevel: str = typer.Option("INFO", "--loglevel", metavar="LEVEL", help="Celery's log level."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt,
) -> int:
    """Schedule one pass per terminal host every `engine.interval_s` (Celery beat, in the foreground).

    Passes are sent on the UTC grid of the interval, each with an expiry of half an interval: a pass
    that cannot start in time is dropped, never run late. A second beat started by mistake sends
    duplicates that the workers drop (one pass per host and slot, claimed in the ledger).
    """
    cfg, fleet = _load(config, ledger)
    fleet.start_beat(cfg, loglevel=loglevel)
    return 0
