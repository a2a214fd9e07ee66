"""The parameter search: optuna's seeded TPE asks, the backtest answers.

Parallelism (`--jobs J`): the sampler and the study's storage stay in this
process; J worker processes (a ProcessPoolExecutor, spawned) each hold the bars
and the strategies' cached indicators, and evaluate the trials asked. Trials are
asked J at a time and told in the order asked, so with a given `--seed` and
`--jobs` the search is reproducible (J processes each running study.optimize on
shared storage would interleave by timing instead), and only one process ever
writes the SQLite study (no lock contention; resumable as optuna stores it).

Ctrl-C: the first stops asking; the trials running finish and are told, so
every finished trial is kept and the best so far is reported. A second Ctrl-C
aborts at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import signal
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from scalper.optimize.space import Dimension, grid_size

OBJECTIVES = ("expectancy", "profit_factor", "sharpe", "net")
REPEAT_OF = "repeat_of"        # user attribute of a trial that proposed an already-tried point
MAX_REPEATS_IN_A_ROW = 200     # proposals of tried points in a row before the search counts as done
PERIOD_BARS = 60           # the returns series for Sharpe, PBO and DSR: P&L per 60 bars…
MAX_PERIODS = 1024         # …or per longer stretch, so that there are at most this many periods

Progress = Callable[[int, int, str], None]    # (trials done, trials in all, what is going on)


class Evaluator(Protocol):
    """What the search runs: the outcome of `values` on bars [start, end] (indexes, inclusive)."""

    def evaluate(self, start: int, end: int, values: Mapping[str, float], trades: bool = False) -> dict: ...


def period_edges(start: int, end: int) -> np.ndarray:
    """Bar indexes where each period of the window [start, end] begins, and end + 1."""
    count = end - start + 1
    size = max(PERIOD_BARS, math.ceil(count / MAX_PERIODS))
    edges = np.arange(start, end + 1, size)
    if len(edges) > 1 and end + 1 - edges[-1] < size // 2:
        edges = edges[:-1]                 # a short last period joins the one before
    return np.append(edges, end + 1)


def outcome(pnls: list[float], exit_times: list[float], edge_times: np.ndarray) -> dict:
    """Trade statistics plus the per-period P&L series (trades counted in the period they closed)."""
    from scalper.optimize.overfit import sharpe
    from scalper.report import stats

    periods = np.zeros(len(edge_times) - 1)
    if pnls:
        k = np.clip(np.searchsorted(edge_times, exit_times, side="right") - 1, 0, len(periods) - 1)
        np.add.at(periods, k, pnls)
    doc = stats.summarize(pnls).to_dict()
    if doc["profit_factor"] is None and doc["gross_profit"] > 0:
        doc["profit_factor"] = math.inf
    return {"metrics": doc, "sharpe": sharpe(periods), "periods": [round(float(x), 6) for x in periods]}


def objective_value(result: dict, objective: str, min_trades: int) -> float:
    """The figure maximised; -inf for a trial with too few trades or invalid parameters."""
    if result.get("invalid") or result["metrics"]["trades"] < max(min_trades, 1):
        return -math.inf
    m = result["metrics"]
    value = {"expectancy": m["expectancy"], "profit_factor": m["profit_factor"], "net": m["net_pnl"],
             "sharpe": result["sharpe"]}[objective]
    return -math.inf if value is None else float(value)


# --- worker processes --------------------------------------------------------------
_WORKER: Evaluator | None = None


def _init_worker(evaluator: Evaluator) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides what a Ctrl-C stops
    _WORKER = evaluator


def _evaluate_in_worker(start: int, end: int, values: dict, trades: bool) -> dict:
    assert _WORKER is not None   # set by _init_worker, the pool's initializer
    return _WORKER.evaluate(start, end, values, trades)


class Runner:
    """Evaluates trials in this process (jobs=1) or in a pool of worker processes."""

    def __init__(self, evaluator: Evaluator, jobs: int):
        self.evaluator = evaluator
        self.jobs = max(1, jobs)
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Runner:
        if self.jobs > 1:
            import multiprocessing

            # spawn, not fork: the parent may run a progress-bar thread, and forking threads is unsafe.
            self.pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(self.evaluator,))
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def map(self, start: int, end: int, batch: list[dict], stop: StopFlag, trades: bool = False) -> list[dict]:
        if self.pool is None:
            return [self.evaluator.evaluate(start, end, v, trades) for v in batch]
        futures = [self.pool.submit(_evaluate_in_worker, start, end, v, trades) for v in batch]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        return [f.result() for f in futures]


class StopFlag:
    requested = False


@contextmanager
def graceful_interrupt() -> Iterator[StopFlag]:
    """The first Ctrl-C (SIGINT) sets the flag; a second one raises KeyboardInterrupt."""
    flag = StopFlag()
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:          # not the main thread: Ctrl-C is not ours to handle
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


# --- the search ----------------------------------------------------------------------
@dataclass
class TrialRecord:
    number: int
    values: dict               # dimension name -> value
    value: float               # the objective (-inf: too few trades or invalid)
    metrics: dict
    sharpe: float
    periods: list[float]
    note: str | None = None    # why the value is -inf

    def to_dict(self) -> dict:
        return {"number": self.number, "params": self.values,
                "value": None if not math.isfinite(self.value) else self.value, "note": self.note,
                "sharpe": self.sharpe, **{k: _json_num(v) for k, v in self.metrics.items()}}


def _json_num(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


@dataclass
class SearchResult:
    study_name: str
    trials: list[TrialRecord] = field(default_factory=list)   # complete ones, in trial order
    resumed: int = 0            # trials found in the study already
    min_trades: int = 0
    interrupted: bool = False
    space_points: int | None = None   # how many distinct points the space holds (None: continuous)
    exhausted: bool = False           # stopped early: every point of the space was tried
    repeats: int = 0                  # points the sampler proposed again: answered from the first, not re-run

    @property
    def best(self) -> TrialRecord | None:
        scored = [t for t in self.trials if math.isfinite(t.value) or t.value == math.inf]
        return max(scored, key=lambda t: (t.value, -t.number)) if scored else None

    def distinct(self) -> list[TrialRecord]:
        """One trial per distinct parameter set (TPE may ask the same grid point twice)."""
        seen: dict[str, TrialRecord] = {}
        for t in self.trials:
            seen.setdefault(json.dumps(t.values, sort_keys=True), t)
        return list(seen.values())


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_search(runner: Runner, dims: list[Dimension], *, start: int, end: int, trials: int, seed: int | None,
               objective: str, min_trades: int, study_name: str, storage=None, stamp: str = "",
               stop: StopFlag | None = None, progress: Progress | None = None, done_before: int = 0,
               total: int | None = None) -> SearchResult:
    """Search `trials` trials (in all, counting those a resumed study holds) on bars [start, end].

    `stamp` identifies what is searched (data, setup, space, objective); a stored study
    with another stamp is refused (BadInput) rather than mixed in.
    """
    import optuna

    from scalper.errors import BadInput

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stop = stop or StopFlag()
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get("stamp")
    if stored is None:
        study.set_user_attr("stamp", stamp)
    elif stored != stamp:
        raise BadInput(f"the study file already holds a search {study_name!r} of other data, space, "
                       "objective or settings", where="--study",
                       fix="give another --study file (or delete this one) to start a new search")
    result = SearchResult(study_name, min_trades=max(min_trades, 1))
    for done in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if REPEAT_OF not in done.user_attrs:
            result.trials.append(_record(done))
    result.resumed = len(result.trials)
    total = total if total is not None else trials
    distributions = {d.name: _distribution(d) for d in dims}
    result.space_points = grid_size(dims)
    tried = {_key(t.values): t for t in result.trials}

    def report(what: str) -> None:
        if progress is not None:
            best = result.best
            progress(done_before + len(result.trials), total,
                     what + (f" · best {best.value:.4g} (#{best.number})" if best else ""))

    def tell_repeat(trial, first: TrialRecord) -> None:
        # TPE learns the known value; the trial is marked so that a resumed study does not count it
        trial.set_user_attr(REPEAT_OF, first.number)
        study.tell(trial, first.value)
        result.repeats += 1

    report(study_name)
    while len(result.trials) < trials and not stop.requested:
        if result.space_points is not None and len(tried) >= result.space_points:
            result.exhausted = True     # a small stepped space: every point has its backtest
            break
        batch: list[optuna.trial.Trial] = []
        values: list[dict] = []
        repeated_in_batch: list[tuple[optuna.trial.Trial, dict]] = []
        asked_in_vain = 0
        while len(batch) < min(runner.jobs, trials - len(result.trials)) and asked_in_vain < MAX_REPEATS_IN_A_ROW:
            t = study.ask(distributions)
            v = {d.name: d.round(t.params[d.name]) for d in dims}
            if _key(v) in tried:
                tell_repeat(t, tried[_key(v)])
                asked_in_vain += 1
            elif any(v == other for other in values):
                repeated_in_batch.append((t, v))     # told once the batch's backtests are done
                asked_in_vain += 1
            else:
                batch.append(t)
                values.append(v)
                asked_in_vain = 0
        if not batch:
            result.exhausted = True     # the sampler proposes only points already tried
            break
        outcomes = runner.map(start, end, values, stop)
        for t, v, out in zip(batch, values, outcomes):
            value = objective_value(out, objective, min_trades)
            note = out.get("invalid") or (None if math.isfinite(value) or value > 0 else
                                          f"fewer than {max(min_trades, 1)} trades")
            for key in ("metrics", "sharpe", "periods"):
                t.set_user_attr(key, out.get(key))
            t.set_user_attr("values", v)
            if note:
                t.set_user_attr("note", note)
            study.tell(t, value)
            result.trials.append(TrialRecord(t.number, v, value, out["metrics"], out["sharpe"], out["periods"],
                                             note))
            tried[_key(v)] = result.trials[-1]
        for t, v in repeated_in_batch:
            tell_repeat(t, tried[_key(v)])
        report(study_name)
    result.interrupted = stop.requested and len(result.trials) < trials
    return result


def _key(values: dict) -> str:
    return json.dumps(values, sort_keys=True)


def _distribution(d: Dimension):
    import optuna

    if d.integer:
        return optuna.distributions.IntDistribution(int(d.low), int(d.high), step=int(d.step or 1))
    if d.step:
        # optuna wants high - low to be a multiple of step: the last whole step is the top.
        steps = math.floor((d.high - d.low) / d.step + 1e-9)
        return optuna.distributions.FloatDistribution(d.low, d.low + steps * d.step, step=d.step)
    return optuna.distributions.FloatDistribution(d.low, d.high)


def _record(t) -> TrialRecord:
    a = t.user_attrs
    return TrialRecord(t.number, a.get("values") or dict(t.params), t.value, a.get("metrics") or {},
                       a.get("sharpe") or 0.0, a.get("periods") or [], a.get("note"))
