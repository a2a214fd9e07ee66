"""The search space: `--space` parsed, checked against the strategies' own
parameter rules and the risk settings' schema, and applied to a backtest Setup.

SPEC is a comma-separated list of `NAME=LOW..HIGH[:STEP]` where NAME is
`strategy.parameter` (e.g. `trend_pullback.rr`), or a risk setting:
`risk.decision_min_score`, `risk.risk_percent`, `trailing.activate_r`,
`trailing.distance_r` (`risk.trailing.activate_r` also works). Whole-number
parameters (periods, bar counts) take whole bounds and steps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from scalper.backtest import Setup
from scalper.errors import BadInput

RISK_FIELDS = ("decision_min_score", "risk_percent")
TRAILING_FIELDS = ("activate_r", "distance_r")
EXAMPLE = "trend_pullback.rr=1.0..3.0:0.25,trend_pullback.touch_atr=0.05..0.30"
MAX_CORNERS_CHECKED = 4096


@dataclass(frozen=True)
class Dimension:
    name: str                  # as written: strategy.param, risk.x or trailing.x
    kind: str                  # strategy | risk | trailing
    owner: str | None          # the strategy for kind "strategy"
    param: str
    low: float
    high: float
    step: float | None
    integer: bool

    def round(self, value):
        """A value as the trader would write it (no 1.2500000000000002)."""
        if self.integer:
            return int(round(value))
        if self.step:
            decimals = max(0, -math.floor(math.log10(self.step)) + 2)
            return round(float(value), decimals)
        return round(float(value), 6)

    def describe(self) -> str:
        return f"{self.name}={_fmt(self.low)}..{_fmt(self.high)}" + (f":{_fmt(self.step)}" if self.step else "")


def _fmt(x) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def parse_space(text: str, setup: Setup) -> list[Dimension]:
    """Parse and check SPEC for this setup; BadInput (exit 2) saying what to fix."""
    from scalper.core import strategies as registry

    if not text or not text.strip():
        raise BadInput("--space is empty", where="--space", fix=f"e.g. --space {EXAMPLE}")
    dims: list[Dimension] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, eq, rng = item.partition("=")
        name = name.strip()
        if not eq:
            raise BadInput(f"{item!r} has no range", where="--space",
                           fix=f"write NAME=LOW..HIGH[:STEP], e.g. {EXAMPLE}")
        low, high, step = _parse_range(name, rng.strip())
        head, _, param = name.partition(".")
        if head == "risk" and param.startswith("trailing."):
            head, param = "trailing", param.split(".", 1)[1]
        if head == "risk":
            if param not in RISK_FIELDS:
                raise BadInput(f"{name!r}: risk parameter {param!r} cannot be searched", where="--space",
                               fix=f"searchable risk parameters: {', '.join('risk.' + f for f in RISK_FIELDS)}, "
                                   f"{', '.join('trailing.' + f for f in TRAILING_FIELDS)}")
            dims.append(Dimension(name, "risk", None, param, low, high, step, False))
        elif head == "trailing":
            if param not in TRAILING_FIELDS:
                raise BadInput(f"{name!r}: trailing parameter {param!r} cannot be searched", where="--space",
                               fix=f"use one of: {', '.join('trailing.' + f for f in TRAILING_FIELDS)}")
            dims.append(Dimension(name, "trailing", None, param, low, high, step, False))
        else:
            if head not in registry.STRATEGY_NAMES:
                raise BadInput(f"{name!r}: unknown strategy {head!r}", where="--space",
                               fix=f"name a parameter as strategy.parameter, strategy one of: "
                                   f"{', '.join(registry.STRATEGY_NAMES)}; or risk.*/trailing.*")
            if head not in setup.strategies:
                raise BadInput(f"{name!r}: strategy {head!r} is not among those replayed "
                               f"({', '.join(setup.strategies)})", where="--space",
                               fix=f"add it with --strategies, or drop {name} from --space")
            specs = registry.get(head).STRATEGY.specs
            if param not in specs:
                raise BadInput(f"{name!r}: {head} has no parameter {param!r}", where="--space",
                               fix=f"its parameters are: {', '.join(specs)}")
            integer = specs[param].kind.name == "COUNT"
            if integer and not all(float(v).is_integer() for v in (low, high, step or 1)):
                raise BadInput(f"{name}: {param} is a whole number of bars, the range {rng.strip()} is not",
                               where="--space", fix=f"use whole bounds and step, e.g. {name}=10..40:5")
            dims.append(Dimension(name, "strategy", head, param, low, high, step, integer))
    if not dims:
        raise BadInput("--space names no parameter", where="--space", fix=f"e.g. --space {EXAMPLE}")
    seen = set()
    for d in dims:
        if d.name in seen or (d.kind, d.owner, d.param) in seen:
            raise BadInput(f"{d.name} is given twice", where="--space", fix="give each parameter once")
        seen.update({d.name, (d.kind, d.owner, d.param)})
    check_space(dims, setup)
    return dims


def _parse_range(name: str, text: str) -> tuple[float, float, float | None]:
    body, colon, step_text = text.partition(":")
    lo_text, dots, hi_text = body.partition("..")
    fix = f"write {name}=LOW..HIGH or {name}=LOW..HIGH:STEP with numbers, e.g. {name}=1.0..3.0:0.25"
    if not dots:
        raise BadInput(f"{name}={text}: not a range", where="--space", fix=fix)
    try:
        low, high = float(lo_text), float(hi_text)
        step = float(step_text) if colon else None
    except ValueError:
        raise BadInput(f"{name}={text}: not numbers", where="--space", fix=fix) from None
    if not (math.isfinite(low) and math.isfinite(high)) or (step is not None and not math.isfinite(step)):
        raise BadInput(f"{name}={text}: bounds must be finite", where="--space", fix=fix)
    if low > high:
        raise BadInput(f"{name}={text}: LOW is above HIGH", where="--space", fix=f"write {name}={hi_text}..{lo_text}")
    if step is not None:
        if step <= 0:
            raise BadInput(f"{name}={text}: the step must be above 0", where="--space", fix=fix)
        if step > high - low and high > low:
            raise BadInput(f"{name}={text}: the step is wider than the range", where="--space",
                           fix=f"use a step of at most {_fmt(high - low)}")
    return low, high, step


def check_space(dims: list[Dimension], setup: Setup) -> None:
    """Every corner of the box must be a valid configuration (the rules are bounds and
    monotone relations, so the corners decide); BadInput naming the rule and the fix."""
    from scalper.core.strategies.params import InvalidParams

    corners = itertools.product(*[(d.low, d.high) if d.low != d.high else (d.low,) for d in dims])
    for corner in itertools.islice(corners, MAX_CORNERS_CHECKED):
        values = {d.name: (int(v) if d.integer else v) for d, v in zip(dims, corner)}
        try:
            apply(setup, dims, values)
        except InvalidParams as exc:
            where = ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())
            raise BadInput(f"the space reaches invalid parameters: {exc} (at {where})", where="--space",
                           fix="narrow the range(s) so every combination obeys the rule above "
                               "(see ../shared/docs/strategies.md)") from None


def apply(setup: Setup, dims: list[Dimension], values: Mapping[str, float]) -> Setup:
    """The setup with these values; InvalidParams (a ValueError) when the strategy's rules refuse them."""
    from pydantic import ValidationError

    from scalper.core import strategies as registry
    from scalper.core.strategies.params import InvalidParams

    by_strategy: dict[str, dict] = {}
    risk_update: dict = {}
    trailing_update: dict = {}
    for d in dims:
        v = values[d.name]
        v = int(v) if d.integer else float(v)
        if d.kind == "strategy":
            assert d.owner is not None   # a strategy parameter names its strategy
            by_strategy.setdefault(d.owner, {})[d.param] = v
        elif d.kind == "risk":
            risk_update[d.param] = v
        else:
            trailing_update[d.param] = v
    params = dict(setup.params)
    for strategy, update in by_strategy.items():
        # Resolved parameters are all explicit, so this re-checks the merged set.
        params[strategy] = registry.resolve_params(strategy, {**params[strategy], **update},
                                                   lookback=setup.lookback)
    rules = setup.rules
    if risk_update or trailing_update:
        from scalper.settings import revised_rules

        try:
            rules = revised_rules(rules, risk_update, trailing_update)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(x) for x in first["loc"])
            raise InvalidParams(f"risk.{field}: {first['msg']}") from None
    return replace(setup, params=params, rules=rules)


def grid_size(dims: list[Dimension]) -> int | None:
    """How many distinct points a fully stepped space holds (None when a dimension is continuous)."""
    total = 1
    for d in dims:
        if d.integer:
            total *= int((d.high - d.low) // (d.step or 1)) + 1
        elif d.step:
            total *= int(math.floor((d.high - d.low) / d.step + 1e-9)) + 1
        else:
            return None
    return total
