"""M1 bars from a running MetaTrader 5 terminal.

The contract is docs/mt5-api.md §4: `copy_rates_*` answer a numpy structured
array, oldest bar first, whose newest row (position 0) is the bar still
forming, stamped in the trade server's clock. This feed converts the times to
UTC (the server's offset, shared with the mt5 broker through
`scalper.mt5_terminal`) and, as docs/strategies.md "The window" says, asks
for one bar more than needed and drops the newest only while it is still
forming (`open_time + 60 > now`): a quiet minute without a tick yet has no
forming bar and costs no closed one.

It attaches to the terminal the process already has open (an mt5 broker's),
or opens it itself: with `account` (login, server, password_env,
terminal_path), or as the terminal's current account.
"""

from __future__ import annotations

import numpy as np

from scalper.config import AccountConfig
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.errors import DataError, FeedUnavailable, ServerClockUncertain
from scalper.feeds import plausible
from scalper.feeds.factory import MT5_MISSING
from scalper.mt5_terminal import IPC_ERRORS, Terminal, TerminalAccount, UnknownSymbol, describe_failure, load_package


class Mt5Feed:
    name = "mt5"

    def __init__(self, *, account: AccountConfig | None = None, module=None, server_offset_s: int | None = None):
        module = module if module is not None else load_package(FeedUnavailable, MT5_MISSING)
        self._t = Terminal(module, error=FeedUnavailable, server_offset_s=server_offset_s,
                           uncertain_error=ServerClockUncertain)
        self._access = TerminalAccount.of(account)

    def closed_bars(self, symbol: str, count: int, now: float) -> Bars:
        name = self._symbol(symbol)
        rates = self._t.need("copy_rates_from_pos", name, self._t.mt5.TIMEFRAME_M1, 0, count + 1)
        return self._closed(rates, name, now).tail(count)

    def bars_between(self, symbol: str, start: float, now: float) -> Bars:
        name = self._symbol(symbol)
        offset = self._t.offset(now)
        rates = self._t.need("copy_rates_range", name, self._t.mt5.TIMEFRAME_M1, int(start) + offset,
                            int(now) + offset)
        return self._closed(rates, name, now).between(start, None)

    def price_at(self, symbol: str, now: float) -> float | None:
        """The live quote's mid: a terminal only knows the present, which is what `now` is live."""
        name = self._symbol(symbol)
        tick, error = self._t.call("symbol_info_tick", name)
        if tick is None:
            if error[0] in IPC_ERRORS:
                raise FeedUnavailable(describe_failure("symbol_info_tick", error))
            return None
        if tick.bid <= 0 or tick.ask <= 0:
            return None  # no quote yet
        return plausible.check_price((tick.bid + tick.ask) / 2, f"quote of {name}")

    def _symbol(self, symbol: str) -> str:
        self._t.open(self, self._access, hold=False)
        try:
            return self._t.resolve(symbol)
        except UnknownSymbol as exc:
            raise DataError(exc.message, where="feed", fix=exc.fix) from None

    def _closed(self, rates: np.ndarray, name: str, now: float) -> Bars:
        """The bars in UTC, without the one still forming at `now`."""
        times = rates["time"].astype(np.int64) - (self._t.offset(now) if len(rates) else 0)
        if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
            raise DataError(f"the terminal's M1 bars of {name} are not in strictly increasing time order",
                            where="feed", fix="let the terminal reload the symbol's history, then run again")
        bars = Bars.from_arrays(times, rates["open"], rates["high"], rates["low"], rates["close"],
                                volume=rates["tick_volume"], spread=rates["spread"])
        if len(bars) and int(bars.time[-1]) + BAR_SECONDS > now:
            bars = bars.slice(0, len(bars) - 1)
        plausible.check_bars(bars, f"terminal history of {name}")   # a bad tick in it
        return bars
