"""Command-line values several commands read the same way."""

from __future__ import annotations

from scalper.errors import BadInput, quote


def strategy_list(text: str, option: str = "--strategies") -> list[str]:
    """'a,b' → ['a', 'b'], every name known; a misspelt one gets a "did you mean"."""
    from scalper.core.strategies import STRATEGY_NAMES, did_you_mean

    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise BadInput("no strategy given", where=option, fix=f"use some of: {', '.join(STRATEGY_NAMES)}")
    for n in names:
        if n not in STRATEGY_NAMES:
            guess = did_you_mean(n)
            raise BadInput(f"unknown strategy {quote(n)}" + (f"; did you mean {guess!r}?" if guess else ""),
                           where=option, fix=f"use some of: {', '.join(STRATEGY_NAMES)}")
    return names
