"""`scalper backtest`: resolve what to replay (a bot of bots.yaml, or a symbol
with the defaults), replay it (scalper.backtest), write the files asked for and
sum the outcome up as one JSON-ready document."""

from __future__ import annotations

import dataclasses
import gc
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from scalper import rounding
from scalper.backtest import BacktestResult, Progress, Setup, Trade, TradeLog, run_backtest
from scalper.clock import bar_iso, parse_span_options
from scalper.core.risk import APPROVED
from scalper.errors import BadInput
from scalper.outputs import write_csv
from scalper.report import stats

if TYPE_CHECKING:
    from scalper.config import BotConfig, Config

TRADE_FIELDS = ["signal_time", "entry_time", "exit_time", "strategy", "direction", "volume", "entry", "exit",
                "sl", "tp", "final_sl", "exit_reason", "pnl"]


def backtest(*, data: str, bot: str | None = None, symbol: str | None = None, strategies: str | None = None,
             since: str | None = None, until: str | None = None, signals_out: str | None = None,
             trades_out: str | None = None, chart: str | None = None, balance: float | None = None,
             qty: float | None = None, lookback: int | None = None, skip_bad_rows: bool = False,
             config: str | None = None, progress: Progress | None = None, spread: float | None = None,
             trailing: bool | None = None, leverage: float | None = None) -> dict:
    """`spread` (points) replaces the file's spread column and the symbol's typical spread;
    `trailing` False turns the trailing stop off: with --strategies price_action_pinbar they
    replay the setup other backtesters use (no costs, no trailing, one position at a time).
    `leverage` replaces the account's default (sim.DEFAULT_LEVERAGE) in the margin check."""
    from scalper.feeds import bar_cache
    from scalper.feeds.csvfile import read_bars
    from scalper.memory import reuse_freed_memory
    from scalper.outputs import check_chart, check_output
    from scalper.services.options import symbol_fit

    reuse_freed_memory()   # a long computation over large arrays follows

    balance_given = balance is not None
    setup, bot_name = resolve_setup(bot=bot, symbol=symbol, strategies=strategies, balance=balance, qty=qty,
                                    lookback=lookback, config=config)
    setup = with_costs(setup, spread=spread, trailing=trailing)
    if leverage is not None:
        setup = dataclasses.replace(setup, leverage=float(leverage))
    start, end = parse_span_options(since, until)
    # every file asked for is checked before the (long) replay, and each must be its own file
    outputs = {opt: p for opt, p in (("--signals-out", signals_out), ("--trades-out", trades_out),
                                     ("--chart", chart)) if p}
    for opt, p in outputs.items():
        check_chart(p) if opt == "--chart" else check_output(p, opt)
    if len({str(Path(p).resolve()) for p in outputs.values()}) < len(outputs):
        raise BadInput("two outputs name the same file", where=", ".join(outputs), fix="give each its own file")
    if chart:
        from scalper.report import charts

        charts.require()
    history, warnings = read_bars(data, skip_bad_rows=skip_bad_rows)
    warnings = [*warnings, *symbol_fit(setup.symbol, history)]
    costs = _costs(setup, history, spread)
    if spread is not None:
        history = dataclasses.replace(history, spread=np.full(len(history), float(spread)))
    _enough_bars(history, setup, start, end, data)

    with _no_gc_passes():
        began = time.perf_counter()
        result = run_backtest(history, setup, start=start, end=end, progress=progress,
                              emas=bar_cache.derived_store(history.close))
        duration = time.perf_counter() - began
        trade_rows = trades_to_rows(result.trade_log, setup.spec.digits)
    if not result.bars:
        raise BadInput(f"no bar of {data} lies in the span replayed", where="--from/--to",
                       fix="widen --from/--to to cover the file's times (the file's own clock)")

    doc = summarize(result)
    doc.update(data=str(data), bot=bot_name, duration_s=round(duration, 3), warnings=warnings,
               signals_out=signals_out, trades_out=trades_out, chart=chart,
               balance_source=_balance_source(bot_name, balance_given, config), costs=costs)
    if signals_out:
        from scalper.services.scan import SIGNAL_FIELDS, signals_to_rows

        write_csv(signals_out, SIGNAL_FIELDS, signals_to_rows(result.signals, setup.spec.digits))
    if trades_out:
        write_csv(trades_out, TRADE_FIELDS, trade_rows)
    else:
        doc["trades"] = trade_rows
    if chart:
        _chart(chart, history, result)
    return doc


SPREAD_GIVEN, SPREAD_FILE, SPREAD_TYPICAL = "--spread", "the file's spread column", "the symbol's typical spread"


def _costs(setup: Setup, history, spread: float | None) -> dict:
    """What the replay charges and how it manages positions, as the summary says it: the spread
    (points: given, else the file's column — the symbol's typical spread at bars without one —
    else the typical spread), the trailing stop, the leverage of the margin check."""
    if spread is not None:
        spread_from, points = SPREAD_GIVEN, float(spread)
    elif bool(np.isfinite(history.spread).any()):
        spread_from, points = SPREAD_FILE, None   # bar by bar
    else:
        spread_from, points = SPREAD_TYPICAL, float(setup.spec.spread_points)
    return {"spread_points": points, "spread_from": spread_from, "trailing_stop": setup.rules.trailing.enabled,
            "leverage": float(setup.leverage)}


