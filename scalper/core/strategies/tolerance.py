"""Price comparisons with the tolerance of docs/strategies.md ("Comparisons").

Prices are decimals stored as floats, so exact decimal ties (a body of exactly
0.1 x range) are common and float rounding would decide them at random. Every
rule is written `lhs OP rhs` and evaluated with `eps = 1e-9 * abs(close_t)`, so
an exact tie passes an inclusive test and fails a strict one.

The helpers take floats or numpy arrays alike: the live path (one window) and
the fast path (every window of a history) run the very same expressions.
"""

from __future__ import annotations

EPS_RELATIVE = 1e-9


def tolerance(close_t):
    """The `eps` of a window whose signal bar closed at `close_t`."""
    return EPS_RELATIVE * abs(close_t)


def ge(lhs, rhs, eps):
    """lhs >= rhs, a tie within eps passing."""
    return lhs >= rhs - eps


def gt(lhs, rhs, eps):
    """lhs > rhs, a tie within eps failing."""
    return lhs > rhs + eps


def le(lhs, rhs, eps):
    """lhs <= rhs, a tie within eps passing."""
    return lhs <= rhs + eps


def lt(lhs, rhs, eps):
    """lhs < rhs, a tie within eps failing."""
    return lhs < rhs - eps
