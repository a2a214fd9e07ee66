"""Command definitions. Each one: parse options → one service call → render."""

from __future__ import annotations

import typer

from scalper.cli import render
from scalper.cli.common import ConfigOpt, JsonOpt, LedgerOpt, emit_json, number, out_console
from scalper.cli.plain import BACKTEST, MIN_LOOKBACK
from scalper.cli.typer_app import app

LIMITS = BACKTEST.numbers   # the number options' ranges, read by the plain reader as well


@app.command("run-once")
def run_once(
    bot: list[str] | None = typer.Option(None, "--bot", "-b", metavar="NAME", help="Run only this bot (repeatable)."),
    now: str | None = typer.Option(None, "--now", metavar="ISO",
                                      help="Evaluate as if the clock were at this instant (csv/builtin feed and "
                                           "paper broker only), to replay history minute by minute."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Record nothing and send nothing; show what would happen."),
    allow_backwards: bool = typer.Option(False, "--allow-backwards",
                                         help="Let --now go earlier than the ledger's last run (refused otherwise)."),
    host: str | None = typer.Option(None, "--host", metavar="NAME",
                                       help="Run the bots and accounts of this terminal host (`host:` of the "
                                            "accounts in bots.yaml).  [default: local]"),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt, as_json: bool = JsonOpt,
) -> int:
    """One engine pass: bars → strategies → ledger → risk → orders → position upkeep.

    Every enabled bot with engine_mode: scalper is run. Exit codes: 0 done, 1 unexpected failure, 2 bad input,
    3 broker or feed unavailable, 75 another run-once holds the lock.
    """
    from scalper.cli.run_once import run  # also run without typer for a plain line (scalper.cli.main)

    return run(bot=bot, now=now, dry_run=dry_run, allow_backwards=allow_backwards, config=config,
               ledger=ledger, as_json=as_json, host=host)


@app.command("scan")
def scan(
    data: str = typer.Option(..., "--data", metavar="FILE.csv",
                             help="A CSV bar file (time, open, high, low, close[, volume, spread])."),
    symbol: str | None = typer.Option(None, "--symbol", metavar="SYMBOL",
                                      help="Symbol the file holds (for a bot's parameters)."),
    bot: str | None = typer.Option(None, "--bot", metavar="NAME",
                                   help="Use this bot's strategies, parameters and lookback."),
    strategies: str | None = typer.Option(None, "--strategies", help="Comma-separated strategy names.",
                                             metavar="a,b"),
    since: str | None = typer.Option(None, "--from", metavar="ISO", help="First signal bar time (file clock)."),
    until: str | None = typer.Option(None, "--to", metavar="ISO", help="Last signal bar time (file clock)."),
    out: str | None = typer.Option(None, "--out", help="Write the signals to this CSV file.", metavar="FILE.csv"),
    lookback: int | None = typer.Option(None, "--lookback", metavar="BARS", min=MIN_LOOKBACK,
                                        help="Window length in bars [default: 100]."),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows", help="Skip bad rows of the file with a warning."),
    config: str | None = ConfigOpt, as_json: bool = JsonOpt,
) -> int:
    """Every raw strategy signal (before risk) a history holds, with counts and skip reasons.

    Rows: bar_time,strategy,direction,entry,sl,tp,score (bar_time on the file's own clock).
    """
    from scalper.cli.plain import scan as run  # also run without typer for a plain line (scalper.cli.main)

    return run(data=data, symbol=symbol, bot=bot, strategies=strategies, since=since, until=until, out=out,
               lookback=lookback, skip_bad_rows=skip_bad_rows, config=config, as_json=as_json)


@app.command("setup-bot")
def setup_bot(
    symbol: str = typer.Option(..., "--symbol", metavar="SYMBOL", help="Broker symbol, e.g. XAUUSD, XAUUSDm, EURUSD."),
    name: str | None = typer.Option(None, "--name", metavar="NAME",
                                       help="Bot name [default: the symbol in lower case + -scalper, "
                                            "e.g. xauusd-scalper]."),
    update: bool = typer.Option(False, "--update", help="Allow changing the symbol of an existing bot of that name."),
    user_id: int | None = typer.Option(None, "--user-id", metavar="N", help="Owner's user id (kept for reports)."),
    account_id: list[int] | None = typer.Option(None, "--account-id", metavar="ID",
                                                help="Broker account id (repeatable)."),
    auto_trade: bool | None = typer.Option(None, "--auto-trade/--no-auto-trade",
                                              help="Send orders, or only record signals and decisions."),
    strategies: str | None = typer.Option(None, "--strategies", metavar="a,b,c",
                                             help="Strategies in order [default: all four]."),
    qty: float | None = typer.Option(None, "--qty", metavar="LOTS",
                                     help="Lots per order [default: 0.01 metals, 0.10 FX]."),
    config: str | None = ConfigOpt, as_json: bool = JsonOpt,
) -> int:
    """Add a bot to bots.yaml, or update the bot of that name, keeping the file's comments.

    A bot of that name trading another symbol is refused unless --update is given. The file is
    validated first, then replaced atomically; the previous version is kept as bots.yaml.bak.
    A read-only file is refused (exit 2, nothing written).
    """
    from scalper.services.setup import setup_bot as service

    bot, created, path, changed = service(config=config, symbol=symbol, name=name, user_id=user_id,
                                          account_ids=account_id, auto_trade=auto_trade, strategies=strategies,
                                          qty=qty, update=update)
    if as_json:
        emit_json({"created": created, "changed": changed, "config": str(path), "bot": bot})
    else:
        render.bot(out_console(False), bot, created, path, changed=changed)
    return 0


@app.command("report")
def report(
    since: str = typer.Option("24h", "--since", metavar="SPAN",
                              help="How far back: 30m, 24h, 7d or an ISO time (UTC)."),
    bot: str | None = typer.Option(None, "--bot", metavar="NAME", help="Only this bot."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the per-strategy table as CSV on stdout "
                                                     "(with --journal: the closed trades)."),
    journal: bool = typer.Option(False, "--journal", help="List every closed trade (entry/exit time and price, "
                                                          "R multiple, time held, exit reason, P&L), not only "
                                                          "the last 20; with --csv, as CSV."),
    chart: str | None = typer.Option(None, "--chart", metavar="FILE.png",
                                        help="Draw the equity curve, with signals and trades over price candles "
                                             "when the config's csv/builtin feed has the bars."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt, as_json: bool = JsonOpt,
) -> int:
    """Signals, decisions and orders side by side; per strategy: signals, approved, rejected by reason, trades,
    win rate, profit factor, net P&L, max drawdown; daily P&L; open positions.

    Reads the ledger only (never writes it). Exit 2 when there is no ledger at the path.
    """
    from scalper.errors import BadInput
    from scalper.services.report import report as service

    if as_json and as_csv:
        raise BadInput("--json and --csv exclude each other", where="--csv", fix="pass one of them")
    doc = service(config=config, ledger=ledger, since=since, bot=bot, chart=chart)
    if as_json:
        emit_json(doc)
    elif as_csv:
        render.journal_csv(doc["trades"]) if journal else render.report_csv(doc)
    else:
        render.report(out_console(False), doc, all_trades=journal)
    return 0


@app.command("backtest")
def backtest(
    data: str = typer.Option(..., "--data", metavar="FILE.csv",
                             help="A CSV bar file (time, open, high, low, close[, volume, spread])."),
    bot: str | None = typer.Option(None, "--bot", metavar="NAME", help="Replay this bot of bots.yaml: its strategies, "
                                                          "parameters, lookback, qty and risk settings."),
    symbol: str | None = typer.Option(None, "--symbol", metavar="SYMBOL",
                                      help="Replay this symbol with the default settings."),
    strategies: str | None = typer.Option(None, "--strategies", metavar="a,b",
                                             help="Comma-separated strategy names, in order."),
    since: str | None = typer.Option(None, "--from", metavar="ISO", help="First signal bar time (file clock)."),
    until: str | None = typer.Option(None, "--to", metavar="ISO", help="Last bar replayed (file clock)."),
    signals_out: str | None = typer.Option(None, "--signals-out", metavar="FILE.csv",
                                              help="Write every raw signal (before risk), as scan does."),
    trades_out: str | None = typer.Option(None, "--trades-out", metavar="FILE.csv", help="Write the trades."),
    chart: str | None = typer.Option(None, "--chart", metavar="FILE.png",
                                        help="Draw the last bars with signals and trades, and the equity curve."),
    balance: float | None = typer.Option(None, "--balance", parser=number(*LIMITS["balance"]), metavar="MONEY",
                                            help="Starting balance (default: the bot's paper balance, else 10000)."),
    qty: float | None = typer.Option(None, "--qty", parser=number(*LIMITS["qty"]), metavar="LOTS",
                                        help="Lots per order (default: the bot's, else 0.01 metals, 0.10 FX)."),
    lookback: int | None = typer.Option(None, "--lookback", metavar="BARS", min=MIN_LOOKBACK,
                                        help="Window length in bars (default: the bot's, else 100)."),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows", help="Skip bad rows of the file with a warning."),
    spread: float | None = typer.Option(None, "--spread", parser=number(*LIMITS["spread"]), metavar="POINTS",
                                           help="Spread in points for every bar, instead of the file's spread "
                                                "column or the symbol's typical spread (0: no costs)."),
    no_trailing: bool = typer.Option(False, "--no-trailing", help="Turn the trailing stop off."),
    leverage: float | None = typer.Option(None, "--leverage", parser=number(*LIMITS["leverage"]), metavar="RATIO",
                                             help="Account leverage (1:RATIO) for the margin check: an order needs "
                                                  "volume × contract size × price / RATIO of free margin "
                                                  "(default 100, as the paper broker)."),
    config: str | None = ConfigOpt, as_json: bool = JsonOpt,
) -> int:
    """Replay history through the same strategies, risk rules and position upkeep as run-once.

    Prints trades, win rate, profit factor, expectancy, max drawdown and net P&L, in all and per strategy,
    and the rejections by reason. Fills follow the paper broker: the next bar's open plus or minus half the
    spread; SL/TP checked on each later bar. The kill-switch re-arms at the next UTC midnight.
    An order the free margin cannot hold is refused (broker_no_money); a book whose equity falls to zero
    is closed at the quote (stop_out).
    """
    from scalper.cli.plain import backtest as run  # also run without typer for a plain line (scalper.cli.main)

    return run(data=data, bot=bot, symbol=symbol, strategies=strategies, since=since, until=until,
               signals_out=signals_out, trades_out=trades_out, chart=chart, balance=balance, qty=qty,
               lookback=lookback, skip_bad_rows=skip_bad_rows, spread=spread, no_trailing=no_trailing,
               leverage=leverage, config=config, as_json=as_json)


# Imported last: these modules register their commands on `app`, defined above (they import it from here).
from scalper.cli import (  # noqa: E402
    bridge,  # noqa: F401  (terminal-server)
    fleet_cmd,  # noqa: F401  (worker, beat)
    ledger_cmd,  # noqa: F401  (ledger migrate)
    notify_cmd,  # noqa: F401  (notify test)
    ops,  # noqa: F401  (operator commands: status, kill-switch, rollback, …)
    optimize_cmd,  # noqa: F401  (scalper optimize)
)
