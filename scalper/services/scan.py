"""`scalper scan`: every raw signal a bar file holds, before any risk rule."""

from __future__ import annotations

import csv
from pathlib import Path

from scalper.clock import parse_instant_option
from scalper.errors import BadInput


def run_scan(*, data: str, symbol: str | None = None, bot: str | None = None, strategies: str | None = None,
             since: str | None = None, until: str | None = None, out: str | None = None,
             lookback: int | None = None, skip_bad_rows: bool = False, config: str | None = None) -> dict:
    from scalper.core.scan import scan_history, signals_to_rows
    from scalper.feeds.csvfile import read_bars

    names, params, lb = _selection(bot, strategies, config, lookback)
    bars, warnings = read_bars(data, skip_bad_rows=skip_bad_rows)
    result = scan_history(bars, names, params, lb)
    signals = result.signals
    lo = parse_instant_option(since, "--from")
    hi = parse_instant_option(until, "--to")
    if lo is not None or hi is not None:
        signals = [s for s in signals if (lo is None or s.bar_time >= lo) and (hi is None or s.bar_time <= hi)]
    rows = signals_to_rows(signals)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["bar_time", "strategy", "direction", "entry", "sl", "tp", "score"])
            w.writeheader()
            w.writerows(rows)
    counts = {n: {"buy": 0, "sell": 0} for n in names}
    for s in signals:
        counts[s.strategy][s.direction] += 1
    doc = {"data": str(data), "symbol": symbol, "bars": len(bars), "evaluated": result.evaluated,
           "lookback": lb, "strategies": names, "signals": len(signals), "counts": counts,
           "skips": dict(sorted(result.skips.items())), "warnings": warnings, "out": out}
    if not out:
        doc["rows"] = rows
    return doc


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
            raise BadInput(f"no bot named {bot!r} in {wiring.config_path(config)}", where="--bot") from None
        names = list(b.strategies)
        lb = lookback or b.lookback
        params = {n: b.params_for(n) for n in names}
    if strategies:
        names = [s.strip() for s in strategies.split(",") if s.strip()]
        for n in names:
            if n not in registry.STRATEGY_NAMES:
                raise BadInput(f"unknown strategy {n!r}", where="--strategies",
                               fix=f"use some of: {', '.join(registry.STRATEGY_NAMES)}")
    for n in names:
        try:
            params[n] = registry.resolve_params(n, params.get(n), lookback=lb)
        except ValueError as exc:
            raise BadInput(str(exc), where=f"strategy_params.{n}") from None
    return names, params, lb
