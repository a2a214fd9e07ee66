"""Operator commands: status, kill-switch, rollback, resume, check, loop, metrics."""

from __future__ import annotations

import typer

from scalper.cli import render_ops as render
from scalper.cli.common import ConfigOpt, JsonOpt, LedgerOpt, emit_json, err, number, out_console
from scalper.cli.typer_app import app


@app.command("status")
def status(config: str | None = ConfigOpt, ledger: str | None = LedgerOpt, as_json: bool = JsonOpt) -> int:
    """Bots, the last run (time, duration, outcome), pause and kill-switch states, open positions."""
    from scalper import wiring
    from scalper.services.control import status as service

    cfg = wiring.load(config)
    doc = service(cfg, wiring.ledger_path(cfg, ledger))
    emit_json(doc) if as_json else render.status(out_console(False), doc)
    return 0


@app.command("kill-switch")
def kill_switch(
    action: str = typer.Argument(..., help="engage | release | status", metavar="engage|release|status"),
    bot: str | None = typer.Option(None, "--bot", metavar="NAME", help="The bot to act on."),
    all_bots: bool = typer.Option(False, "--all", help="Act on every bot."),
    no_close: bool = typer.Option(False, "--no-close", help="engage: halt new entries but leave positions open."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt, as_json: bool = JsonOpt,
) -> int:
    """Halt a bot, let it trade again, or show every bot's kill-switch state.

    engage: no new entries, and the bot's open positions are closed (unless --no-close).
    release: the bot trades again. status: every bot's state and why it was engaged
    (by hand, unrealized loss limit, daily loss limit).
    """
    from scalper import wiring
    from scalper.errors import BadInput, quote
    from scalper.services.control import kill_switch as service

    if action not in ("engage", "release", "status"):
        raise BadInput(f"unknown action {quote(action)}", where="kill-switch", fix="use engage, release or status")
    if bot and all_bots:
        raise BadInput("--bot and --all exclude each other", where="--all", fix="pass one of them")
    cfg = wiring.load(config)
    doc = service(cfg, wiring.ledger_path(cfg, ledger), action, bot=bot, all_bots=all_bots, close=not no_close)
    emit_json(doc) if as_json else render.kill_switch(out_console(False), doc)
    return 3 if doc.get("errors") else 0


@app.command("rollback")
def rollback(
    since: str = typer.Option("30m", "--since", metavar="SPAN", help="How far back: 30m, 2h, 1d or an ISO time."),
    close_positions: bool = typer.Option(False, "--close-positions", help="Also close positions opened since then."),
    yes: bool = typer.Option(False, "--yes", "-y",
            help="Close positions without asking (needed when not at a terminal)."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt, as_json: bool = JsonOpt,
) -> int:
    """Pause the engine and undo what can be undone since a point in time.

    Every later run-once does nothing and says so; orders created since then that were not
    sent are canceled; with --close-positions, positions opened since then are closed (asked
    first, unless --yes). Shows what the engine did in that span. `scalper resume` lifts the pause.
    """
    import sys

    from scalper import wiring
    from scalper.errors import BadInput
    from scalper.services.control import rollback as service

    cfg = wiring.load(config)
    if close_positions and not yes:
        if not sys.stdin.isatty():
            raise BadInput("closing positions needs a confirmation", where="--close-positions",
                           fix="add --yes when running from a script")
        if not typer.confirm(f"Pause the engine and CLOSE every position opened in the last {since}?",
                             err=True):
            err.print("nothing done")
            return 0
    doc = service(cfg, wiring.ledger_path(cfg, ledger), since=since, close_positions=close_positions)
    emit_json(doc) if as_json else render.rollback(out_console(False), doc)
    return 3 if doc["errors"] else 0


@app.command("resume")
def resume(config: str | None = ConfigOpt, ledger: str | None = LedgerOpt, as_json: bool = JsonOpt) -> int:
    """Lift the pause that `scalper rollback` set."""
    from scalper import wiring
    from scalper.services.control import resume as service

    cfg = wiring.load(config)
    doc = service(wiring.ledger_path(cfg, ledger))
    if as_json:
        emit_json(doc)
    else:
        out_console(False).print("engine resumed" if doc["was_paused"] else "engine was not paused; nothing to do")
    return 0


@app.command("check")
def check(
    max_age: str | None = typer.Option(None, "--max-age", metavar="AGE",
                                          help="Stall watch: fail when the last successful pass is older than "
                                               "this (3m, 90s, 1h); brokers and feeds are not contacted."),
    notify: bool = typer.Option(False, "--notify", help="With --max-age: send a `stale` alert once per stall, "
                                                        "and a recovery message when passes succeed again."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt, as_json: bool = JsonOpt,
) -> int:
    """Validate the config and ledger, reach the brokers and the feed; say what is wrong.

    Exit 0 when all is well; 2 bad config; 3 broker or feed unreachable; 1 anything else (a stall
    too). From cron, every minute: `scalper check --max-age 3m --notify`.
    """
    from scalper.services.health import check as service

    doc = service(config, ledger, max_age=max_age, notify=notify)
    emit_json(doc) if as_json else render.check(out_console(False), doc)
    return doc["exit_code"]


@app.command("loop")
def loop(
    interval: float = typer.Option(45.0, "--interval", parser=number(1.0, 86_400.0), metavar="SECONDS",
                                   help="Seconds between run starts, 1 to 86400.  [default: 45]"),
    max_runs: int | None = typer.Option(None, "--max-runs", metavar="N", min=1, help="Stop after this many runs."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt,
) -> int:
    """Run run-once on a fixed cadence in the foreground.

    Drift-free (starts stay on the interval grid), never overlapping, and a clean stop
    on Ctrl-C or SIGTERM (the current run finishes; exit 0). bots.yaml is re-read every run.
    With --max-runs, the exit code is the last run's.
    """
    from scalper.services.loop import run_loop

    return run_loop(config=config, ledger=ledger, interval=interval, max_runs=max_runs)


@app.command("metrics")
def metrics(
    out: str | None = typer.Option(None, "--out", metavar="FILE.prom",
                                      help="Write here (atomically) instead of stdout."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt,
) -> int:
    """Write Prometheus text-format metrics derived from the ledger.

    Signals, decisions, orders, positions, P&L, kill-switches, pause, last run. Also
    written after each run-once when `engine.metrics_file` is set in bots.yaml.
    """
    from pathlib import Path

    from scalper import wiring
    from scalper.errors import BadInput
    from scalper.ledger import Ledger
    from scalper.report import metrics as m

    cfg = wiring.load(config)
    path = wiring.ledger_path(cfg, ledger)
    if not path.exists():
        raise BadInput(f"no ledger at {path} yet", where="--ledger", fix="run `scalper run-once` first")
    if out:
        from scalper.outputs import check_output

        check_output(out, "--out")
    with Ledger(path, readonly=True) as led:
        if out:
            m.write(led, Path(out), bots=[b.name for b in cfg.bots])
            err.print(f"wrote {out}")
        else:
            typer.echo(m.render(led, bots=[b.name for b in cfg.bots]), nl=False)
    return 0
