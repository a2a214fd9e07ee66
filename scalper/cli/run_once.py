"""`scalper run-once`'s body, run by the typer command and, for a plain line, without typer.

Cron (or a timer) starts run-once every 45 s, and importing typer, its click and rich costs
~30 ms of a start-up that should stay under a quarter second. A plain run-once command line
(its options spelt `--opt VALUE`, `--opt=VALUE` or `-b/-c VALUE`) is read by
scalper.cli.plain (RUN_ONCE); any other line — another command, --help, --version, an unknown
or repeated option, a value that looks like an option — goes to the typer app, which reads,
explains or refuses it exactly as before. The typer command (scalper.cli.commands.run_once)
calls `run` below: one body.
"""

from __future__ import annotations

from typing import Any


def parse(args: list[str]) -> dict[str, Any] | None:
    """The keyword arguments of `run` for a plain run-once line, or None (see plain.RUN_ONCE)."""
    from scalper.cli.plain import RUN_ONCE

    return RUN_ONCE.parse(args)


def run(*, bot: list[str] | None, now: str | None, dry_run: bool, allow_backwards: bool,
        config: str | None, ledger: str | None, as_json: bool, host: str | None = None) -> int:
    """One engine pass, its summary printed (JSON or text) → the exit code."""
    from scalper.cli.output import emit_json, out_console
    from scalper.services.run import run_once as service

    summary = service(config=config, ledger=ledger, now=now, dry_run=dry_run, bots=bot or None,
                      allow_backwards=allow_backwards, host=host)
    if as_json:
        emit_json(summary.to_dict())
    else:
        from scalper.cli import render

        render.run_summary(out_console(False), summary)
    return summary.exit_code
