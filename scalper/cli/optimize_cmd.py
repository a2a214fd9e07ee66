"""`scalper optimize`: parse → services.optimize → render (optuna is imported by the service only)."""

from __future__ import annotations

import typer

from scalper.cli.common import ConfigOpt, JsonOpt, emit_json, out_console
from scalper.cli.typer_app import app


@app.command("optimize")
def optimize(
    data: str = typer.Option(..., "--data", help="A CSV bar file (time, open, high, low, close[, volume, spread])."),
    space: str = typer.Option(..., "--space", metavar="SPEC",
                              help="Parameter ranges, comma-separated NAME=LOW..HIGH[:STEP]; NAME is "
                                   "strategy.parameter, risk.decision_min_score, risk.risk_percent, "
                                   "trailing.activate_r or trailing.distance_r. E.g. "
                                   "trend_pullback.rr=1.0..3.0:0.25,trend_pullback.touch_atr=0.05..0.30"),
    bot: str | None = typer.Option(None, "--bot", help="Search around this bot of bots.yaml (its strategies, "
                                                          "parameters, lookback, qty and risk)."),
    symbol: str | None = typer.Option(None, "--symbol", help="Search for this symbol with the default settings."),
    strategies: str | None = typer.Option(None, "--strategies", metavar="a,b",
                                             help="Comma-separated strategy names, in order."),
    trials: int = typer.Option(100, "--trials", min=1, help="Trials in all (per fold with --walk-forward)."),
    objective: str = typer.Option("expectancy", "--objective",
                                  help="What to maximise: expectancy (P&L per trade), profit_factor, sharpe "
                                       "(of the P&L per period), net."),
    min_trades: int = typer.Option(30, "--min-trades", min=0,
                                   help="Trials with fewer trades score nothing (too little evidence)."),
    walk_forward: int | None = typer.Option(None, "--walk-forward", metavar="K", min=1,
                                               help="K folds: search each in-sample window, judge the winner on "
                                                    "the next, unseen one."),
    anchored: bool = typer.Option(False, "--anchored", help="Walk-forward in-sample windows all start at the "
                                                            "beginning (default: rolling, same length)."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes evaluating trials (one per core)."),
    seed: int = typer.Option(0, "--seed", help="Sampler seed: the same seed, data and --jobs give the same search."),
    study: str | None = typer.Option(None, "--study", metavar="FILE",
                                        help="Keep the trials in this SQLite file (optuna's storage); the same "
                                             "command again resumes up to --trials."),
    chart: str | None = typer.Option(None, "--chart", metavar="FILE.png",
                                        help="Draw the out-of-sample equity with fold boundaries and each "
                                             "parameter against the objective."),
    apply: bool = typer.Option(False, "--apply", help="Write the chosen parameters into the bot's strategy_params "
                                                      "in bots.yaml (the change is always shown; written only "
                                                      "with --apply)."),
    balance: float | None = typer.Option(None, "--balance", min=0.01, help="Starting balance."),
    qty: float | None = typer.Option(None, "--qty", min=0.0001, help="Lots per order."),
    lookback: int | None = typer.Option(None, "--lookback", min=15, help="Window length in bars."),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows", help="Skip bad rows of the file with a warning."),
    config: str | None = ConfigOpt, as_json: bool = JsonOpt,
) -> int:
    """Search strategy (and risk) parameters with the backtester, and say how likely the winner is an accident.

    Every trial is a `scalper backtest` replay: the same strategies, risk rules and fill model as run-once.
    optuna's seeded TPE sampler proposes the trials. With --walk-forward K each fold searches its in-sample
    window only and is judged on the next one. The verdict gives the probability of backtest overfitting
    (CSCV) and the deflated Sharpe ratio of the winner. Ctrl-C stops after the running trials and reports the
    best so far (exit 130). Needs optuna: pip install '.[optimize]' in the scalper checkout.
    """
    import sys

    from scalper.cli.render_optimize import summary, trials_progress
    from scalper.services.optimize import optimize as service

    with trials_progress(enabled=not as_json and sys.stderr.isatty()) as progress:
        doc = service(data=data, space=space, bot=bot, symbol=symbol, strategies=strategies, trials=trials,
                      objective=objective, min_trades=min_trades, walk_forward=walk_forward, anchored=anchored,
                      jobs=jobs, seed=seed, study=study, chart=chart, apply=apply, balance=balance, qty=qty,
                      lookback=lookback, skip_bad_rows=skip_bad_rows, config=config, progress=progress)
    if as_json:
        emit_json(doc)
    else:
        summary(out_console(False), doc)
    return 130 if doc["interrupted"] else 0
