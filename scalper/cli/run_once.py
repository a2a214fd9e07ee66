"""`scalper run-once` without the command-line framework.

Cron (or a timer) starts run-once every 45 s, and importing typer, its click and rich costs
~30 ms of a start-up that should stay under a quarter second. A plain run-once command line
(the options below, spelt `--opt VALUE`, `--opt=VALUE` or `-b/-c VALUE`) is read here; any
other line — another command, --help, --version, an unknown or repeated option, a value that
looks like an option — goes to the typer app, which reads, explains or refuses it exactly as
before. The typer command (scalper.cli.commands.run_once) calls `run` below: one body.
"""

from __future__ import annotations

import os
from typing import Any

# option spelling -> parameter of `run`; typer's declarations in commands.py are the reference
_VALUES = {"--bot": "bot", "-b": "bot", "--now": "now", "--config": "config", "-c": "config",
           "--ledger": "ledger", "--host": "host"}
_FLAGS = {"--dry-run": "dry_run", "--allow-backwards": "allow_backwards", "--json": "as_json"}
_GLOBAL_VALUES = {"--config": "config", "-c": "config", "--ledger": "ledger"}   # before the command
_ENV = {"config": "SCALPER_CONFIG", "ledger": "SCALPER_LEDGER"}   # the options' envvar fallbacks
COMMAND = "run-once"


def parse(args: list[str]) -> dict[str, Any] | None:
    """The keyword arguments of `run` for a plain run-once command line, or None when typer
    must read the line. Global --config/--ledger are put in the environment, as the typer
    app's callback does (only when the line is one this parser takes)."""
    i, given = _options(args, 0, _GLOBAL_VALUES, stop=COMMAND)
    if given is None or i >= len(args) or args[i] != COMMAND:
        return None
    end, options = _options(args, i + 1, _VALUES, flags=_FLAGS)
    if options is None or end != len(args):
        return None
    for name, value in given.items():   # the app callback: `if config: os.environ[...] = config`
        if value:
            os.environ[_ENV[name]] = value
    kwargs: dict[str, Any] = {"bot": options.get("bot") or None, "now": options.get("now"),
                              "dry_run": "dry_run" in options, "allow_backwards": "allow_backwards" in options,
                              "as_json": "as_json" in options, "host": options.get("host")}
    for name, env in _ENV.items():   # click: the option as given, else a non-empty envvar, else None
        kwargs[name] = options[name] if name in options else (os.environ.get(env) or None)
    return kwargs


def _options(args: list[str], i: int, values: dict[str, str], flags: dict[str, str] | None = None,
             stop: str | None = None, repeatable: tuple[str, ...] = ("bot",)) -> tuple[int, dict[str, Any] | None]:
    """Read options from args[i] on, up to `stop` or the end → (index reached, {parameter: value}),
    or (i, None) at anything this reader does not take. `repeatable` parameters gather lists."""
    found: dict[str, Any] = {}
    while i < len(args) and args[i] != stop:
        token = args[i]
        if flags and token in flags:
            found[flags[token]] = True
            i += 1
            continue
        if token.startswith("--") and "=" in token:
            spelling, value = token.split("=", 1)
            step = 1
        elif i + 1 < len(args) and not args[i + 1].startswith("-"):
            spelling, value = token, args[i + 1]
            step = 2
        else:
            return i, None
        name = values.get(spelling)
        if name is None:
            return i, None
        if name in repeatable:
            found.setdefault(name, []).append(value)
        elif name in found:
            return i, None
        else:
            found[name] = value
        i += step
    return i, found


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
