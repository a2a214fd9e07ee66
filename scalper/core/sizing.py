"""Order volume: the bot's fixed qty, or risk-percent sizing, rounded DOWN to the
symbol's volume step and capped at its maximum.

A volume that ends below the symbol's minimum is never raised to it: that would
risk more than the settings allow (a risk_percent bot could lose several times its
budget). The order is refused instead, with a reason code saying why.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal

from scalper.core.risk import NO_BALANCE, VOLUME_BELOW_MIN
from scalper.symbols import SymbolSpec


@dataclass(frozen=True)
class Sizing:
    """The volume to send, or why none is sent (`reason`, a code of core.risk)."""

    volume: float          # lots; 0.0 when refused
    reason: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


def size_order(*, qty: float, spec: SymbolSpec, risk_percent: float | None = None,
               balance: float | None = None, risk_per_unit: float | None = None) -> Sizing:
    """`risk_per_unit` is the price distance entry → SL. With `risk_percent`, the volume
    loses at most `risk_percent` of the balance at the SL; without, it is `qty`. Either
    way it is rounded down to the volume step and capped at the maximum; below the
    minimum it is refused."""
    budget = None
    wanted = qty
    if risk_percent is not None:
        if balance is None or not balance > 0:
            return Sizing(0.0, NO_BALANCE, f"no balance to size {risk_percent:g}% of (balance {balance})")
        if risk_per_unit is not None and risk_per_unit > 0:
            budget = balance * risk_percent / 100.0
            wanted = budget / (risk_per_unit * spec.contract_size)
        # else the stop sits at the entry: nothing is lost at it, and the fixed qty applies
    volume = floor_volume(min(wanted, spec.volume_max), spec)
    if budget is not None and risk_per_unit is not None:
        step = spec.volume_step
        while volume > 0 and money_at_stop(volume, risk_per_unit, spec) > budget:
            volume = floor_volume(volume - step, spec)   # float noise of the division, never more
    if volume <= 0 or (volume < spec.volume_min and not math.isclose(volume, spec.volume_min, rel_tol=1e-9)):
        if budget is not None:
            detail = (f"{risk_percent:g}% of {balance:.2f} at a stop {risk_per_unit:g} away buys {wanted:.6g} lots; "
                      f"{spec.symbol}'s minimum is {spec.volume_min:g}")
        else:
            detail = f"qty {qty:g} is below {spec.symbol}'s minimum volume {spec.volume_min:g}"
        return Sizing(0.0, VOLUME_BELOW_MIN, detail)
    return Sizing(volume)


def money_at_stop(volume: float, risk_per_unit: float, spec: SymbolSpec) -> float:
    """What a position of `volume` lots loses when its stop, `risk_per_unit` away, is hit."""
    return volume * risk_per_unit * spec.contract_size


def floor_volume(volume: float, spec: SymbolSpec) -> float:
    """The largest whole number of volume steps not above `volume` (0.0 if none), written
    with the step's decimals (0.07, never 0.06999999999999999)."""
    step = spec.volume_step
    if not volume > 0:
        return 0.0
    decimals = step_decimals(step)
    k = math.floor(volume / step)
    for n in (k + 1, k, k - 1):   # volume / step may land a hair on either side of a whole number
        v = round(n * step, decimals)
        if 0 < v <= volume:
            return v
    return 0.0


@functools.lru_cache(maxsize=64)   # a handful of steps per process; read per order sized
def step_decimals(step: float) -> int:
    """Decimals of a volume step as written: 0.01 → 2, 0.1 → 1, 1.0 → 0."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0
