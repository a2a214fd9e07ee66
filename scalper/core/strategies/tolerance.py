"""Price comparisons with the tolerance of docs/strategies.md ("Comparisons").

Prices are decimals stored as floats, so exact decimal ties (a body of exactly
0.1 x range) are common and float rounding would decide them at random. Every
rule is written `lhs OP rhs` and evaluated with `eps = 1e-9 * abs(close_t)`, so
an exact tie passes an inclusive test and fails a strict one.

The helpers take floats or numpy arrays alike: the live path (one window) and
the fast path (every window of a history) run the very same expressions.
"""

from __future__ import annotations

from typing import Any, TypeAlias

EPS_RELATIVE = 1e-9

# A price, or a comparison's answer: a float (one window, the live path) or a numpy array with one value
# per window (the fast path). The same rule code runs on both, so statically it is either (Any).
Value: TypeAlias = Any


def tolerance(close_t: Value) -> Value:
    """The `eps` of a window whose signal bar closed at `close_t`."""
    return EPS_RELATIVE * abs(close_t)


def ge(lhs: Value, rhs: Value, eps: Value) -> Value:
    """lhs >= rhs, a tie within eps passing."""
    return lhs >= rhs - eps


def gt(lhs: Value, rhs: Value, eps: Value) -> Value:
    """lhs > rhs, a tie within eps failing."""
    return lhs > rhs + eps


def le(lhs: Value, rhs: Value, eps: Value) -> Value:
    """lhs <= rhs, a tie within eps passing."""
    return lhs <= rhs + eps


def lt(lhs: Value, rhs: Value, eps: Value) -> Value:
    """lhs < rhs, a tie within eps failing."""
    return lhs < rhs - eps
