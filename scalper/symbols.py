"""What the engine knows about a symbol without asking a broker.

Brokers name the same instrument differently (`XAUUSD`, `XAUUSDm`, `XAUUSD.a`,
`GOLD`); `root_symbol` strips the decoration so one table serves them all.
A config may extend or override the table (`symbols:` in bots.yaml).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

METAL_ROOTS = ("XAU", "XAG", "XPT", "XPD", "GOLD", "SILVER")
CRYPTO_ROOTS = ("BTC", "ETH", "LTC", "XRP", "SOL")


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    digits: int
    contract_size: float        # units per 1.0 lot
    volume_min: float = 0.01
    volume_max: float = 100.0
    volume_step: float = 0.01
    spread_points: float = 20.0  # typical spread, used when a feed has none
    stops_level: int = 0         # minimum SL/TP distance, points
    currency: str = "USD"        # profit currency

    @property
    def point(self) -> float:
        return 10.0 ** -self.digits

    def round_price(self, price: float) -> float:
        return round(price, self.digits)


# Typical retail-CFD values; a broker's own figures win when it reports them.
_TABLE: dict[str, SymbolSpec] = {
    "XAUUSD": SymbolSpec("XAUUSD", digits=2, contract_size=100, spread_points=20),
    "XAGUSD": SymbolSpec("XAGUSD", digits=3, contract_size=5000, spread_points=30),
    "BTCUSD": SymbolSpec("BTCUSD", digits=2, contract_size=1, spread_points=1500),
    "ETHUSD": SymbolSpec("ETHUSD", digits=2, contract_size=1, spread_points=200),
    "US30": SymbolSpec("US30", digits=1, contract_size=1, volume_min=0.1, volume_step=0.1, spread_points=30),
    "NAS100": SymbolSpec("NAS100", digits=1, contract_size=1, volume_min=0.1, volume_step=0.1, spread_points=20),
}
_ALIASES = {"GOLD": "XAUUSD", "SILVER": "XAGUSD"}
_FX = re.compile(r"^[A-Z]{6}$")


@functools.lru_cache(maxsize=4096)   # pure, and called for every position in exposure checks
def root_symbol(symbol: str) -> str:
    """`XAUUSDm` → `XAUUSD`, `XAUUSD.a` → `XAUUSD`, `gold` → `XAUUSD`, `EURUSD_i` → `EURUSD`."""
    s = symbol.strip().upper()
    s = re.split(r"[._#\-+!]", s, maxsplit=1)[0] or s
    if s in _ALIASES:
        return _ALIASES[s]
    for name in list(_TABLE) + list(_ALIASES):
        if s.startswith(name) and len(s) - len(name) <= 2:
            return _ALIASES.get(name, name)
    if len(s) in (7, 8) and _FX.match(s[:6]):
        return s[:6]          # EURUSDm, EURUSDpro → EURUSD
    return s


def is_metal(symbol: str) -> bool:
    return root_symbol(symbol).startswith(METAL_ROOTS)


def is_fx_pair(symbol: str) -> bool:
    r = root_symbol(symbol)
    return bool(_FX.match(r)) and not r.startswith(METAL_ROOTS + CRYPTO_ROOTS)


def default_qty(symbol: str, overrides: dict[str, SymbolSpec] | None = None) -> float:
    """0.01 lot for metals, 0.10 for currency pairs (the engine this replaces), else 0.01;
    never below the minimum volume of a symbol whose spec is known (US30: 0.1)."""
    qty = 0.10 if is_fx_pair(symbol) else 0.01
    spec = known_spec(symbol, overrides)
    return max(qty, spec.volume_min) if spec is not None else qty


def known_spec(symbol: str, overrides: dict[str, SymbolSpec] | None = None) -> SymbolSpec | None:
    """The spec of `symbol` from the config's `symbols:` or the table above; None when it
    would only be a guess (an unlisted currency pair or instrument)."""
    if overrides:
        if symbol in overrides:
            return replace(overrides[symbol], symbol=symbol)
        r = root_symbol(symbol)
        if r in overrides:
            return replace(overrides[r], symbol=symbol)
    r = root_symbol(symbol)
    if r in _TABLE:
        return replace(_TABLE[r], symbol=symbol)
    return None


def spec_for(symbol: str, overrides: dict[str, SymbolSpec] | None = None) -> SymbolSpec:
    """The spec of `symbol`, named exactly as given (suffix kept)."""
    known = known_spec(symbol, overrides)
    if known is not None:
        return known
    r = root_symbol(symbol)
    if is_fx_pair(r):
        jpy = r.endswith("JPY")
        return SymbolSpec(symbol, digits=3 if jpy else 5, contract_size=100_000, spread_points=15,
                          currency=r[3:])
    return SymbolSpec(symbol, digits=2, contract_size=1, spread_points=20)
