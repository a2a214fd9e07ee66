"""What every command shares: the --config/--ledger/--json options, output, errors."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Optional, cast

import typer

if TYPE_CHECKING:
    from rich.console import Console


class _StderrConsole:
    """rich's Console for stderr, built on first use: rich costs ~70 ms to import and
    a `run-once --json` from cron never needs it."""

    _console: Console | None = None

    def __getattr__(self, name):
        return getattr(stderr_console(), name)

    # rich's Live (progress bars) enters the console as a context manager; dunders bypass __getattr__.
    def __enter__(self):
        return self.__getattr__("__enter__")()

    def __exit__(self, *exc):
        return self.__getattr__("__exit__")(*exc)


def _console(**kwargs) -> Console:
    """A rich Console whose reader leaving (`scalper report | head -1`) raises BrokenPipeError
    for the CLI to end quietly with exit 0; rich's own handling exits 1."""
    from rich.console import Console

    class QuietOnBrokenPipe(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return QuietOnBrokenPipe(**kwargs)


def stderr_console() -> Console:
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


LONG_LIST = 200   # items from which a top-level list is written one compact item per line


def emit_json(doc: Any) -> None:
    write = sys.stdout.write
    for piece in json_pieces(doc):   # in pieces: a long document is never one string
        write(piece)
    write("\n")
    sys.stdout.flush()


def dumps(doc: Any) -> str:
    return "".join(json_pieces(doc))


def _item_encoder():
    """json.dumps(item, default=str) for many items: json's C encoder built once (json.dumps
    builds one per call, which is half its time on a small item); json.dumps where there is none."""
    from json import encoder

    from scalper.jsonout import dumps as finite_dumps
    from scalper.jsonout import finite

    if encoder.c_make_encoder is None:
        return finite_dumps
    make = encoder.c_make_encoder(None, str, encoder.encode_basestring_ascii, None, ": ", ", ", False, False, False)
    return lambda item: "".join(make(finite(item), 0))


def json_pieces(doc: Any):
    """JSON indented by 2, except that a long list under a top-level key (a backtest's trades)
    has one item per line, written by json's C encoder: `indent` makes json use its pure-Python
    encoder, 1.5 s for 16,210 trades. A document without a long list reads as before. Never
    Infinity/NaN (scalper.jsonout), item by item: no copy of a long document."""
    from scalper.jsonout import dumps as finite_dumps

    if not isinstance(doc, dict) or not any(isinstance(v, list) and len(v) >= LONG_LIST for v in doc.values()):
        yield finite_dumps(doc, indent=2)
        return
    yield "{"
    for n, (key, value) in enumerate(doc.items()):
        yield f"{',' if n else ''}\n  {json.dumps(key)}: "
        if isinstance(value, list) and len(value) >= LONG_LIST:
            encode = _item_encoder()
            yield "["
            for k, item in enumerate(value):
                yield f"{',' if k else ''}\n    {encode(item)}"
            yield "\n  ]"
        else:
            yield finite_dumps(value, indent=2).replace("\n", "\n  ")
    yield "\n}"


def out_console(as_json: bool) -> Console:
    """Human output goes to stdout normally, to stderr when stdout carries JSON."""
    if as_json:
        return cast("Console", err)   # the stderr proxy: the console is built on first use
    return _console(highlight=False)


Opt = Optional
