"""Numbers as a trader reads them, in every output (human, JSON, CSV): prices to the
symbol's digits, money to cents, ratios to 4 decimals; never `2303.9700000000003`,
`0.8600000000000001` or `-0.0`. Only outputs are rounded: the ledger and the core
keep full precision. A non-finite value (an old ledger's infinite P&L) becomes None."""

from __future__ import annotations

import math

MONEY_DECIMALS = 2
RATIO_DECIMALS = 4


def _round(value, decimals: int):
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if not math.isfinite(value):
        return None          # an infinite or NaN figure (an old ledger) is no number to show

    out = round(float(value), decimals)
    return 0.0 if out == 0 else out      # no -0.0


def money(value):
    return _round(value, MONEY_DECIMALS)


def price(value, digits: int | None):
    return _round(value, MONEY_DECIMALS if digits is None else digits)


def column(values, decimals: int) -> list[float]:
    """_round of many floats (a scan's prices): the same numbers, a numpy pass instead of a call
    per value. round(x, d) is the double nearest to the decimal x*10**d rounded half-even to
    an integer K, over 10**d; the double K / 10.0**d is that same nearest double (IEEE division
    is correctly rounded, K and 10**d exact). rint(x * 10.0**d) is K unless the product, off by at
    most half a unit in its last place, lies within that of a half-integer: those few values,
    huge ones and non-finite ones are rounded by round() itself."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    if not 0 <= decimals <= 15 or x.ndim != 1:
        return [_column_value(float(v), decimals) for v in x.ravel().tolist()]
    scale = float(10 ** decimals)
    with np.errstate(invalid="ignore", over="ignore"):
        s = x * scale
        k = np.rint(s)
        doubtful = ~(np.abs(s) < 2.0 ** 50) | (np.abs(s - np.floor(s) - 0.5) <= 2 * np.spacing(np.abs(s)))
    out = k / scale + 0.0   # + 0.0: -0.0 becomes 0.0
    for i in np.flatnonzero(doubtful).tolist():
        out[i] = _column_value(float(x[i]), decimals)
    rounded: list[float] = out.tolist()
    return rounded


def _column_value(value: float, decimals: int) -> float:
    out = round(value, decimals)
    return 0.0 if out == 0 else out


def ratio(value):
    return _round(value, RATIO_DECIMALS)


def volume(value):
    return _round(value, 8)


STAT_MONEY = ("gross_profit", "gross_loss", "expectancy", "net_pnl", "max_drawdown")
STAT_RATIO = ("win_rate", "profit_factor")


def stats_row(row: dict) -> dict:
    """A statistics row (scalper.report.stats.Stats.to_dict(), maybe with more keys) rounded in place."""
    for k in STAT_MONEY:
        if k in row:
            row[k] = money(row[k])
    for k in STAT_RATIO:
        if k in row:
            row[k] = ratio(row[k])
    return row
