"""The optimiser's parts: PBO/DSR known answers, the search finding a planted
edge, the space's checks, walk-forward without look-ahead, --apply's edit."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from scalper.backtest import Setup, run_backtest
from scalper.core.rules import RiskRules
from scalper.core.strategies import resolve_params
from scalper.errors import BadInput
from scalper.feeds.csvfile import read_bars
from scalper.optimize import overfit
from scalper.optimize.search import Runner, outcome, run_search
from scalper.optimize.space import apply, parse_space
from scalper.symbols import spec_for


# --- PBO (CSCV) and the deflated Sharpe ratio ------------------------------------------------
def test_pbo_of_pure_noise_is_near_one_half():
    # One noise matrix's PBO scatters widely (its 12,870 splits are far from independent);
    # over many, the IS winner lands below the OOS median half the time.
    pbos = [overfit.pbo_cscv(np.random.default_rng(seed).normal(0, 1, (480, 30)), 16).pbo for seed in range(30)]
    assert 0.42 <= float(np.mean(pbos)) <= 0.58


def test_pbo_with_one_genuinely_better_configuration_is_low():
    rng = np.random.default_rng(1)
    m = rng.normal(0, 1, (800, 40))
    m[:, 17] += 0.35                          # a real edge, in every period
    result = overfit.pbo_cscv(m, 16)
    assert result.pbo < 0.05
    assert result.splits == 12870 and result.configurations == 40


def test_pbo_counts_an_in_sample_winner_that_fails_out_of_sample():
    # Configuration j is great on block j and poor elsewhere: the IS winner is always
    # the one whose good block fell in sample, and out of sample it is among the worst.
    blocks, size = 8, 10
    m = np.random.default_rng(2).normal(0, 0.01, (blocks * size, blocks)) - 0.1
    for j in range(blocks):
        m[j * size:(j + 1) * size, j] = 1.0
    assert overfit.pbo_cscv(m, blocks).pbo > 0.9


def test_pbo_refuses_what_it_cannot_split():
    with pytest.raises(ValueError):
        overfit.pbo_cscv(np.zeros((20, 3)), 16)
    with pytest.raises(ValueError):
        overfit.pbo_cscv(np.zeros((100, 1)), 16)


def test_deflated_sharpe_matches_the_papers_numerical_example():
    # Bailey & López de Prado (2014): annualised SR 2.5 over T = 1250 daily returns, skew -3,
    # kurtosis 10, after N = 100 trials whose annualised Sharpe ratios vary by V = 0.5:
    # SR0 ≈ 0.1132 per day and DSR ≈ 0.9004.
    sr0 = overfit.expected_max_sharpe(0.5 / 250, 100)
    assert sr0 == pytest.approx(0.1132, abs=5e-4)
    dsr = overfit.probabilistic_sharpe(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=2e-3)


def test_deflated_sharpe_unmasks_the_best_of_many_noise_trials():
    psrs, dsrs = [], []
    for seed in range(10):
        m = np.random.default_rng(seed).normal(0, 1, (500, 200))
        srs = np.array([overfit.sharpe(m[:, j]) for j in range(200)])
        result = overfit.deflated_sharpe(m[:, int(srs.argmax())], srs)
        psrs.append(result.psr)
        dsrs.append(result.dsr)
    assert min(psrs) > 0.95                   # the best of 200 noise trials looks "significant"…
    assert sum(d < 0.95 for d in dsrs) >= 9 and np.mean(dsrs) < 0.75   # …but not once the trials are counted
    rng = np.random.default_rng(3)
    srs = np.array([overfit.sharpe(rng.normal(0, 1, 500)) for _ in range(200)])
    real = rng.normal(0.25, 1, 500)
    assert overfit.deflated_sharpe(real, np.append(srs, overfit.sharpe(real))).dsr > 0.95


@pytest.mark.parametrize("pbo, dsr, wfe, label", [
    (0.6, 0.99, None, "likely overfit"),
    (0.1, 0.99, -0.2, "likely overfit"),          # lost money out of sample
    (0.1, 0.97, 0.8, "likely genuine"),
    (0.05, 0.2, None, "no proven edge"),          # consistent ranking, edge within luck
    (0.35, 0.8, None, "inconclusive"),
    (None, None, None, "unknown"),
])
def test_verdict_labels(pbo, dsr, wfe, label):
    got, words = overfit.verdict_words(pbo, dsr, wfe)
    assert got == label and words.endswith(".")


def test_a_walk_forward_that_lost_out_of_sample_is_overfit():
    # In-sample P&L not positive: no efficiency, but the stitched out-of-sample loss decides.
    label, words = overfit.verdict_words(0.3, 0.9, None, oos_net=-20.31)
    assert label == "likely overfit" and "lost 20.31 out of sample" in words
    assert overfit.verdict_words(0.1, 0.97, None, oos_net=5.0)[0] == "inconclusive"


def test_moments_of_a_normal_sample():
    skew, kurt = overfit.moments(np.random.default_rng(4).normal(0, 1, 200_000))
    assert abs(skew) < 0.02 and kurt == pytest.approx(3.0, abs=0.05)


# --- the search, on a planted edge -------------------------------------------------------------
class PlantedEdge:
    """Ten values of `x`; only x = 7 earns on average. Each value has its own fixed noise,
    as a real parameter would, so the ranking in sample is partly luck."""

    def __init__(self, periods: int = 480, good: int = 7, edge: float = 0.5):
        self.periods, self.good, self.edge = periods, good, edge

    def evaluate(self, start, end, values, trades=False):
        x = int(values["demo.x"])
        rng = np.random.default_rng(1000 + x)
        pnl = rng.normal(self.edge if x == self.good else 0.0, 1.0, self.periods)
        edges = np.arange(self.periods + 1, dtype=float)
        return outcome(pnl.tolist(), (np.arange(self.periods) + 0.5).tolist(), edges)


class _Dim:
    """A dimension without a strategy behind it (the demo evaluator needs none)."""
    name, integer, low, high, step = "demo.x", True, 0, 9, 1

    @staticmethod
    def round(v):
        return int(v)


def test_search_finds_the_planted_parameter_and_judges_it_genuine():
    with Runner(PlantedEdge(), 1) as runner:
        result = run_search(runner, [_Dim()], start=0, end=0, trials=40, seed=5, objective="sharpe", min_trades=1,
                            study_name="planted")
    assert result.best.values == {"demo.x": 7}
    distinct = result.distinct()
    assert len(distinct) == 10                # TPE visited every value
    judged = overfit.judge([t.periods for t in distinct], [t.values for t in distinct].index(result.best.values))
    assert judged["pbo"]["pbo"] < 0.1
    assert judged["dsr"]["dsr"] > 0.95


def test_search_on_noise_alone_is_judged_overfit():
    with Runner(PlantedEdge(edge=0.0), 1) as runner:
        result = run_search(runner, [_Dim()], start=0, end=0, trials=40, seed=5, objective="sharpe", min_trades=1,
                            study_name="noise")
    distinct = result.distinct()
    judged = overfit.judge([t.periods for t in distinct], [t.values for t in distinct].index(result.best.values))
    assert 0.2 <= judged["pbo"]["pbo"] <= 0.8
    assert judged["dsr"]["dsr"] < 0.95
    label, words = overfit.verdict_words(judged["pbo"]["pbo"], judged["dsr"]["dsr"])
    assert label != "likely genuine" and "%" in words


def test_the_same_seed_gives_the_same_search_and_jobs_run_in_processes():
    def search(jobs):
        with Runner(PlantedEdge(), jobs) as runner:
            r = run_search(runner, [_Dim()], start=0, end=0, trials=12, seed=11, objective="net", min_trades=1,
                           study_name="again")
        return [t.values["demo.x"] for t in r.trials]

    assert search(1) == search(1)
    assert search(2) == search(2)             # asked two at a time, told in order: reproducible too


class _SmallDim(_Dim):
    """Three values only: fewer points than the trials asked for."""
    high = 2


class CountingEdge(PlantedEdge):
    def __init__(self):
        super().__init__(good=1)
        self.asked: list[int] = []

    def evaluate(self, start, end, values, trades=False):
        self.asked.append(int(values["demo.x"]))
        return super().evaluate(start, end, values, trades)


def test_a_small_space_is_searched_once_per_point_then_the_search_stops(tmp_path):
    import optuna

    evaluator = CountingEdge()
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    with Runner(evaluator, 1) as runner:
        result = run_search(runner, [_SmallDim()], start=0, end=0, trials=20, seed=3, objective="net",
                            min_trades=1, study_name="small", storage=storage)
    assert sorted(evaluator.asked) == [0, 1, 2]                  # each point backtested once, never again
    assert sorted(t.values["demo.x"] for t in result.trials) == [0, 1, 2]
    assert result.space_points == 3 and result.exhausted and not result.interrupted
    assert result.best.values == {"demo.x": 1}
    # resuming the stored study: nothing left to try, and the repeats TPE was told are not counted as trials
    with Runner(evaluator, 1) as runner:
        again = run_search(runner, [_SmallDim()], start=0, end=0, trials=20, seed=3, objective="net",
                           min_trades=1, study_name="small", storage=storage)
    assert len(evaluator.asked) == 3                              # the resumed search ran no backtest
    assert again.resumed == 3 and len(again.trials) == 3 and again.exhausted


# --- the space -----------------------------------------------------------------------------------------
def _setup(strategies=("trend_pullback",), lookback=100) -> Setup:
    return Setup(symbol="XAUUSD", spec=spec_for("XAUUSD"), strategies=tuple(strategies),
                 params={n: resolve_params(n, None, lookback) for n in strategies}, lookback=lookback, qty=0.01,
                 rules=RiskRules(), balance=10_000.0)


def test_space_parses_strategy_and_risk_dimensions():
    dims = parse_space("trend_pullback.rr=1.0..3.0:0.25, trend_pullback.slope_bars=2..8,"
                       "trailing.activate_r=0.5..2,risk.decision_min_score=0..0.5", _setup())
    assert [(d.kind, d.param, d.integer) for d in dims] == [
        ("strategy", "rr", False), ("strategy", "slope_bars", True), ("trailing", "activate_r", False),
        ("risk", "decision_min_score", False)]
    s = apply(_setup(), dims, {"trend_pullback.rr": 2.25, "trend_pullback.slope_bars": 4,
                               "trailing.activate_r": 1.5, "risk.decision_min_score": 0.2})
    assert s.params["trend_pullback"]["rr"] == 2.25 and s.params["trend_pullback"]["slope_bars"] == 4
    assert s.rules.trailing.activate_r == 1.5 and s.rules.limits.decision_min_score == 0.2


@pytest.mark.parametrize("spec, words", [
    ("trend_pullback.rr=0..3", "rr=0"),                                   # rr must be > 0
    ("trend_pullback.touch_atr=-0.1..0.3", "touch_atr"),
    ("trend_pullback.slope_bars=2..80", "min_bars"),                     # reaches past min_bars
    ("trend_pullback.min_bars=60..120", "lookback"),                     # past the bot's lookback
    ("trend_pullback.slope_bars=2.5..8", "whole number"),
    ("trend_pullback.rr=3..1", "LOW is above HIGH"),
    ("trend_pullback.rr=1..3:0", "step"),
    ("trend_pullback.rr=1..x", "not numbers"),
    ("trend_pullback.nope=1..2", "no parameter 'nope'"),
    ("doji_breakout.rr=1..2", "not among those replayed"),
    ("pinbar.rr=1..2", "unknown strategy"),
    ("risk.max_concurrent=1..3", "cannot be searched"),
    ("risk.decision_min_score=0..2", "decision_min_score"),
    ("trend_pullback.rr", "no range"),
    ("trend_pullback.rr=1..2,trend_pullback.rr=1..3", "twice"),
])
def test_space_errors_name_the_rule_and_the_fix(spec, words):
    with pytest.raises(BadInput) as info:
        parse_space(spec, _setup())
    assert words in str(info.value) and info.value.exit_code == 2
    assert info.value.fix


# --- walk-forward: no fold sees a later bar ---------------------------------------------------------------
PINBAR = "price_action_pinbar"


def test_a_fold_chooses_the_same_with_the_file_cut_after_its_in_sample_window(xau_csv, tmp_path):
    from scalper.optimize.evaluate import BacktestEvaluator
    from scalper.optimize.walkforward import make_folds, run_fold

    full, _ = read_bars(xau_csv)
    setup = _setup((PINBAR, "doji_breakout"))
    space = f"doji_breakout.rr=1.0..3.0:0.25,doji_breakout.sl_buffer_atr=0.0..0.5:0.05,{PINBAR}.rr=1..2:0.5"
    dims = parse_space(space, setup)
    fold = make_folds(len(full), setup.lookback, 3)[1]
    # The file cut right after fold 2's in-sample window, read back from disk.
    lines = xau_csv.read_text().splitlines(True)
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(lines[:fold.is_end + 2]))
    truncated, _ = read_bars(cut)
    assert len(truncated) == fold.is_end + 1

    def choose(history):
        with Runner(BacktestEvaluator(history, setup, dims), 1) as runner:
            r = run_fold(runner, dims, fold, trials=10, seed=3, objective="net", min_trades=5, out_of_sample=False)
        return r.chosen.values, [(t.values, t.value) for t in r.search.trials]

    assert choose(full) == choose(truncated)


def test_folds_cover_the_history_in_order():
    from scalper.optimize.walkforward import make_folds

    rolling = make_folds(10_099, 100, 4)
    assert [f.number for f in rolling] == [1, 2, 3, 4]
    assert rolling[0].is_start == 99 and rolling[-1].oos_end == 10_098
    for a, b in zip(rolling, rolling[1:]):
        assert a.oos_start == a.is_end + 1 and b.is_start == a.oos_start and b.oos_start == a.oos_end + 1
    anchored = make_folds(10_099, 100, 4, anchored=True)
    assert all(f.is_start == 99 for f in anchored)
    assert [f.oos_start for f in anchored] == [f.oos_start for f in rolling]
    with pytest.raises(ValueError, match="fewer folds"):
        make_folds(1_000, 100, 20)


def test_a_trial_is_the_backtest_of_its_parameters(xau_csv):
    """The figures a trial reports are those `scalper backtest` gives with the same parameters."""
    from scalper.optimize.evaluate import BacktestEvaluator
    from scalper.report import stats

    history, _ = read_bars(xau_csv)
    setup = _setup(("doji_breakout",))
    dims = parse_space("doji_breakout.rr=1.0..3.0:0.25", setup)
    out = BacktestEvaluator(history, setup, dims).evaluate(99, len(history) - 1, {"doji_breakout.rr": 2.25})
    direct = run_backtest(history, apply(setup, dims, {"doji_breakout.rr": 2.25}))
    assert out["metrics"] == stats.summarize([t.pnl for t in direct.trades]).to_dict()
    assert sum(out["periods"]) == pytest.approx(sum(t.pnl for t in direct.trades))


def test_every_corner_of_a_valid_space_resolves():
    setup = _setup(("price_action_pinbar",))
    dims = parse_space("price_action_pinbar.level_lookback=5..29,price_action_pinbar.slope_bars=1..29", setup)
    for lo_hi in product(*[(d.low, d.high) for d in dims]):
        apply(setup, dims, {d.name: int(v) for d, v in zip(dims, lo_hi)})
