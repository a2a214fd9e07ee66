"""Strategy registry: name -> implementation. See docs/strategies.md.

Every strategy module offers:
    NAME: str
    DEFAULTS: dict[str, int | float]
    MIN_BARS_REACH(params) -> int                       bars the rules read, bar t included
    evaluate(window: Bars, params) -> Signal | Skip      live path, bar t = the window's last
    scan(history: Bars, params, lookback) -> ScanResult  fast path, every full window at once
    STRATEGY: the shared flow (base.Strategy) those are bound to
Its `evaluate` and `scan` take parameters as given (merged over DEFAULTS, not
checked): check a config's parameters once, with `resolve_params`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from scalper.core.bars import Bars
from scalper.core.signals import Signal, Skip
from scalper.core.strategies import doji_breakout, pinbar, range_reversion, trend_pullback
from scalper.core.strategies.base import ScanResult, Strategy
from scalper.core.strategies.params import InvalidParams, Params

_MODULES = (pinbar, trend_pullback, doji_breakout, range_reversion)
STRATEGY_NAMES: tuple[str, ...] = tuple(m.NAME for m in _MODULES)
_BY_NAME = {m.NAME: m for m in _MODULES}

__all__ = ["STRATEGY_NAMES", "InvalidParams", "ScanResult", "UnknownStrategy", "evaluate", "get",
           "resolve_params"]


class UnknownStrategy(ValueError):
    def __init__(self, name: object):
        super().__init__(f"unknown strategy {name!r}; valid strategies are: "
                         f"{', '.join(STRATEGY_NAMES)}")
        self.name = name


def get(name: str) -> ModuleType:
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise UnknownStrategy(name) from None


def strategy(name: str) -> Strategy:
    """The rules of strategy `name` (UnknownStrategy if there is none)."""
    found: Strategy = get(name).STRATEGY
    return found


def resolve_params(name: str, overrides: Params | None = None, lookback: int | None = None) -> dict[str, Any]:
    """DEFAULTS merged with `overrides`, validated (against the bot's `lookback`
    when given). Raises InvalidParams (a ValueError) saying what to fix."""
    return strategy(name).resolve(overrides, lookback)


def evaluate(name: str, window: Bars, params: Params) -> Signal | Skip:
    """Run strategy `name` on one window; `params` as returned by resolve_params."""
    return strategy(name).evaluate(window, params)


def did_you_mean(name: str) -> str | None:
    """The strategy name closest to a misspelt one (trend_pulback → trend_pullback), or None."""
    import difflib

    close = difflib.get_close_matches(str(name), STRATEGY_NAMES, n=1, cutoff=0.6)
    return close[0] if close else None
