"""`scalper report`: what the ledger holds over a span, read-only, and its chart."""

from __future__ import annotations

import functools
import time

from scalper.core.bars import BAR_SECONDS
from scalper.errors import BadInput, ScalperError, quote

CANDLE_FEEDS = ("csv", "builtin")   # feeds read without a terminal; mt5 would need one


def report(*, config: str | None, ledger: str | None, since: str, bot: str | None = None,
           chart: str | None = None) -> dict:
    """The report document. A missing ledger is bad input (exit 2): the path given,
    or the config's `ledger:`, names no file; nothing has been recorded there."""
    from scalper.clock import parse_since
    from scalper.ledger import Ledger
    from scalper.report import charts, journal, ledger_report

    start = parse_since(since, time.time())   # bad arguments first, whatever the ledger
    cfg, path = _config_and_ledger(config, ledger)
    if not path.exists():
        raise BadInput(f"no ledger at {path}", where="--ledger",
                       fix="run `scalper run-once` first, or point --ledger (or `ledger:` in bots.yaml) at the "
                           "ledger file")
    if chart:
        from scalper.outputs import check_chart

        check_chart(chart)
        charts.require()
    with Ledger(path, readonly=True) as led:
        if bot:
            known = ledger_report.known_bots(led) | {b.name for b in (cfg.bots if cfg else [])}
            if bot not in known:
                raise BadInput(f"no bot named {quote(bot)} in the config or the ledger", where="--bot",
                               fix=f"use one of: {', '.join(sorted(known)) or '(none yet)'}")
        doc = ledger_report.build(led, since=start, bot=bot)
        digits_of = _digits_of(cfg)
        doc["trades"] = journal.closed_trades(led, since=start, bot=bot, digits_of=digits_of)
        _round_document(doc, digits_of)
        if chart:
            _, _, equity = ledger_report.chart_marks(led, since=start, bot=bot)
            by_symbol = journal.chart_marks_by_symbol(led, since=start, bot=bot)
    doc["ledger"] = str(path)
    doc["currency"] = _currency(cfg)
    if chart:
        panels, notes = [], []
        for symbol, (signals, trades) in by_symbol.items():
            bars, note = _bars_for_chart(cfg, [symbol], signals, trades)
            panels.append(charts.SymbolPanel(symbol, bars, signals, trades, digits_of(symbol), note))
            if note:
                notes.append(f"{symbol}: {note}")
        times = [t for t, _ in equity]
        times += [x.time for p in panels for x in p.signals] + [x.entry_time for p in panels for x in p.trades]
        span = (max(start, min(times)), max(times)) if times else None
        if equity and span:   # realized P&L starts from zero where the span's activity begins
            equity = [(span[0], 0.0)] + [pt for pt in equity[1:]]
        title = f"report {bot or 'all bots'} since {doc['since']}"
        charts.draw_panels(chart, title=title, panels=panels, equity=equity, equity_label="realized P&L",
                           currency=doc["currency"], span=span)
        doc.update(chart=chart, chart_note="; ".join(notes) or None)
    return doc


def _digits_of(cfg):

    from scalper.symbols import spec_for

    overrides = cfg.symbol_overrides() if cfg else None

    @functools.cache
    def digits(symbol: str) -> int | None:
        try:
            return spec_for(symbol, overrides).digits
        except Exception:   # an unknown symbol: prices keep 2 decimals
            return None

    return digits


def _currency(cfg) -> str:
    return cfg.paper.currency if cfg is not None else "USD"


def _round_document(doc: dict, digits_of) -> None:
    """Money to cents and prices to the symbol's digits, in place."""
    from scalper import rounding

    for row in [doc["totals"], *doc["per_strategy"].values()]:
        rounding.stats_row(row)
    for d in doc["daily_pnl"]:
        d["realized"] = rounding.money(d["realized"])
    for p in doc["open_positions"]:
        digits = digits_of(p["symbol"])
        for k in ("price_open", "sl", "tp", "last_price"):
            p[k] = rounding.price(p[k], digits)
        p["unrealized"] = rounding.money(p["unrealized"])
        p["digits"] = digits


def _config_and_ledger(config: str | None, ledger: str | None):
    """The config (None when only a ledger path is given and no bots file exists) and the ledger path."""
    import os

    from scalper import wiring

    chosen = ledger or os.environ.get(wiring.LEDGER_ENV)
    if chosen and not config and not wiring.config_path(None).exists():
        from scalper.ledger.paths import check_ledger_path
        from scalper.ledger.postgres import LedgerUrl, is_url

        return None, LedgerUrl.parse(chosen, where="--ledger") if is_url(chosen) else check_ledger_path(chosen)
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
