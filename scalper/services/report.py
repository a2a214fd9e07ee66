"""`scalper report`: what the ledger holds over a span, read-only, and its chart."""

from __future__ import annotations

import time

from scalper.core.bars import BAR_SECONDS
from scalper.errors import BadInput, ScalperError, quote

CANDLE_FEEDS = ("csv", "builtin")   # feeds read without a terminal; mt5 would need one


def report(*, config: str | None, ledger: str | None, since: str, bot: str | None = None,
           chart: str | None = None) -> dict:
    """The report document. A missing ledger is bad input (exit 2): the path given,
    or the config's `ledger:`, names no file; nothing has been recorded there."""
    from scalper.ledger import Ledger
    from scalper.report import charts, ledger_report
    from scalper.services.control import parse_since

    start = parse_since(since, time.time())   # bad arguments first, whatever the ledger
    cfg, path = _config_and_ledger(config, ledger)
    if not path.exists():
        raise BadInput(f"no ledger at {path}", where="--ledger",
                       fix="run `scalper run-once` first, or point --ledger (or `ledger:` in bots.yaml) at the "
                           "ledger file")
    if chart:
        charts.require()
    with Ledger(path, readonly=True) as led:
        if bot:
            known = ledger_report.known_bots(led) | {b.name for b in (cfg.bots if cfg else [])}
            if bot not in known:
                raise BadInput(f"no bot named {quote(bot)} in the config or the ledger", where="--bot",
                               fix=f"use one of: {', '.join(sorted(known)) or '(none yet)'}")
        doc = ledger_report.build(led, since=start, bot=bot)
        marks = ledger_report.chart_marks(led, since=start, bot=bot) if chart else None
        symbols = ledger_report.symbols(led, since=start, bot=bot)
    doc["ledger"] = str(path)
    if chart:
        signals, trades, equity = marks
        bars, note = _bars_for_chart(cfg, symbols, signals, trades)
        title = f"report {bot or 'all bots'} since {doc['since']}" + (f" ({symbols[0]})" if len(symbols) == 1 else "")
        charts.draw(chart, title=title, bars=bars, signals=signals, trades=trades, equity=equity,
                    equity_label="realized P&L")
        doc.update(chart=chart, chart_note=note)
    return doc


def _config_and_ledger(config: str | None, ledger: str | None):
    """The config (None when only a ledger path is given and no bots file exists) and the ledger path."""
    import os
    from pathlib import Path

    from scalper import wiring

    chosen = ledger or os.environ.get(wiring.LEDGER_ENV)
    if chosen and not config and not wiring.config_path(None).exists():
        from scalper.ledger.paths import check_ledger_path

        return None, check_ledger_path(chosen)
    cfg = wiring.load(config)
    return cfg, wiring.ledger_path(cfg, ledger)


def _bars_for_chart(cfg, symbols: list[str], signals, trades):
    """Bars under the marks, from the config's feed, when one symbol and a readable feed are at hand.
    → (bars or None, why there are none)."""
    if cfg is None or cfg.feed.type not in CANDLE_FEEDS:
        return None, "no candles: the config has no csv or builtin feed to read bars from"
    if len(symbols) != 1:
        return None, "no candles: the span holds several symbols (pick one bot with --bot)"
    times = [s.time for s in signals] + [t.exit_time or t.entry_time for t in trades]
    if not times:
        return None, "no candles: nothing happened in the span"
    from scalper import wiring
    from scalper.report.charts import MAX_CANDLES

    last = max(times)
    try:
        bars = wiring.make_feed(cfg).bars_between(symbols[0], last - MAX_CANDLES * BAR_SECONDS,
                                                  last + 2 * BAR_SECONDS)
    except ScalperError as exc:
        return None, f"no candles: the feed gave no bars ({exc})"
    return bars, None
