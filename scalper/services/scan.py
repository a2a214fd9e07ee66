"""`scalper scan`: every raw signal a bar file holds, before any risk rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from scalper import rounding
from scalper.clock import bar_iso, parse_span_options

if TYPE_CHECKING:
    from scalper.config import Config
    from scalper.core.signals import Signal

SIGNAL_FIELDS = ["bar_time", "strategy", "direction", "entry", "sl", "tp", "score"]


def run_scan(*, data: str, symbol: str | None = None, bot: str | None = None, strategies: str | None = None,
             since: str | None = None, until: str | None = None, out: str | None = None,
             lookback: int | None = None, skip_bad_rows: bool = False, config: str | None = None,
             progress=None) -> dict:
    """`progress`, when given, is a (done, total) callable told after each strategy."""
    from scalper.core.scan import scan_history
    from scalper.feeds.bar_cache import derived_store  # the history EMAs of an earlier scan of these closes
    from scalper.feeds.csvfile import read_bars
    from scalper.memory import reuse_freed_memory
    from scalper.outputs import check_output, write_csv
    from scalper.services.options import bot_named, strategy_selection, symbol_fit

    reuse_freed_memory()   # a long computation over large arrays follows

    cfg = b = None
    if bot:
        from scalper import wiring

        cfg = wiring.load(config)
        b = bot_named(cfg, bot, config)
    names, params, lb = strategy_selection(b, strategies, lookback)
    lo, hi = parse_span_options(since, until)
    if out:
        check_output(out, "--out")
    bars, warnings = read_bars(data, skip_bad_rows=skip_bad_rows)
    symbol_of_bars = symbol or (b.symbol if b else None)
    if symbol_of_bars:
        warnings = [*warnings, *symbol_fit(symbol_of_bars, bars)]
    # The whole file is scanned, then signals are kept in [--from, --to]: scanning a slice would
    # seed the fast path's EMAs elsewhere and change the last digits (backtest --signals-out
    # scans the whole file too, and the two must write the same bytes). What was evaluated and
    # skipped is counted in the span alone.
    result = scan_history(bars, names, params, lb, emas=derived_store(bars.close), counted=(lo, hi),
                          progress=progress)
    signals = [s for s in result.signals
               if (lo is None or s.bar_time >= lo) and (hi is None or s.bar_time <= hi)]
    rows = signals_to_rows(signals, signal_digits(bars, symbol_of_bars, cfg))
    if out:
        write_csv(out, SIGNAL_FIELDS, rows)
    counts = {n: {"buy": 0, "sell": 0} for n in names}
    for s in signals:
        counts[s.strategy][s.direction] += 1
    doc: dict[str, Any]
    doc = {"data": str(data), "symbol": symbol, "bars": len(bars), "evaluated": result.evaluated,
           "lookback": lb, "strategies": names, "signals": len(signals), "counts": counts,
           # evaluated, skips, signals and counts: the windows whose signal bar is in [--from, --to]
           "skips": dict(sorted(result.skips.items())), "warnings": warnings, "out": out,
           "from": bar_iso(lo) if lo is not None else None, "to": bar_iso(hi) if hi is not None else None}
    if not out:
        doc["rows"] = rows
    return doc


def signals_to_rows(signals: Iterable[Signal], digits: int | None = None) -> list[dict]:
    """Rows of the signal files (scan --out, backtest --signals-out): SIGNAL_FIELDS, the bar
    time on the file's own clock. With `digits`, prices are rounded to them and the score to
    4 decimals (what a trader reads); without, full precision (the golden file's)."""
    from operator import attrgetter

    import numpy as np

    from scalper.clock import format_bar_times

    signals = list(signals)
    n = len(signals)
    times = format_bar_times(np.fromiter(map(attrgetter("bar_time"), signals), dtype=np.int64, count=n))
    values = [np.fromiter(map(attrgetter(f), signals), dtype=np.float64, count=n)
              for f in ("entry", "sl", "tp", "score")]
    if digits is not None:   # a column at a time: one numpy pass, not a call per value
        columns = [rounding.values(column, places)
                   for column, places in zip(values, (digits, digits, digits, rounding.RATIO_DECIMALS))]
    else:
        columns = [column.tolist() for column in values]
    return [{"bar_time": t, "strategy": s.strategy, "direction": s.direction, "entry": e, "sl": sl, "tp": tp,
             "score": sc} for t, s, e, sl, tp, sc in zip(times, signals, *columns)]


def signal_digits(bars, symbol: str | None, cfg: Config | None = None) -> int:
    """Decimals of the prices written: the symbol's digits when it is known (--symbol or
    the bot's; the config's `symbols:` first), else as many as the file's prices carry."""
    from scalper.core.scan import price_decimals

    if symbol:
        from scalper.symbols import spec_for

        return spec_for(symbol, cfg.symbol_overrides() if cfg else None).digits
    return price_decimals(bars)
