"""The `scalper` command line (Typer). Commands parse, call one service, render."""

from __future__ import annotations

import os
import sys

import click
import typer

from rich.markup import escape

from scalper.cli.common import emit_json, err
from scalper.errors import ScalperError

app = typer.Typer(
    name="scalper",
    help="M1 price-action scalping engine for MetaTrader 5.\n\n"
         "Bots live in bots.yaml; every 45 s `scalper run-once` fetches closed M1 bars, runs the four "
         "strategies, records each signal in the SQLite ledger, decides on risk and sends one order per "
         "broker account (the paper broker by default).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

from scalper.cli import commands  # noqa: E402,F401  (registers the commands)


def main(argv: list[str] | None = None) -> None:
    # pydantic otherwise scans every installed package's entry points for plugins on the
    # first model build (~20-40 ms): run-once pays start-up cost every 45 s.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = sys.argv[1:] if argv is None else argv
    wants_json = "--json" in args
    try:
        rv = app(args=args, prog_name="scalper", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(2)
    except ScalperError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        if wants_json:
            emit_json({"ok": False, "error": str(exc), "exit_code": exc.exit_code})
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
