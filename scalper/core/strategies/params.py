"""Strategy parameters: their kinds, and the checks a config must pass.

Messages name the parameter and say what to change; the config loader prefixes
them with `strategy_params.<strategy>:`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from scalper.core.indicators import ATR_PERIOD

Params = Mapping[str, Any]   # a strategy's parameters by name (ints and floats)


class InvalidParams(ValueError):
    """A strategy's parameters are unusable; `param` names the culprit when there is one."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class Kind(Enum):
    """What values a parameter accepts; the value is the requirement as worded in messages."""

    COUNT = "a whole number of at least 1 (an integer, no decimal point)"
    POSITIVE = "a number greater than 0"
    NON_NEGATIVE = "a number of at least 0"
    FRACTION = "a number from 0 to 1"

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool):
            return False
        if self is Kind.COUNT:
            return isinstance(value, numbers.Integral) and int(value) >= 1
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        number = float(value)
        if self is Kind.POSITIVE:
            return number > 0
        if self is Kind.NON_NEGATIVE:
            return number >= 0
        return 0 <= number <= 1

    def normalize(self, value: Any) -> int | float:
        return int(value) if self is Kind.COUNT else float(value)


@dataclass(frozen=True)
class Param:
    default: int | float
    kind: Kind


@dataclass(frozen=True)
class Relation:
    """A rule between parameters; `message` is formatted with the parameters."""

    holds: Callable[[Params], bool]
    message: str


def bars_reached(params: Params, reaching: tuple[str, ...]) -> int:
    """How many bars (bar t included) the rules read: a parameter v in `reaching`
    reads bar t-v; every strategy also needs the ATR's 14 bars."""
    reached: int = max([ATR_PERIOD, *(params[name] + 1 for name in reaching)])
    return reached


def resolve(specs: Mapping[str, Param], reaching: tuple[str, ...], relations: tuple[Relation, ...],
            overrides: Params | None, lookback: int | None) -> dict[str, Any]:
    """Defaults merged with `overrides`, checked; raises InvalidParams saying what to fix."""
    overrides = dict(overrides or {})
    for name in overrides:
        if name not in specs:
            raise InvalidParams(f"unknown parameter {name!r}; valid parameters are: "
                                f"{', '.join(specs)}", param=name)
    params = {name: spec.default for name, spec in specs.items()}
    for name, value in overrides.items():
        kind = specs[name].kind
        if not kind.accepts(value):
            raise InvalidParams(f"{name}={value!r} is invalid: {name} must be {kind.value}; "
                                f"set it to such a value, e.g. the default {specs[name].default!r}",
                                param=name)
        params[name] = kind.normalize(value)
    for relation in relations:
        if not relation.holds(params):
            raise InvalidParams(relation.message.format(**params))
    _check_reach(params, reaching)
    if lookback is not None and params["min_bars"] > lookback:
        raise InvalidParams(f"min_bars={params['min_bars']} exceeds the bot's lookback={lookback}; "
                            f"lower min_bars to at most {lookback} or raise lookback to at least "
                            f"{params['min_bars']}", param="min_bars")
    return params


def _check_reach(params: Params, reaching: tuple[str, ...]) -> None:
    min_bars = params["min_bars"]
    for name in reaching:
        needed = params[name] + 1
        if needed > min_bars:
            raise InvalidParams(f"{name}={params[name]} reaches {needed} bars back but min_bars is "
                                f"{min_bars}; raise min_bars to at least {needed} or lower {name}",
                                param=name)
    if min_bars < ATR_PERIOD:
        raise InvalidParams(f"min_bars={min_bars} is below the {ATR_PERIOD} bars the ATR needs; "
                            f"raise min_bars to at least {ATR_PERIOD}", param="min_bars")
