"""How likely the winner of a search is an accident of the search. Pure numpy.

Two measures, written from the papers' formulas:

- The probability of backtest overfitting (PBO), by combinatorially symmetric
  cross-validation (CSCV): Bailey, Borwein, López de Prado and Zhu, "The
  Probability of Backtest Overfitting" (2015). The T×N matrix of returns (T
  periods, N configurations tried) is cut into S blocks of rows; for each of
  the C(S, S/2) ways to pick half the blocks as in-sample (the rest out of
  sample), the configuration with the best in-sample Sharpe ratio is ranked
  among all N out of sample: ω = rank / (N + 1), λ = ln(ω / (1 − ω)).
  PBO = the share of splits with λ ≤ 0 — the in-sample winner doing no better
  than the median out of sample.
- The deflated Sharpe ratio (DSR): Bailey and López de Prado, "The Deflated
  Sharpe Ratio: Correcting for Selection Bias, Backtest Overfitting and
  Non-Normality" (2014). The probability that the winner's true Sharpe ratio
  exceeds SR₀, the best Sharpe ratio N trials of zero true skill would be
  expected to show:
      SR₀ = √V[SR_n] · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N e)))
      DSR = Φ( (SR* − SR₀) √(T − 1) / √(1 − γ₃ SR* + (γ₄ − 1)/4 · SR*²) )
  with γ the Euler–Mascheroni constant, SR* the winner's (per-period) Sharpe
  ratio over T periods, γ₃ and γ₄ the skewness and (non-excess) kurtosis of its
  returns, V[SR_n] the variance of the trials' Sharpe ratios.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
DEFAULT_BLOCKS = 16          # S: C(16, 8) = 12,870 splits
_N = NormalDist()


def sharpe(returns: np.ndarray) -> float:
    """Per-period Sharpe ratio, mean / sample standard deviation (0 when flat)."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 2:
        return 0.0
    sd = float(r.std(ddof=1))
    return float(r.mean()) / sd if sd > 0 else 0.0


@dataclass(frozen=True)
class PBO:
    pbo: float                 # share of splits whose in-sample winner ranks at or below the OOS median
    blocks: int                # S
    splits: int                # C(S, S/2)
    configurations: int        # N
    logits: np.ndarray         # λ per split
    degradation: float         # mean OOS Sharpe of the IS winner ÷ its mean IS Sharpe (None-like: nan)

    def to_dict(self) -> dict:
        return {"pbo": round(self.pbo, 4), "blocks": self.blocks, "splits": self.splits,
                "configurations": self.configurations,
                "logit_median": round(float(np.median(self.logits)), 4),
                "oos_is_sharpe_ratio": None if math.isnan(self.degradation) else round(self.degradation, 4)}


