"""`scalper scan`: every raw signal a bar file holds, before any risk rule."""

from __future__ import annotations

import csv
from pathlib import Path

from scalper.clock import parse_span_options
from scalper.errors import BadInput, quote


def run_scan(*, data: str, symbol: str | None = None, bot: str | None = None, strategies: str | None = None,
             since: str | None = None, until: str | None = None, out: str | None = None,
             lookback: int | None = None, skip_bad_rows: bool = False, config: str | None = None,
             progress=None) -> dict:
    """`progress`, when given, is a (done, total) callable told after each strategy."""
    from scalper.core.scan import scan_history, signals_to_rows
    from scalper.feeds.csvfile import read_bars

    names, params, lb = _selection(bot, strategies, config, lookback)
    lo, hi = parse_span_options(since, until)
    if out:
        from scalper.outputs import check_output

        check_output(out, "--out")
    bars, warnings = read_bars(data, skip_bad_rows=skip_bad_rows)
    # The whole file is scanned, then signals are kept in [--from, --to]: scanning a slice would
    # seed the fast path's EMAs elsewhere and change the last digits (backtest --signals-out
    # scans the whole file too, and the two must write the same bytes).
    result = _scan(bars, names, params, lb, progress)
    signals = [s for s in result.signals
               if (lo is None or s.bar_time >= lo) and (hi is None or s.bar_time <= hi)]
    rows = signals_to_rows(signals, signal_digits(bars, symbol, bot, config))
    if out:
        with Path(out).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["bar_time", "strategy", "direction", "entry", "sl", "tp", "score"])
            w.writeheader()
            w.writerows(rows)
    counts = {n: {"buy": 0, "sell": 0} for n in names}
    for s in signals:
        counts[s.strategy][s.direction] += 1
    doc = {"data": str(data), "symbol": symbol, "bars": len(bars), "evaluated": result.evaluated,
           "lookback": lb, "strategies": names, "signals": len(signals), "counts": counts,
           # evaluated and skips cover every bar of the file; signals and counts the --from/--to span
           "skips": dict(sorted(result.skips.items())), "warnings": warnings, "out": out}
    if not out:
        doc["rows"] = rows
    return doc


def signal_digits(bars, symbol: str | None, bot: str | None = None, config: str | None = None) -> int:
    """Decimals of the prices written: the symbol's digits when it is known (--symbol or
    the bot's), else as many as the file's prices carry."""
    from scalper.core.scan import price_decimals

    if bot and not symbol:
        from scalper import wiring

        symbol = wiring.load(config).bot(bot).symbol
    if symbol:
        from scalper.symbols import spec_for

        return spec_for(symbol).digits
    return price_decimals(bars)


def _scan(bars, names, params, lookback, progress):
    """scan_history, one strategy at a time when someone watches the progress (the
    outcome is the same: strategies are independent; signals sorted as scan_history does)."""
    from scalper.core.scan import ScanResult, scan_history

    if progress is None or len(names) < 2:
        return scan_history(bars, names, params, lookback)
    order = {n: i for i, n in enumerate(names)}
    merged = ScanResult(evaluated=0)
    progress(0, len(names))
    for i, name in enumerate(names, 1):
        part = scan_history(bars, [name], {name: params[name]}, lookback)
        merged.evaluated = part.evaluated
        merged.signals.extend(part.signals)
        for reason, count in part.skips.items():
            merged.skips[reason] = merged.skips.get(reason, 0) + count
        progress(i, len(names))
    from scalper.core.strategies import STRATEGY_NAMES

    rank = {n: i for i, n in enumerate(STRATEGY_NAMES)}
    merged.signals.sort(key=lambda s: (s.bar_time, rank.get(s.strategy, order[s.strategy])))
    return merged


def _selection(bot: str | None, strategies: str | None, config: str | None, lookback: int | None):
    from scalper.core import strategies as registry

    params: dict[str, dict] = {}
    lb = lookback or 100
    names = list(registry.STRATEGY_NAMES)
    if bot:
        from scalper import wiring

        cfg = wiring.load(config)
        try:
            b = cfg.bot(bot)
        except KeyError:
            raise BadInput(f"no bot named {quote(bot)} in {wiring.config_path(config)}", where="--bot") from None
        names = list(b.strategies)
        lb = lookback or b.lookback
        params = {n: b.params_for(n) for n in names}
    if strategies:
        from scalper.services.options import strategy_list

        names = strategy_list(strategies)
    for n in names:
        try:
            params[n] = registry.resolve_params(n, params.get(n), lookback=lb)
        except ValueError as exc:
            raise BadInput(str(exc), where=f"strategy_params.{n}") from None
    return names, params, lb
