"""Order volume: the bot's fixed qty, or risk-percent sizing, always rounded
down to the symbol's volume step and clamped to its min/max."""

from __future__ import annotations

from scalper.symbols import SymbolSpec, round_volume


def order_volume(*, qty: float, spec: SymbolSpec, risk_percent: float | None = None,
                 balance: float | None = None, risk_per_unit: float | None = None) -> float:
    """`risk_per_unit` is the price distance entry→SL. With risk_percent, the
    volume loses `risk_percent` of the balance at the SL (before the clamp)."""
    volume = qty
    if risk_percent is not None and balance and risk_per_unit and risk_per_unit > 0:
        money_at_risk = balance * risk_percent / 100.0
        volume = money_at_risk / (risk_per_unit * spec.contract_size)
    return round_volume(volume, spec)
