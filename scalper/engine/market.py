"""Market data for a pass: closed bars once per symbol, refused when stale, missing, bad, or when
the trade server's clock moved under them. `bar_freshness` is also what `scalper check` reports."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from scalper.clock import human_age, iso
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.engine.context import PassContext
from scalper.errors import DataError, FeedUnavailable, ServerClockUncertain
from scalper.feeds.base import Feed
from scalper.vocab import BotSkip

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import BotConfig


@dataclass(frozen=True)
class Freshness:
    """How old the newest closed bar is, against the limit run-once trades under (feed.max_bar_age_s)."""
    bars: int
    age_s: float | None     # None: no closed bar at all
    max_age_s: float

    @property
    def fresh(self) -> bool:
        return self.age_s is not None and self.age_s <= self.max_age_s


def bar_freshness(bars: Bars, now: float, max_age_s: float) -> Freshness:
    """The newest bar closes BAR_SECONDS after it opens; its age counts from then."""
    age = now - (int(bars.time[-1]) + BAR_SECONDS) if len(bars) else None
    return Freshness(bars=len(bars), age_s=age, max_age_s=max_age_s)


def fetch_windows(ctx: PassContext, feed: Feed, prefetched: dict[str, Bars | Exception],
                  bots: list[BotConfig]) -> dict[str, Bars | BotSkip]:
    """Closed bars once per symbol (the most any bot on it needs), or the skip reason why not.
    `prefetched`: what the engine read before the pass began (bars or the feed's error)."""
    s = ctx.summary
    need: dict[str, int] = defaultdict(int)
    for b in bots:
        need[b.symbol] = max(need[b.symbol], b.lookback)
    out: dict[str, Bars | BotSkip] = {}
    max_age = ctx.cfg.feed.max_bar_age_s
    for symbol, count in need.items():
        try:
            got = prefetched.get(symbol)
            if isinstance(got, Exception):
                raise got
            bars = feed.closed_bars(symbol, count, ctx.now) if got is None else got
        except ServerClockUncertain as exc:
            s.errors.append(f"feed {symbol}: {exc}")
            out[symbol] = BotSkip.SERVER_TIME_UNCERTAIN
            s.exit_code = 3
            continue
        except FeedUnavailable as exc:
            s.errors.append(f"feed {symbol}: {exc}")
            out[symbol] = BotSkip.FEED_UNAVAILABLE
            s.exit_code = 3
            continue
        except DataError as exc:
            s.errors.append(f"feed {symbol}: {exc}")
            out[symbol] = BotSkip.FEED_BAD_DATA
            s.exit_code = 2
            continue
        fresh = bar_freshness(bars, ctx.now, max_age)
        if fresh.age_s is None:
            s.warnings.append(f"feed {symbol}: no closed bar up to {iso(ctx.now)}; not trading it")
            out[symbol] = BotSkip.FEED_NO_BARS
            continue
        if not fresh.fresh:
            s.warnings.append(f"feed {symbol}: newest closed bar is {human_age(fresh.age_s)} old "
                              f"(limit {max_age} s); not trading on it")
            out[symbol] = BotSkip.FEED_STALE
            continue
        if getattr(feed, "name", "") == "mt5" and not _same_bar_times(ctx, symbol, bars):
            out[symbol] = BotSkip.SERVER_TIME_UNCERTAIN
            s.exit_code = 3
            continue
        out[symbol] = bars
    return out


def _same_bar_times(ctx: PassContext, symbol: str, bars: Bars) -> bool:
    """Has no bar already seen come back under another time? The newest bar of each pass is
    remembered; when the feed's UTC times rest on an estimated server offset that moved (stale
    quotes in a break), the remembered bar's time holds another bar: refuse the window, and
    never record a signal on a bar that was seen before under another time."""
    key = f"last_bar|{symbol}"
    newest = [int(bars.time[-1]), float(bars.open[-1]), float(bars.high[-1]), float(bars.low[-1]),
              float(bars.close[-1])]
    seen = ctx.ledger.state(key)
    if seen is not None:
        t, *ohlc = json.loads(seen)
        i = bars.index_of(t)
        if i is not None and not np.allclose(ohlc, [bars.open[i], bars.high[i], bars.low[i], bars.close[i]]):
            ctx.summary.errors.append(
                f"feed {symbol}: the bar seen before at {iso(t)} now comes with other prices: the trade "
                "server's UTC offset moved (estimated from a stale quote?); not trading on these bars — "
                "set server_utc_offset_s on the account in bots.yaml")
            return False
        if i is None and t > newest[0]:
            return True   # an older window (a replay): nothing to compare, nothing to remember
    if not ctx.dry_run and newest != (json.loads(seen) if seen else None):
        with ctx.ledger.tx() as c:
            ctx.ledger.set_state(c, key, json.dumps(newest), ctx.now)
    return True
