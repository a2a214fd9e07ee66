"""Numbers as a trader reads them, in every output (human, JSON, CSV): prices to the
symbol's digits, money to cents, ratios to 4 decimals; never `2303.9700000000003`,
`0.8600000000000001` or `-0.0`. Only outputs are rounded: the ledger and the core
keep full precision. A non-finite value (an old ledger's infinite P&L) becomes None."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # arrays only in annotations: the many light paths need not import numpy here
    import numpy as np

MONEY_DECIMALS = 2
RATIO_DECIMALS = 4
VOLUME_DECIMALS = 8


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


def values(items, decimals: int) -> list:
    """_round of every item of a list or a 1-d float array (a column of prices): by numpy
    (`round_array`) when they are all finite floats, else one by one."""
    import numpy as np

    if isinstance(items, np.ndarray):
        if items.dtype == np.float64 and items.ndim == 1 and bool(np.isfinite(items).all()):
            out: list = (round_array(items, decimals) + 0.0).tolist()   # + 0.0: no -0.0
            return out
        items = items.tolist()
    # a non-finite item makes the sum non-finite
    if items and set(map(type, items)) == {float} and math.isfinite(sum(items)):
        out = (round_array(np.array(items), decimals) + 0.0).tolist()
        return out
    return [_round(v, decimals) for v in items]


def round_array(values: np.ndarray, decimals: int) -> np.ndarray:
    """`round(x, decimals)` of every float of a numpy array, bit for bit. numpy's rounding
    (rint of x * 10**decimals, over 10**decimals: the nearest double, as Python's) agrees with
    Python's but where x * 10**decimals lies within a hair of a tie (where the product's own
    rounding may decide it) or is too large for that hair to hold: those go to Python, which
    decides exactly. NaN stays NaN."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):   # those overflowing or NaN go to Python
        out = np.round(values, decimals)
        scaled = values * 10.0 ** decimals
        python = ~(np.abs(scaled) < 1e9) | (np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    python &= ~np.isnan(values)
    if python.any():
        out[python] = [round(x, decimals) for x in values[python].tolist()]
    return out


def ratio(value):
    return _round(value, RATIO_DECIMALS)


def volume(value):
    return _round(value, VOLUME_DECIMALS)


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
