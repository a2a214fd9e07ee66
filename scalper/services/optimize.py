"""`scalper optimize`: search strategy (and risk) parameters on history with the
backtester, optionally walk-forward, and judge how likely the winner is an
accident of the search (PBO, deflated Sharpe). One JSON-ready document out.

optuna is imported here only (the `optimize` extra): never on run-once's path.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

from scalper.errors import BadInput
from scalper.optimize import overfit
from scalper.optimize.search import OBJECTIVES, Progress, Runner, fingerprint, graceful_interrupt, run_search

GENUINE = "likely genuine"   # the one verdict that backs the winner (scalper.optimize.overfit.verdict_words)
INSTALL_FIX = "pip install 'optuna>=3.6' (or, in the scalper checkout, pip install '.[optimize]')"


def optimize(*, data: str, space: str, bot: str | None = None, symbol: str | None = None,
             strategies: str | None = None, trials: int = 100, objective: str = "expectancy", min_trades: int = 30,
             walk_forward: int | None = None, anchored: bool = False, jobs: int = 1, seed: int | None = 0,
             study: str | None = None, chart: str | None = None, apply: bool = False, balance: float | None = None,
             qty: float | None = None, lookback: int | None = None, skip_bad_rows: bool = False,
             config: str | None = None, progress: Progress | None = None) -> dict:
    from scalper.feeds.csvfile import read_bars
    from scalper.optimize.evaluate import BacktestEvaluator
    from scalper.optimize.space import parse_space
    from scalper.services.backtest import resolve_setup

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise BadInput("scalper optimize needs optuna, which is not installed", where="optimize",
                       fix=INSTALL_FIX) from None
    if objective not in OBJECTIVES:
        raise BadInput(f"unknown objective {objective!r}", where="--objective",
                       fix=f"use one of: {', '.join(OBJECTIVES)}")
    if trials < 1:
        raise BadInput(f"--trials {trials}: at least 1", where="--trials", fix="e.g. --trials 100")
    if jobs < 1:
        raise BadInput(f"--jobs {jobs}: at least 1", where="--jobs", fix="e.g. --jobs 2 (one per core)")
    if anchored and not walk_forward:
        raise BadInput("--anchored needs --walk-forward K", where="--anchored",
                       fix="add --walk-forward 4, or drop --anchored")
    if apply and not bot:
        raise BadInput("--apply writes into a bot of bots.yaml: it needs --bot NAME", where="--apply",
                       fix="run with --bot NAME, or drop --apply")
    if chart:
        from scalper.report import charts

        charts.require()
    setup, bot_name = resolve_setup(bot=bot, symbol=symbol, strategies=strategies, balance=balance, qty=qty,
                                    lookback=lookback, config=config)
    dims = parse_space(space, setup)
    from scalper.memory import reuse_freed_memory

    reuse_freed_memory()   # many replays over large arrays follow
    history, warnings = read_bars(data, skip_bad_rows=skip_bad_rows)
    n = len(history)
    first = max(setup.lookback - 1, 0)
    if n - first < 2 * 60:
        raise BadInput(f"{data} holds {n:,} bars: too few to search on with lookback {setup.lookback}",
                       path=str(data), fix="give a longer history")
    folds = []
    if walk_forward:
        from scalper.optimize.walkforward import make_folds

        try:
            folds = make_folds(n, setup.lookback, walk_forward, anchored)
        except ValueError as exc:
            raise BadInput(str(exc), where="--walk-forward") from None
    storage = _storage(study)
    digest = hashlib.sha256(history.time.tobytes() + history.close.tobytes() + history.high.tobytes()
                            + history.low.tobytes()).hexdigest()[:16]
    stamp = fingerprint(digest, repr(setup), [d.describe() for d in dims], objective, min_trades,
                        walk_forward, anchored)
    total = trials * max(1, len(folds))

    began = time.perf_counter()
    evaluator = BacktestEvaluator(history, setup, dims)
    fold_results, search = [], None
    with graceful_interrupt() as stop, Runner(evaluator, jobs) as runner:
        if folds:
            from scalper.optimize.walkforward import run_fold

            for k, fold in enumerate(folds):
                fold_results.append(run_fold(runner, dims, fold, trials=trials, seed=seed, objective=objective,
                                             min_trades=min_trades, storage=storage, stamp=stamp, stop=stop,
                                             progress=progress, done_before=k * trials, total=total))
                if stop.requested:
                    break
            chosen = next((r.chosen for r in reversed(fold_results) if r.chosen is not None), None)
            equity_trades = None
        else:
            search = run_search(runner, dims, start=first, end=n - 1, trials=trials, seed=seed, objective=objective,
                                min_trades=min_trades, study_name="search", storage=storage, stamp=stamp, stop=stop,
                                progress=progress, total=total)
            chosen = search.best
            equity_trades = (runner.map(first, n - 1, [chosen.values], type(stop)(), trades=True)[0]["trades"]
                             if chosen is not None else [])
        interrupted = stop.requested
    duration = time.perf_counter() - began

    doc: dict[str, Any] = {
           "data": str(data), "bot": bot_name, "symbol": setup.symbol, "strategies": list(setup.strategies),
           "lookback": setup.lookback, "bars": n, "objective": objective, "min_trades": min_trades,
           "space": [d.describe() for d in dims], "trials_asked": trials, "jobs": jobs, "seed": seed,
           "study": study, "walk_forward": walk_forward, "anchored": anchored, "interrupted": interrupted,
           "duration_s": round(duration, 3), "warnings": warnings}
    if folds:
        doc.update(_walk_forward_doc(history, setup, fold_results))
        all_trials = [dict(t.to_dict(), fold=r.fold.number) for r in fold_results for t in r.search.trials]
    else:
        assert search is not None and equity_trades is not None   # the whole-history search ran
        doc.update(_search_doc(search))
        all_trials = [t.to_dict() for t in search.trials]
        equity = [(float(history.time[first]), setup.balance)]
        total_pnl = setup.balance
        for when, pnl in equity_trades:
            total_pnl += pnl
            equity.append((when, total_pnl))
        doc["equity"] = equity
    doc["chosen"] = chosen.values if chosen is not None else None
    doc["chosen_from"] = (f"fold {fold_results[-1].fold.number} (the most recent in-sample window)" if folds
                          else "the whole history")
    doc["trials"] = all_trials
    doc["best_trials"] = sorted((t for t in all_trials if t["value"] is not None),
                                key=lambda t: -t["value"])[:10]
    if bot_name and chosen is not None:
        # An interrupted search shows its best so far but never writes it: rerun to finish.
        doc["change"] = _change(config, bot_name, dims, chosen.values, apply and not interrupted)
        doc["change"]["refused_interrupted"] = bool(apply and interrupted)
        verdict = doc["verdict"]
        if doc["change"]["applied"] and verdict["label"] != GENUINE:
            # written as asked, but a trader must not miss that nothing shows these parameters earn
            doc["change"]["warning"] = (
                f"--apply wrote parameters the search did not show to have an edge (verdict: {verdict['label']}). "
                f"{verdict['text']} Keep the bot on paper or auto_trade: false until it proves itself, or undo "
                f"with the .bak beside {doc['change']['config']}.")
            doc["warnings"] = [*doc["warnings"], doc["change"]["warning"]]
    else:
        doc["change"] = None
    if chart:
        doc["chart"] = _chart(chart, doc, setup, history, folds, dims)
    return doc


def _storage(study: str | None):
    if not study:
        return None
    import optuna

    path = Path(study).expanduser().resolve()
    if not path.parent.is_dir():
        raise BadInput(f"the folder of --study {study} does not exist", where="--study", fix="create it first")
    # One writer (this process; the workers only evaluate), so SQLite needs no journal tricks.
    return optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 30}})


def _judge(search, chosen) -> dict:
    distinct = search.distinct()
    if not distinct:
        return {"pbo": None, "dsr": None, "notes": ["no finished trial"], "configurations": 0}
    if chosen is None:
        return {"pbo": None, "dsr": None, "configurations": len(distinct),
                "notes": [f"no trial reached --min-trades ({search.min_trades} trades): lower it, widen the "
                          "space or give more data"]}
    lengths = {len(t.periods) for t in distinct}
    usable = [t for t in distinct if len(t.periods) == max(lengths)]
    if chosen.values not in [t.values for t in usable]:
        return {"pbo": None, "dsr": None, "notes": ["the winner's returns are missing"],
                "configurations": len(distinct)}
    key = [t.values for t in usable].index(chosen.values)
    return overfit.judge([t.periods for t in usable], key)


def _search_doc(search) -> dict:
    best = search.best
    judged = _judge(search, best)
    pbo = judged["pbo"]["pbo"] if judged["pbo"] else None
    dsr = judged["dsr"]["dsr"] if judged["dsr"] else None
    label, words = overfit.verdict_words(pbo, dsr)
    return {"trials_done": len(search.trials), "trials_resumed": search.resumed,
            "space_points": search.space_points, "space_exhausted": search.exhausted,
            "repeats_not_rerun": search.repeats,
            "best": best.to_dict() if best else None,
            "verdict": {"label": label, "text": words, **judged}}


def _walk_forward_doc(history, setup, results) -> dict:
    from scalper.optimize.walkforward import summary

    folds: list[dict[str, Any]] = []
    equity: list[tuple[float, float]] = []
    balance = setup.balance
    pbos, last_judged = [], None
    for r in results:
        judged = _judge(r.search, r.chosen)
        last_judged = judged
        if judged["pbo"]:
            pbos.append(judged["pbo"]["pbo"])
        row = r.fold.to_dict(history.time)
        wfe = r.wfe()
        row.update(trials_done=len(r.search.trials), trials_resumed=r.search.resumed,
                   chosen=r.chosen.values if r.chosen else None,
                   in_sample={"from": row["in_sample"][0], "to": row["in_sample"][1],
                              "value": r.chosen.to_dict()["value"] if r.chosen else None,
                              **(_figures(r.chosen.metrics, r.chosen.sharpe) if r.chosen else {})},
                   out_of_sample=dict({"from": row["out_of_sample"][0], "to": row["out_of_sample"][1]},
                                      **(_figures(r.oos["metrics"], r.oos["sharpe"]) if r.oos else {})),
                   walk_forward_efficiency=None if wfe is None else round(wfe, 4),
                   pbo=judged["pbo"]["pbo"] if judged["pbo"] else None,
                   dsr=judged["dsr"]["dsr"] if judged["dsr"] else None)
        folds.append(row)
        if r.oos is not None:
            if not equity:
                equity.append((float(history.time[r.fold.oos_start]), balance))
            for when, pnl in r.oos_trades:
                balance += pnl
                equity.append((when, balance))
    totals = summary(results)
    pbo = sum(pbos) / len(pbos) if pbos else None
    dsr = last_judged["dsr"]["dsr"] if last_judged and last_judged["dsr"] else None
    label, words = overfit.verdict_words(pbo, dsr, totals["walk_forward_efficiency"],
                                         totals["out_of_sample_net"] if totals["folds_done"] else None)
    return {"folds": folds, "walk_forward_totals": totals | {"folds": len(results)},
            "trials_done": sum(len(r.search.trials) for r in results),
            "best": results[-1].chosen.to_dict() if results and results[-1].chosen else None,
            "equity": equity, "fold_boundaries": [(float(history.time[r.fold.oos_start]), f"fold {r.fold.number}")
                                                  for r in results],
            "verdict": {"label": label, "text": words,
                        "pbo": {"pbo": pbo, "per_fold": pbos} if pbo is not None else None,
                        "dsr": last_judged["dsr"] if last_judged else None,
                        "notes": (last_judged or {}).get("notes", [])}}


def _figures(metrics: dict, sharpe: float) -> dict:
    keys = ("trades", "win_rate", "profit_factor", "expectancy", "net_pnl", "max_drawdown")
    out = {k: metrics.get(k) for k in keys}
    if isinstance(out["profit_factor"], float) and math.isinf(out["profit_factor"]):
        out["profit_factor"] = None
    out["sharpe"] = sharpe
    return out


def _change(config: str | None, bot: str, dims, values: dict, apply: bool) -> dict:
    from scalper import wiring
    from scalper.optimize import apply as applying

    path = wiring.config_path(config)
    before, after = applying.propose(path, bot, dims, values)
    diff = applying.diff(path, before, after)
    written = False
    if apply and before != after:
        applying.write(path, after)
        written = True
    return {"config": str(path), "diff": diff, "applied": written, "unchanged": before == after}


def _chart(path: str, doc: dict, setup, history, folds, dims) -> str:
    from scalper.optimize import chart

    if folds:
        label, title = "out-of-sample equity", f"walk-forward {setup.symbol}: {', '.join(setup.strategies)}"
        boundaries = doc["fold_boundaries"]
    else:
        label, title = "equity of the winner (in sample)", f"search {setup.symbol}: {', '.join(setup.strategies)}"
        boundaries = []
    chart.draw(path, title=f"{title} — {doc['objective']}, {doc['trials_done']} trials", equity=doc["equity"],
               equity_label=label, boundaries=boundaries, trials=doc["trials"], params=[d.name for d in dims],
               objective=doc["objective"], chosen=doc["chosen"])
    return path
