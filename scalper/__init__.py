"""scalper — an M1 price-action scalping engine for MetaTrader 5."""

__version__ = "0.1.0"
