"""What every command writes: JSON on stdout, rich consoles built on first use.

Kept free of typer: `scalper run-once` (scalper.cli.run_once) writes through it without
loading the command-line framework."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, cast

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

    def encode(item: Any) -> str:
        # allow_nan is off: an item with a non-finite float raises, and only then is it walked
        # to turn those into null (walking every item was most of a long list's time)
        try:
            return "".join(make(item, 0))
        except ValueError:
            return "".join(make(finite(item), 0))

    return encode


BLOCK = 2048   # items of a long list encoded by one call


def _encoded_items(items: list) -> Iterator[str]:
    """Each item's JSON (as _item_encoder writes it)."""
    for block in _encoded_blocks(items):
        yield from block


def _encoded_blocks(items: list) -> Iterator[list[str]]:
    """The items' JSON (as _item_encoder writes it), BLOCK items at a time. A block of dicts that
    is a uniform table goes through one %-template (_uniform_rows); other dicts are encoded as
    one list and cut at its "}, {" boundaries — only when the text holds exactly one such
    boundary per pair of neighbours, so none lies inside an item; otherwise (or with a
    non-finite float) item by item."""
    encode = _item_encoder()
    whole = json.JSONEncoder(default=str, allow_nan=False, ensure_ascii=True, check_circular=False).encode
    for start in range(0, len(items), BLOCK):
        block = items[start:start + BLOCK]
        if all(type(item) is dict and item for item in block):
            rows = _uniform_rows(block)
            if rows is not None:
                template, values = rows
                yield [template % row for row in values]
                continue
            try:
                text = whole(block)
            except ValueError:
                text = ""
            if text and text.count("}, {") == len(block) - 1:
                yield text[1:-1].replace("}, {", "}\0{").split("\0")
                continue
        yield [encode(item) for item in block]


def _uniform_rows(block: list[dict]) -> tuple[str, list[tuple]] | None:
    """A %-template that writes each dict of `block` as json's encoder does, and each dict's values:
    when the dicts have the same str keys in the same order, and each key's values are all str
    that JSON writes as they are (printable ASCII, no quote or backslash), all finite floats or
    all ints (exact types: json writes them with their own repr). A scan's rows are such a
    table, and the template is a third of the encoder's time; None for anything else."""
    from operator import itemgetter

    keys = tuple(block[0])
    if len(keys) < 2 or not all(type(k) is str for k in keys) or not all(map(keys.__eq__, map(tuple, block))):
        return None
    values = list(map(itemgetter(*keys), block))
    fields = []
    for key, column in zip(keys, zip(*values)):
        kinds = set(map(type, column))
        if kinds == {str}:
            text = "".join(column)
            if not (text.isascii() and text.isprintable()) or '"' in text or "\\" in text:
                return None
            field = '"%s"'
        elif (kinds == {float} and all(map(math.isfinite, column))) or kinds == {int}:
            field = "%r"
        else:
            return None
        fields.append(f"{encode_basestring_ascii(key).replace('%', '%%')}: {field}")
    return "{" + ", ".join(fields) + "}", values


def json_pieces(doc: Any):
    """JSON indented by 2, except that a long list under a top-level key (a backtest's trades)
    has one item per line, written by json's C encoder: `indent` makes json use its pure-Python
    encoder, 1.5 s for 16,210 trades. A document without a long list reads as before. Never
    Infinity/NaN (scalper.jsonout); written a block of items at a time: no copy of a long document."""
    from scalper.jsonout import dumps as finite_dumps

    if not isinstance(doc, dict) or not any(isinstance(v, list) and len(v) >= LONG_LIST for v in doc.values()):
        yield finite_dumps(doc, indent=2)
        return
    yield "{"
    for n, (key, value) in enumerate(doc.items()):
        yield f"{',' if n else ''}\n  {json.dumps(key)}: "
        if isinstance(value, list) and len(value) >= LONG_LIST:
            yield "["
            for k, block in enumerate(_encoded_blocks(value)):   # a block per write
                yield f"{',' if k else ''}\n    " + ",\n    ".join(block)
            yield "\n  ]"
        else:
            yield finite_dumps(value, indent=2).replace("\n", "\n  ")
    yield "\n}"


def out_console(as_json: bool) -> Console:
    """Human output goes to stdout normally, to stderr when stdout carries JSON."""
    if as_json:
        return cast("Console", err)   # the proxy stands in for the console
    return _console(highlight=False)
