"""The `scalper` command line (Typer). Commands parse, call one service, render."""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional

import typer

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
    config: Optional[str] = typer.Option(None, "--config", "-c", metavar="PATH",
                                         help="The bots file, for every command (also accepted after the command)."),
    ledger: Optional[str] = typer.Option(None, "--ledger", metavar="PATH", help="The SQLite ledger, for every command."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    # Commands read these through their SCALPER_CONFIG / SCALPER_LEDGER fallbacks; an option
    # given after the command name still wins.
    if config:
        os.environ["SCALPER_CONFIG"] = config
    if ledger:
        os.environ["SCALPER_LEDGER"] = ledger


from scalper.cli import commands  # noqa: E402,F401  (registers the commands)


def main(argv: list[str] | None = None) -> None:
    # pydantic otherwise scans every installed package's entry points for plugins on the
    # first model build (~20-40 ms): run-once pays start-up cost every 45 s.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = sys.argv[1:] if argv is None else argv
    wants_json = "--json" in args
    try:
        rv = app(args=args, prog_name="scalper", standalone_mode=False)
    except ScalperError as exc:
        _fail(str(exc), exc.exit_code, wants_json)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            # a usage error from typer's click (typer vendors click in recent versions, so
            # the class depends on the typer version): click prints it, the contract says exit 2
            exc.show()
            sys.exit(2)
        # a bug or an unforeseen OS error: one line here, the traceback in the log
        logging.getLogger("scalper").exception("unexpected failure")
        _fail(f"unexpected {type(exc).__name__}: {exc} (details in the log file; please report it)", 1, wants_json)
    sys.exit(rv if isinstance(rv, int) else 0)


def _fail(message: str, code: int, wants_json: bool) -> None:
    from rich.markup import escape

    from scalper.logsetup import redact

    message = redact(message)
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if wants_json:
        emit_json({"ok": False, "error": message, "exit_code": code})
    sys.exit(code)

