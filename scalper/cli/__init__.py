"""The `scalper` command line (Typer). Commands parse, call one service, render."""

from __future__ import annotations

import logging
import os
import sys

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
    config: str | None = typer.Option(None, "--config", "-c", metavar="PATH",
                                         help="The bots file, for every command (also accepted after the command)."),
    ledger: str | None = typer.Option(None, "--ledger", metavar="PATH", help="The SQLite ledger, for every command."),
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
    except SystemExit as exc:
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            # typer's click turned a broken pipe into exit 1 (it wraps stdout to say so): the
            # reader left after the work was done (`run-once --json | true`), which is no failure
            _stdout_to_devnull()
            sys.exit(0)
        raise
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except BrokenPipeError:
        # the reader left (`scalper report | head -1`): the work is done; say nothing more
        _stdout_to_devnull()
        sys.exit(0)
    except Exception as exc:
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            # a usage error from typer's click (typer vendors click in recent versions, so
            # the class depends on the typer version): click prints it, the contract says exit 2
            exc.show()
            sys.exit(2)
        # a bug or an unforeseen OS error: one line here, the traceback in the log
        where = _log_unexpected(args)
        _fail(f"unexpected {type(exc).__name__}: {exc} "
              f"({'traceback in ' + str(where) if where else 'no log file could be written'}; please report it)",
              1, wants_json)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
    sys.exit(rv if isinstance(rv, int) else 0)


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _log_unexpected(args: list[str]):
    """Write the current exception's traceback to the log file: the config's when it
    loads (a command may have failed before configuring it), else the user's cache
    folder. → the file's path, or None."""
    from scalper import logsetup

    log = logging.getLogger("scalper")
    where = None
    try:
        from scalper import wiring

        where = logsetup.configure(wiring.load(_config_option(args)))
    except Exception:
        pass
    if where is None:
        logsetup.attach(logsetup.fallback_path())
    where = logsetup.current_path()
    log.exception("unexpected failure: scalper %s", " ".join(args))
    return where


def _config_option(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a in ("--config", "-c") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return None


def _fail(message: str, code: int, wants_json: bool) -> None:
    from rich.markup import escape

    from scalper.logsetup import redact

    message = redact(message)
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if wants_json:
        emit_json({"ok": False, "error": message, "exit_code": code})
    sys.exit(code)

