"""scalper — an M1 price-action scalping engine for MetaTrader 5."""

__version__ = "0.1.0"

import logging as _logging

# Library convention: silent unless the CLI (scalper.logsetup) configures a handler.
_logging.getLogger("scalper").addHandler(_logging.NullHandler())