@contextmanager
def _no_gc_passes():
    """The cyclic garbage collector paused: the replay and its rows make hundreds of thousands of
    objects that live on (signals, trades, rows) and no cycles, and each full pass walks them all
    for nothing (~0.07 s of CPU on 370,000 bars, 16,210 trades). Refcounting frees the rest."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def with_costs(setup: Setup, *, spread: float | None = None, trailing: bool | None = None) -> Setup:
    """The setup with its spread (points) and trailing stop overridden where given."""
    if spread is not None:
        setup = dataclasses.replace(setup, spec=dataclasses.replace(setup.spec, spread_points=float(spread)))
    if trailing is not None:
        rules = dataclasses.replace(setup.rules, trailing=dataclasses.replace(setup.rules.trailing, enabled=trailing))
        setup = dataclasses.replace(setup, rules=rules)
    return setup


def _enough_bars(history, setup: Setup, start, end, data: str) -> None:
    """Refuse (exit 2) a file or span holding less than one window: nothing could be replayed."""
    from scalper.core.bars import BAR_SECONDS

    n = len(history)
    if n < setup.lookback + 1:
        raise BadInput(f"{data} holds {n:,} bar(s); one window needs {setup.lookback:,} plus the bar to fill on, "
                       "so nothing can be replayed", where="--data",
                       fix="use a longer file, or a shorter --lookback (at least 15)")
    if end is not None and end < history.time[0] + (setup.lookback - 1) * BAR_SECONDS:
        raise BadInput(f"--to ends before the file's first full window of {setup.lookback:,} bars",
                       where="--to", fix="move --to later, or --lookback shorter")
    if start is not None and start > history.time[-1]:
        raise BadInput("--from starts after the file's last bar", where="--from",
                       fix="move --from earlier (the file's own clock)")


def _balance_source(bot: str | None, given: bool, config: str | None) -> str:
    if given:
        return "--balance"
    if bot:
        return "the smallest starting balance of the bot's accounts (accounts[].balance, else paper.initial_balance)"
    return "paper.initial_balance of the config" if config else "the default paper balance"


def resolve_setup(*, bot: str | None, symbol: str | None, strategies: str | None, balance: float | None,
                  qty: float | None, lookback: int | None, config: str | None) -> tuple[Setup, str | None]:
    """A bot's settings from bots.yaml, or a symbol with the defaults (a config given
    with --config still supplies its symbol table). Command-line values win."""
    from scalper import wiring
    from scalper.core.rules import DEFAULT_BALANCE, RiskRules
    from scalper.core.sizing import size_order
    from scalper.services.options import bot_named, strategy_selection
    from scalper.settings import risk_rules
    from scalper.symbols import default_qty, spec_for

    if bool(bot) == bool(symbol):
        raise BadInput("give either --bot NAME or --symbol SYMBOL" if not bot else
                       "--bot and --symbol exclude each other", where="--bot",
                       fix="--bot replays a bot of bots.yaml; --symbol replays a symbol with the default settings")
    qty_option = qty is not None
    b: BotConfig | None = None
    cfg: Config | None
    if bot:
        cfg = wiring.load(config)
        b = bot_named(cfg, bot, config)
        name, rules, qty = b.symbol, risk_rules(b.risk), qty or cfg.qty_of(b)
        if balance is None:   # the account the bot can least afford to lose on; said in the output
            balance = min(cfg.account(a).balance or cfg.paper.initial_balance for a in b.accounts)
    else:   # a config given with --config still supplies its symbol table
        cfg = wiring.load(config) if config else None
        name, rules = str(symbol), RiskRules()
        qty = qty or default_qty(name, cfg.symbol_overrides() if cfg else None)
        if balance is None:
            balance = cfg.paper.initial_balance if cfg else DEFAULT_BALANCE
    names, params, lookback = strategy_selection(b, strategies, lookback)
    spec = spec_for(name, cfg.symbol_overrides() if cfg else None)
    if rules.risk_percent is None:
        sized = size_order(qty=qty, spec=spec)
        if not sized.ok:   # every order would be refused: say so now, not after the replay
            where = "--qty" if qty_option else f"qty of bot {bot}"
            raise BadInput(f"{sized.detail}; no order could be sent", where=where,
                           fix=f"use a qty of {spec.volume_min:g} or more (a multiple of {spec.volume_step:g})")
    return Setup(symbol=name, spec=spec, strategies=tuple(names), params=params,
                 lookback=lookback, qty=qty, rules=rules, balance=float(balance)), bot


def summarize(result: BacktestResult) -> dict:
    """The outcome: totals and per strategy (signals, approved, rejected by reason, trade statistics)."""
    s = result.setup
    signals = Counter(x.strategy for x in result.signals)
    trades = result.trade_log.columns()
    pnls: dict[str, list[float]] = {name: [] for name in s.strategies}
    for strategy, pnl in zip(trades["strategy"], trades["pnl"]):
        pnls[strategy].append(pnl)
    per_strategy = {}
    for name in s.strategies:
        decided = result.decisions[name]
        per_strategy[name] = _row(signals[name], decided, pnls[name])
    decisions: Counter[str] = Counter()
    for decided in result.decisions.values():
        decisions.update(decided)
    totals = _row(len(result.signals), decisions, trades["pnl"])
    return {
        "symbol": s.symbol, "strategies": list(s.strategies), "lookback": s.lookback, "qty": s.qty,
        "risk_percent": s.rules.risk_percent, "bars": result.bars,
        "from": bar_iso(result.start) if result.start is not None else None,
        "to": bar_iso(result.end) if result.end is not None else None,
        "start_balance": rounding.money(s.balance), "final_balance": rounding.money(result.final_balance),
        "currency": s.spec.currency, "digits": s.spec.digits,
        "totals": totals, "per_strategy": per_strategy,
        "broker_refused": dict(result.refused),
        "exit_reasons": dict(Counter(trades["exit_reason"]).most_common()),
        "trailing_stop_moves": result.trailed,
        "kill_switches": [{"time": bar_iso(k.time), "source": k.source, "reason": k.reason,
                           "positions_closed": k.positions_closed} for k in result.kill_switches],
    }


def trade_row(t: Trade, digits: int | None = None) -> dict:
    """A trade as written out: prices to the symbol's digits, P&L to cents."""
    p = rounding.price
    return {"signal_time": bar_iso(t.signal_time), "entry_time": bar_iso(t.entry_time),
            "exit_time": bar_iso(t.exit_time), "strategy": t.strategy, "direction": t.direction,
            "volume": rounding.volume(t.volume), "entry": p(t.entry, digits), "exit": p(t.exit, digits),
            "sl": p(t.sl, digits), "tp": p(t.tp, digits), "final_sl": p(t.final_sl, digits),
            "exit_reason": t.exit_reason, "pnl": rounding.money(t.pnl)}