def pbo_cscv(returns: np.ndarray, blocks: int = DEFAULT_BLOCKS) -> PBO:
    """PBO of a T×N matrix of per-period returns (T periods, N configurations).

    Rows are cut into `blocks` (even) consecutive blocks of equal size; the last
    T mod S rows are dropped. Raises ValueError when there is too little to split.
    """
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2:
        raise ValueError("returns must be a T×N matrix")
    t, n = m.shape
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks={blocks} must be an even number of at least 2")
    if n < 2:
        raise ValueError("PBO needs at least 2 configurations")
    size = t // blocks
    if size < 2:
        raise ValueError(f"PBO needs at least {2 * blocks} periods, got {t}")
    m = m[:size * blocks].reshape(blocks, size, n)
    # Per block: count, sum and sum of squares per configuration; a union of blocks adds them up.
    sums, squares = m.sum(axis=1), (m * m).sum(axis=1)               # S × N
    combos = np.array(list(itertools.combinations(range(blocks), blocks // 2)))
    chosen = np.zeros((len(combos), blocks))
    chosen[np.arange(len(combos))[:, None], combos] = 1.0
    rest = 1.0 - chosen
    is_sr = _sharpe_from_sums(chosen @ sums, chosen @ squares, size * blocks // 2)
    oos_sr = _sharpe_from_sums(rest @ sums, rest @ squares, size * blocks // 2)
    best = is_sr.argmax(axis=1)                                        # the IS winner of each split
    rows = np.arange(len(combos))
    winner_oos = oos_sr[rows, best]
    # Rank 1..N of the winner out of sample (ties counted half: the average rank).
    below = (oos_sr < winner_oos[:, None]).sum(axis=1)
    ties = (oos_sr == winner_oos[:, None]).sum(axis=1)
    rank = below + (ties + 1) / 2.0
    omega = rank / (n + 1)
    logits = np.log(omega / (1 - omega))
    mean_is = float(is_sr[rows, best].mean())
    degradation = float(winner_oos.mean()) / mean_is if mean_is > 0 else math.nan
    return PBO(pbo=float((logits <= 0).mean()), blocks=blocks, splits=len(combos), configurations=n,
               logits=logits, degradation=degradation)


def _sharpe_from_sums(s: np.ndarray, q: np.ndarray, count: int) -> np.ndarray:
    mean = s / count
    var = (q - count * mean * mean) / (count - 1)
    sd = np.sqrt(np.clip(var, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sd > 1e-12 * (np.abs(mean) + 1e-300), mean / sd, 0.0)
    return out


def expected_max_sharpe(sharpe_variance: float, trials: int) -> float:
    """SR₀: the expected best Sharpe ratio of `trials` independent trials with no skill."""
    if trials < 2 or sharpe_variance <= 0:
        return 0.0
    z = ((1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / trials)
         + EULER_GAMMA * _N.inv_cdf(1 - 1 / (trials * math.e)))
    return math.sqrt(sharpe_variance) * z


def probabilistic_sharpe(sr: float, benchmark: float, periods: int, skew: float, kurtosis: float) -> float:
    """PSR: P(true SR > benchmark) given an observed per-period SR over `periods` returns."""
    if periods < 2:
        return math.nan
    denom = 1 - skew * sr + (kurtosis - 1) / 4 * sr * sr
    if denom <= 0:
        return math.nan
    return _N.cdf((sr - benchmark) * math.sqrt(periods - 1) / math.sqrt(denom))


@dataclass(frozen=True)
class DSR:
    dsr: float                 # probability the winner's true Sharpe beats SR₀
    sharpe: float              # the winner's per-period Sharpe ratio SR*
    sr0: float                 # expected best Sharpe of the trials by luck alone
    psr: float                 # P(true SR > 0), the same statistics without deflation
    trials: int
    periods: int
    skew: float
    kurtosis: float

    def to_dict(self) -> dict:
        def r(x):
            return None if x is None or math.isnan(x) else round(x, 4)

        return {"dsr": r(self.dsr), "sharpe": r(self.sharpe), "sr0": r(self.sr0), "psr": r(self.psr),
                "trials": self.trials, "periods": self.periods, "skew": r(self.skew), "kurtosis": r(self.kurtosis)}


def deflated_sharpe(returns: np.ndarray, trial_sharpes: np.ndarray) -> DSR:
    """DSR of the winner with per-period `returns`, among trials with Sharpe ratios `trial_sharpes`
    (the winner's included; same periods for all)."""
    r = np.asarray(returns, dtype=float)
    srs = np.asarray(trial_sharpes, dtype=float)
    sr = sharpe(r)
    skew, kurt = moments(r)
    variance = float(srs.var(ddof=1)) if len(srs) > 1 else 0.0
    sr0 = expected_max_sharpe(variance, len(srs))
    return DSR(dsr=probabilistic_sharpe(sr, sr0, len(r), skew, kurt), sharpe=sr, sr0=sr0,
               psr=probabilistic_sharpe(sr, 0.0, len(r), skew, kurt), trials=len(srs), periods=len(r),
               skew=skew, kurtosis=kurt)


def moments(r: np.ndarray) -> tuple[float, float]:
    """Skewness and (non-excess, normal = 3) kurtosis; (0, 3) for a flat series."""
    r = np.asarray(r, dtype=float)
    if len(r) < 2:
        return 0.0, 3.0
    d = r - r.mean()
    m2 = float((d * d).mean())
    if m2 <= 0:
        return 0.0, 3.0
    return float((d ** 3).mean()) / m2 ** 1.5, float((d ** 4).mean()) / m2 ** 2


def judge(period_returns: list[list[float]], winner: int, blocks: int = DEFAULT_BLOCKS) -> dict:
    """PBO and DSR of a search: `period_returns` one per-period series per distinct
    configuration tried (all of equal length), `winner` the index of the chosen one.
    Measures that cannot be computed are None, with the reason in `notes`."""
    notes: list[str] = []
    doc: dict = {"configurations": len(period_returns), "pbo": None, "dsr": None, "notes": notes}
    if not period_returns or not period_returns[0]:
        notes.append("no returns to judge")
        return doc
    m = np.array(period_returns, dtype=float).T               # T × N
    t, n = m.shape
    s = min(blocks, (t // 2) // 2 * 2)
    if n < 2:
        notes.append("PBO needs at least 2 distinct configurations tried")
    elif s < 4:
        notes.append(f"PBO needs at least 8 periods of returns, the window holds {t}")
    else:
        doc["pbo"] = pbo_cscv(m, s).to_dict()
    srs = np.array([sharpe(m[:, j]) for j in range(n)])
    doc["dsr"] = deflated_sharpe(m[:, winner], srs).to_dict()
    return doc


def verdict_words(pbo: float | None, dsr: float | None, wfe: float | None = None,
                  oos_net: float | None = None) -> tuple[str, str]:
    """(short label, a sentence a trader understands); `wfe` and `oos_net` (the stitched
    out-of-sample P&L) with a walk-forward."""
    parts = []
    if pbo is not None:
        parts.append(f"in {pbo:.0%} of the ways the history can be split in halves, the best parameters on one "
                     "half did no better than the median on the other")
    if dsr is not None:
        parts.append(f"after allowing for the number of trials, the chance the winner's edge is real is {dsr:.0%}")
    if wfe is not None:
        parts.append(f"out of sample it kept {wfe:.0%} of its in-sample profit per bar")
    elif oos_net is not None:
        parts.append(f"the walk-forward {'lost' if oos_net <= 0 else 'made'} {abs(oos_net):,.2f} out of sample")
    if pbo is None and dsr is None:
        return "unknown", "too little data to judge overfitting."
    detail = " (" + "; ".join(parts) + ")."
    if (pbo is not None and pbo >= 0.5) or (wfe is not None and wfe <= 0) or (oos_net is not None and oos_net <= 0):
        return ("likely overfit", "The winner is likely an accident of the search: do not trade it on this evidence"
                + detail)
    if ((pbo is None or pbo <= 0.2) and (dsr is None or dsr >= 0.95) and (wfe is None or wfe >= 0.5)
            and (oos_net is None or wfe is not None)):
        return "likely genuine", "The winner looks genuine, not an accident of the search" + detail
    if dsr is not None and dsr < 0.5:
        lead = "The parameters rank consistently, but" if pbo is not None and pbo <= 0.2 else "Not clearly overfit, but"
        return ("no proven edge", lead + " the winner's edge is too small to tell from luck after this many trials: "
                "do not count on it" + detail)
    return "inconclusive", "Not clearly overfit, but not convincing either: test on more data" + detail
