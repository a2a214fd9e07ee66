"""What every command shares: the --config/--ledger/--json options, output, errors."""

from __future__ import annotations

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


def number(low: float, high: float):
    """A parser for a number option: finite (nan, inf and 1e309 are refused, which a plain
    `float` option with min/max lets through) and within [low, high]; usage error (exit 2)
    quoting the value as typed otherwise."""
    def parse(text) -> float:
        import math

        from scalper.errors import quote

        if isinstance(text, (int, float)):   # a default value
            return float(text)
        try:
            value = float(text)
        except ValueError:
            raise typer.BadParameter(f"{quote(text)} is not a number") from None
        if not math.isfinite(value):
            raise typer.BadParameter(f"{quote(text)} is not a finite number")
        if not low <= value <= high:
            raise typer.BadParameter(f"{quote(text)} is out of range: use {low:g} to {high:g}")
        return value

    parse.__name__ = "number"
    return parse


def emit_json(doc: Any) -> None:
    from scalper.jsonout import dumps

    sys.stdout.write(dumps(doc, indent=2) + "\n")   # never Infinity/NaN: see scalper.jsonout
    sys.stdout.flush()


def out_console(as_json: bool) -> "Console":
    """Human output goes to stdout normally, to stderr when stdout carries JSON."""
    if as_json:
        return err
    return _console(highlight=False)


Opt = Optional
