"""What every command shares: the --config/--ledger/--json options, output, errors."""

from __future__ import annotations

import typer

from scalper.cli.output import (  # noqa: F401
    LONG_LIST,
    dumps,
    emit_json,
    err,
    json_pieces,
    out_console,
    stderr_console,
)

ConfigOpt = typer.Option(None, "--config", "-c", envvar="SCALPER_CONFIG", show_envvar=True,
                         help="The bots file.  [default: ./bots.yaml]", metavar="PATH")
LedgerOpt = typer.Option(None, "--ledger", envvar="SCALPER_LEDGER", show_envvar=True,
                         help="The ledger: an SQLite file, or a postgresql:// URL (overrides `ledger:` in the "
                              "bots file).", metavar="PATH|URL")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout (human text goes to stderr).")


def number(low: float, high: float):
    """A parser for a number option: finite (nan, inf and 1e309 are refused, which a plain
    `float` option with min/max lets through) and within [low, high]; usage error (exit 2)
    quoting the value as typed otherwise."""
    def parse(text) -> float:
        from scalper.cli.plain import read_number

        if isinstance(text, (int, float)):   # a default value
            return float(text)
        try:
            return read_number(text, low, high)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    parse.__name__ = "number"
    return parse

