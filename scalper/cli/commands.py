"""Command definitions. Each one: parse options → one service call → render."""

from __future__ import annotations

from typing import List, Optional

import typer

from scalper.cli import app
from scalper.cli.common import ConfigOpt, JsonOpt, LedgerOpt, emit_json, not_yet, out_console
from scalper.cli import render


@app.command("run-once")
def run_once(
    bot: Optional[List[str]] = typer.Option(None, "--bot", "-b", help="Run only this bot (repeatable)."),
    now: Optional[str] = typer.Option(None, "--now", metavar="ISO",
                                      help="Evaluate as if the clock were at this instant (csv/builtin feed and "
                                           "paper broker only), to replay history minute by minute."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Record nothing and send nothing; show what would happen."),
    config: Optional[str] = ConfigOpt, ledger: Optional[str] = LedgerOpt, as_json: bool = JsonOpt,
) -> int:
    """One engine pass: bars → strategies → ledger → risk → orders → position upkeep.

    Every enabled bot with engine_mode: scalper is run. Exit codes: 0 done, 2 bad input, 3 broker or feed unavailable, 75 another run-once holds the lock.
    """
    from scalper.services.run import run_once as service

    summary = service(config=config, ledger=ledger, now=now, dry_run=dry_run, bots=bot or None)
    if as_json:
        emit_json(summary.to_dict())
    else:
        render.run_summary(out_console(False), summary)
    return summary.exit_code


@app.command("scan")
def scan(
    data: str = typer.Option(..., "--data", help="A CSV bar file (time, open, high, low, close[, volume, spread])."),
    symbol: Optional[str] = typer.Option(None, "--symbol", help="Symbol the file holds (for a bot's parameters)."),
    bot: Optional[str] = typer.Option(None, "--bot", help="Use this bot's strategies, parameters and lookback."),
    strategies: Optional[str] = typer.Option(None, "--strategies", help="Comma-separated strategy names.",
                                             metavar="a,b"),
    since: Optional[str] = typer.Option(None, "--from", metavar="ISO", help="First signal bar time (file clock)."),
    until: Optional[str] = typer.Option(None, "--to", metavar="ISO", help="Last signal bar time (file clock)."),
    out: Optional[str] = typer.Option(None, "--out", help="Write the signals to this CSV file.", metavar="FILE.csv"),
    lookback: Optional[int] = typer.Option(None, "--lookback", min=15, help="Window length in bars [default: 100]."),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows", help="Skip bad rows of the file with a warning."),
    config: Optional[str] = ConfigOpt, as_json: bool = JsonOpt,
) -> int:
    """Every raw strategy signal (before risk) a history holds, with counts and skip reasons.

    Rows: bar_time,strategy,direction,entry,sl,tp,score (bar_time on the file's own clock).
    """
    from scalper.services.scan import run_scan

    result = run_scan(data=data, symbol=symbol, bot=bot, strategies=strategies, since=since, until=until,
                      out=out, lookback=lookback, skip_bad_rows=skip_bad_rows, config=config)
    if as_json:
        emit_json(result)
    else:
        render.scan_summary(out_console(False), result)
    return 0


@app.command("setup-bot")
def setup_bot(
    symbol: str = typer.Option(..., "--symbol", help="Broker symbol, e.g. XAUUSD, XAUUSDm, EURUSD."),
    name: Optional[str] = typer.Option(None, "--name", help="Bot name [default: <symbol>-scalper]."),
    user_id: Optional[int] = typer.Option(None, "--user-id", help="Owner's user id (kept for reports)."),
    account_id: Optional[List[int]] = typer.Option(None, "--account-id", help="Broker account id (repeatable)."),
    auto_trade: Optional[bool] = typer.Option(None, "--auto-trade/--no-auto-trade",
                                              help="Send orders, or only record signals and decisions."),
    strategies: Optional[str] = typer.Option(None, "--strategies", metavar="a,b,c",
                                             help="Strategies in order [default: all four]."),
    qty: Optional[float] = typer.Option(None, "--qty", help="Lots per order [default: 0.01 metals, 0.10 FX]."),
    config: Optional[str] = ConfigOpt, as_json: bool = JsonOpt,
) -> int:
    """Add a bot to bots.yaml, or update the bot of that name, keeping the file's comments."""
    from scalper.services.setup import setup_bot as service

    bot, created, path = service(config=config, symbol=symbol, name=name, user_id=user_id,
                                 account_ids=account_id, auto_trade=auto_trade, strategies=strategies, qty=qty)
    if as_json:
        emit_json({"created": created, "config": str(path), "bot": bot})
    else:
        render.bot(out_console(False), bot, created, path)
    return 0


@app.command("report")
def report(config: Optional[str] = ConfigOpt, ledger: Optional[str] = LedgerOpt, as_json: bool = JsonOpt) -> None:
    """Signals, decisions, orders and P&L per strategy; daily P&L; open positions."""
    not_yet("report")


@app.command("backtest")
def backtest() -> None:
    """Replay history through the same strategies, risk rules and position upkeep as run-once."""
    not_yet("backtest")


from scalper.cli import ops  # noqa: E402,F401  (operator commands: status, kill-switch, rollback, …)