def trades_to_rows(trades: list[Trade] | TradeLog, digits: int | None = None) -> list[dict]:
    """`trade_row` of every trade, column by column (times formatted and numbers rounded
    by numpy and one call per column, not per value); a TradeLog's columns are read as they are."""
    from scalper.clock import format_bar_times

    if not len(trades):
        return []
    log = trades if isinstance(trades, TradeLog) else TradeLog(trades)
    column = log.columns()
    p = rounding.MONEY_DECIMALS if digits is None else digits

    def times(name: str) -> list[str]:
        return format_bar_times(np.array(column[name], dtype=np.int64))

    def numbers(name: str, decimals: int) -> list:
        return rounding.values(column[name], decimals)

    columns = [times("signal_time"), times("entry_time"), times("exit_time"), column["strategy"],
               column["direction"], numbers("volume", rounding.VOLUME_DECIMALS), numbers("entry", p),
               numbers("exit", p), numbers("sl", p), numbers("tp", p), numbers("final_sl", p),
               column["exit_reason"], numbers("pnl", rounding.MONEY_DECIMALS)]
    return [dict(zip(TRADE_FIELDS, row)) for row in zip(*columns)]


def _row(signals: int, decided: Counter, pnls: list[float]) -> dict:
    """Signals, approved, rejected (in all and by reason), then the trade statistics:
    the same shape as a row of `scalper report`."""
    rejected = dict(sorted(((r, n) for r, n in decided.items() if r != APPROVED), key=lambda rn: (-rn[1], rn[0])))
    return {"signals": signals, "approved": decided[APPROVED], "rejected_total": sum(rejected.values()),
            "rejected": rejected, **rounding.stats_row(stats.summarize(pnls).to_dict())}


def _chart(path: str, history, result: BacktestResult) -> None:
    from scalper.report import charts

    s = result.setup
    replayed = history.between(result.start, result.end) if result.bars else history.slice(0, 0)
    traded = {(t.signal_time, t.strategy) for t in result.trades}
    marks = [charts.SignalMark(x.bar_time, x.entry, x.direction, (x.bar_time, x.strategy) in traded)
             for x in result.signals]
    trades = [charts.TradeMark(t.entry_time, t.entry, t.exit_time, t.exit, t.direction, t.pnl, t.final_sl, t.tp)
              for t in result.trades]
    replayed_span = (result.start, result.end) if result.start is not None and result.end is not None else None
    equity: list[tuple[float, float]] = [(float(replayed_span[0]), s.balance)] if replayed_span else []
    equity += stats.equity_curve(((t.exit_time, t.pnl) for t in result.trades), s.balance)
    span = (float(replayed_span[0]), float(replayed_span[1]) + 60) if replayed_span else None
    charts.draw(path, title=f"backtest {s.symbol} ({', '.join(s.strategies)}): {len(result.trades):,} trades, "
                            f"net {result.final_balance - s.balance:,.2f} {s.spec.currency}",
                bars=replayed, signals=marks, trades=trades, equity=equity, symbol=s.symbol,
                digits=s.spec.digits, currency=s.spec.currency, span=span, equity_label="equity")
