"""The typer app: every command, its options and --help. scalper.cli.main dispatches to it (a
plain `run-once` line is read without it: scalper.cli.run_once)."""

from __future__ import annotations

import os

import typer

app = typer.Typer(
    name="scalper",
    help="M1 price-action scalping engine for MetaTrader 5.\n\n"
         "Bots live in bots.yaml; every 45 s `scalper run-once` fetches closed M1 bars, runs the four "
         "strategies, records each signal in the SQLite ledger, decides on risk and sends one order per "
         "broker account (the paper broker by default).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from scalper import __version__

        typer.echo(f"scalper {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    config: str | None = typer.Option(None, "--config", "-c", metavar="PATH",
                                         help="The bots file, for every command (also accepted after the command)."),
    ledger: str | None = typer.Option(None, "--ledger", metavar="PATH", help="The SQLite ledger, for every command."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    # Commands read these through their SCALPER_CONFIG / SCALPER_LEDGER fallbacks; an option
    # given after the command name still wins. (scalper.cli.run_once does the same without typer.)
    if config:
        os.environ["SCALPER_CONFIG"] = config
    if ledger:
        os.environ["SCALPER_LEDGER"] = ledger


# Imported last: it registers the commands on `app`, defined above (and imports `app` from here).
from scalper.cli import commands  # noqa: E402, F401
