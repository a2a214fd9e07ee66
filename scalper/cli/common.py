"""What every command shares: the --config/--ledger/--json options, output, errors."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console


class _StderrConsole:
    """rich's Console for stderr, built on first use: rich costs ~70 ms to import and
    a `run-once --json` from cron never needs it."""

    _console = None

    def __getattr__(self, name):
        return getattr(stderr_console(), name)

    # rich's Live (progress bars) enters the console as a context manager; dunders bypass __getattr__.
    def __enter__(self):
        return self.__getattr__("__enter__")()

    def __exit__(self, *exc):
        return self.__getattr__("__exit__")(*exc)


def _console(**kwargs) -> "Console":
    """A rich Console whose reader leaving (`scalper report | head -1`) raises BrokenPipeError
    for the CLI to end quietly with exit 0; rich's own handling exits 1."""
    from rich.console import Console

    class QuietOnBrokenPipe(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return QuietOnBrokenPipe(**kwargs)


def stderr_console() -> "Console":
    """The real rich Console on stderr (built once). Pass this, not `err`, wherever rich
    needs a Console object (Progress, Live, `with console:`): `err` is only a proxy."""
    if _StderrConsole._console is None:
        _StderrConsole._console = _console(stderr=True, highlight=False)
    return _StderrConsole._console


err = _StderrConsole()

ConfigOpt = typer.Option(None, "--config", "-c", envvar="SCALPER_CONFIG", show_envvar=True,
                         help="The bots file.  [default: ./bots.yaml]", metavar="PATH")
LedgerOpt = typer.Option(None, "--ledger", envvar="SCALPER_LEDGER", show_envvar=True,
                         help="The SQLite ledger (overrides `ledger:` in the bots file).", metavar="PATH")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout (human text goes to stderr).")


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def out_console(as_json: bool) -> "Console":
    """Human output goes to stdout normally, to stderr when stdout carries JSON."""
    if as_json:
        return err
    return _console(highlight=False)


Opt = Optional
