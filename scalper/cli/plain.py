"""Plain command lines read without the command-line framework.

typer, its click and the app's ~30 commands cost ~45 ms of a start-up; for `scan` and
`backtest` on cached bars that is a tenth of the run. A plain line of these commands — their
options spelt `--opt VALUE` or `--opt=VALUE`, each at most once, numbers that parse and lie in
range — is read here, and so is a plain run-once line (RUN_ONCE, for scalper.cli.run_once).
Any other line goes to the typer app, which reads, explains or refuses it as before. Each typer
command calls the same `run` body the fast path calls; typer's declarations in commands.py are
the reference, and tests/test_plain_lines.py checks with hypothesis that both read alike.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def read_number(text: str, low: float, high: float) -> float:
    """A number option's value: finite (nan, inf and 1e309 are refused) and within [low, high];
    ValueError saying what is wrong, quoting the value as typed, otherwise (cli.common.number
    makes it typer's usage error)."""
    from scalper.errors import quote

    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{quote(text)} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{quote(text)} is not a finite number")
    if not low <= value <= high:
        raise ValueError(f"{quote(text)} is out of range: use {low:g} to {high:g}")
    return value


_GLOBAL_VALUES = {"--config": "config", "-c": "config", "--ledger": "ledger"}   # before the command
_ENV = {"config": "SCALPER_CONFIG", "ledger": "SCALPER_LEDGER"}   # the options' envvar fallbacks


def _options(args: list[str], i: int, values: dict[str, str], flags: dict[str, str] | None = None,
             stop: str | None = None, repeatable: tuple[str, ...] = ()) -> tuple[int, dict[str, Any] | None]:
    """Read options from args[i] on, up to `stop` or the end → (index reached, {parameter: value}),
    or (i, None) at anything this reader does not take. `repeatable` parameters gather lists."""
    found: dict[str, Any] = {}
    while i < len(args) and args[i] != stop:
        token = args[i]
        if flags and token in flags:
            found[flags[token]] = True
            i += 1
            continue
        if token.startswith("--") and "=" in token:
            spelling, value = token.split("=", 1)
            step = 1
        elif i + 1 < len(args) and not args[i + 1].startswith("-"):
            spelling, value = token, args[i + 1]
            step = 2
        else:
            return i, None
        name = values.get(spelling)
        if name is None:
            return i, None
        if name in repeatable:
            found.setdefault(name, []).append(value)
        elif name in found:
            return i, None
        else:
            found[name] = value
        i += step
    return i, found


@dataclass(frozen=True)
class PlainCommand:
    name: str
    values: dict[str, str]                   # option spelling -> parameter (text values)
    flags: dict[str, str]                    # flag spelling -> parameter (True when given)
    required: tuple[str, ...] = ()
    repeatable: tuple[str, ...] = ()                                     # parameters given as lists
    ints: dict[str, int] = field(default_factory=dict)                   # parameter -> typer's min=
    numbers: dict[str, tuple[float, float]] = field(default_factory=dict)  # parameter -> cli.common.number's range

    def parse(self, args: list[str]) -> dict[str, Any] | None:
        """The keyword arguments of the command's `run` for a plain line, or None when typer must
        read it. Global --config/--ledger go into the environment, as the app's callback does."""
        i, given = _options(args, 0, _GLOBAL_VALUES, stop=self.name)
        if given is None or i >= len(args) or args[i] != self.name:
            return None
        end, options = _options(args, i + 1, self.values, flags=self.flags, repeatable=self.repeatable)
        if options is None or end != len(args) or any(r not in options for r in self.required):
            return None
        kwargs: dict[str, Any] = {p: None for p in self.values.values()}
        kwargs.update({p: False for p in self.flags.values()})
        kwargs.update(options)
        for name, least in self.ints.items():
            if name in options:   # plain digits from `least` up; typer converts or refuses the rest
                if not re.fullmatch(r"[0-9]+", options[name]) or int(options[name]) < least:
                    return None
                kwargs[name] = int(options[name])
        for name, (low, high) in self.numbers.items():
            if name in options:   # as cli.common.number reads it; typer says what is wrong otherwise
                try:
                    kwargs[name] = read_number(options[name], low, high)
                except ValueError:
                    return None
        for name, value in given.items():   # the app callback: `if config: os.environ[...] = config`
            if value:
                os.environ[_ENV[name]] = value
        for name, env in _ENV.items():   # click: the option as given, else a non-empty envvar, else None
            if name in kwargs and name not in options:
                kwargs[name] = os.environ.get(env) or None
        return kwargs


_CONFIG = {"--config": "config", "-c": "config"}
MIN_LOOKBACK = 15   # --lookback of scan and backtest (typer's min=)

RUN_ONCE = PlainCommand(
    "run-once", {"--bot": "bot", "-b": "bot", "--now": "now", "--host": "host", "--ledger": "ledger", **_CONFIG},
    {"--dry-run": "dry_run", "--allow-backwards": "allow_backwards", "--json": "as_json"}, repeatable=("bot",))

SCAN = PlainCommand(
    "scan", {"--data": "data", "--symbol": "symbol", "--bot": "bot", "--strategies": "strategies", "--from": "since",
             "--to": "until", "--out": "out", "--lookback": "lookback", **_CONFIG},
    {"--skip-bad-rows": "skip_bad_rows", "--json": "as_json"}, required=("data",), ints={"lookback": MIN_LOOKBACK})

# the number options' ranges: commands.backtest's typer options read them from here too
BACKTEST = PlainCommand(
    "backtest", {"--data": "data", "--bot": "bot", "--symbol": "symbol", "--strategies": "strategies",
                 "--from": "since", "--to": "until", "--signals-out": "signals_out", "--trades-out": "trades_out",
                 "--chart": "chart", "--balance": "balance", "--qty": "qty", "--lookback": "lookback",
                 "--spread": "spread", "--leverage": "leverage", **_CONFIG},
    {"--skip-bad-rows": "skip_bad_rows", "--no-trailing": "no_trailing", "--json": "as_json"},
    required=("data",), ints={"lookback": MIN_LOOKBACK},
    numbers={"balance": (0.01, 1e12), "qty": (0.0001, 1e5), "spread": (0, 1e6), "leverage": (1, 10_000)})


# --- the bodies: typer's commands call these too ---------------------------------------------
def scan(*, data: str, symbol: str | None, bot: str | None, strategies: str | None, since: str | None,
         until: str | None, out: str | None, lookback: int | None, skip_bad_rows: bool, config: str | None,
         as_json: bool) -> int:
    """The scan, its summary printed (JSON or text) → the exit code."""
    from scalper.cli.output import emit_json, out_console
    from scalper.cli.progress import progress as progress_bar
    from scalper.services.scan import run_scan

    with progress_bar(None, "scanning", lazy=True) as progress:   # stderr, only in a terminal
        result = run_scan(data=data, symbol=symbol, bot=bot, strategies=strategies, since=since, until=until,
                          out=out, lookback=lookback, skip_bad_rows=skip_bad_rows, config=config,
                          progress=progress if progress.enabled else None)
    if as_json:
        emit_json(result)
    else:
        from scalper.cli import render

        render.scan_summary(out_console(False), result)
    return 0


def backtest(*, data: str, bot: str | None, symbol: str | None, strategies: str | None, since: str | None,
             until: str | None, signals_out: str | None, trades_out: str | None, chart: str | None,
             balance: float | None, qty: float | None, lookback: int | None, skip_bad_rows: bool,
             spread: float | None, no_trailing: bool, leverage: float | None, config: str | None,
             as_json: bool) -> int:
    """The replay, its summary printed (JSON or text) → the exit code."""
    from scalper.cli.output import emit_json, out_console
    from scalper.cli.progress import progress as progress_bar
    from scalper.services.backtest import backtest as service

    with progress_bar(None, "replaying", lazy=True) as progress:   # stderr, only in a terminal
        doc = service(data=data, bot=bot, symbol=symbol, strategies=strategies, since=since, until=until,
                      signals_out=signals_out, trades_out=trades_out, chart=chart, balance=balance, qty=qty,
                      lookback=lookback, skip_bad_rows=skip_bad_rows, config=config,
                      progress=progress if progress.enabled else None, spread=spread,
                      trailing=False if no_trailing else None, leverage=leverage)
    if as_json:
        emit_json(doc)
    else:
        from scalper.cli import render

        render.backtest_summary(out_console(False), doc)
    return 0


def run_once(**kwargs: Any) -> int:
    from scalper.cli.run_once import run

    return run(**kwargs)


def read(args: list[str]) -> tuple[Callable[..., int], dict[str, Any]] | None:
    """(the body to run, its keyword arguments) for a plain run-once, scan or backtest line, else None."""
    for command, body in ((RUN_ONCE, run_once), (SCAN, scan), (BACKTEST, backtest)):
        kwargs = command.parse(args)
        if kwargs is not None:
            return body, kwargs
    return None
