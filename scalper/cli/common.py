"""What every command shares: the --config/--ledger/--json options, output, errors."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False)

ConfigOpt = typer.Option(None, "--config", "-c", envvar="SCALPER_CONFIG", show_envvar=True,
                         help="The bots file.  [default: ./bots.yaml]", metavar="PATH")
LedgerOpt = typer.Option(None, "--ledger", envvar="SCALPER_LEDGER", show_envvar=True,
                         help="The SQLite ledger (overrides `ledger:` in the bots file).", metavar="PATH")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout (human text goes to stderr).")


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def out_console(as_json: bool) -> Console:
    """Human output goes to stdout normally, to stderr when stdout carries JSON."""
    return err if as_json else Console(highlight=False)


def not_yet(command: str) -> None:
    err.print(f"[yellow]scalper {command}[/] is not yet available in this version.")
    raise typer.Exit(1)


Opt = Optional
