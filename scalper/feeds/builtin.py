"""The built-in feed: synthetic but realistic M1 bars for any symbol at any instant.

Nothing to install or download, and deterministic: a bar depends only on
(seed, symbol, minute), so two runs in the same minute see the same bars and a
bar never changes when asked for again later.

How a bar comes about:
- Each UTC day has an anchor price at 00:00, computed directly from the day
  number (no walk from an epoch): the symbol's usual level, moved by smooth
  multi-week swings and a day-to-day term, all hash-seeded.
- Within the day, a path of sub-minute log-returns joins one anchor to the
  next (a Brownian bridge). Volatility follows the trading sessions (quiet in
  Asia, busy at the London and New York opens), flares up in occasional
  clusters, and drifts in short trend regimes; returns are fat-tailed.
- A bar is one minute of that path: open = previous close, high/low = the
  path's extremes plus a tick-spike wick now and then.
Cost is one day of path (1,440 bars) per day touched, cached.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from difflib import get_close_matches
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from scalper.clock import DAY_SECONDS
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.feeds import plausible
from scalper.symbols import CRYPTO_ROOTS, SymbolSpec, is_fx_pair, known_spec, root_symbol, spec_for

MINUTES = DAY_SECONDS // BAR_SECONDS
SUBSTEPS = 8                 # path points per minute: enough for wicks, cheap to compute
MAX_BARS = 2_000_000         # about four years of M1 bars; a larger request is a caller bug


@dataclass(frozen=True)
class Market:
    """How a symbol trades: its usual price, its daily volatility and its activity."""

    level: float
    daily_vol: float       # standard deviation of a day's log-return
    always_open: bool      # crypto: no session lull, no quiet weekend
    tick_volume: float     # typical ticks per minute


_MARKETS = {
    "XAUUSD": Market(2350.0, 0.012, False, 120),
    "XAGUSD": Market(30.0, 0.018, False, 60),
    "XPTUSD": Market(1000.0, 0.015, False, 30),
    "XPDUSD": Market(1000.0, 0.020, False, 20),
    "BTCUSD": Market(65_000.0, 0.028, True, 25),
    "ETHUSD": Market(3200.0, 0.035, True, 30),
    "SOLUSD": Market(150.0, 0.045, True, 20),
    "LTCUSD": Market(85.0, 0.035, True, 15),
    "US30": Market(39_000.0, 0.009, False, 80),
    "NAS100": Market(18_000.0, 0.012, False, 100),
    "US500": Market(5200.0, 0.009, False, 80),
    "SPX500": Market(5200.0, 0.009, False, 80),
    "GER40": Market(18_000.0, 0.010, False, 70),
    "DE40": Market(18_000.0, 0.010, False, 70),
    "UK100": Market(8000.0, 0.008, False, 50),
    "JP225": Market(38_000.0, 0.012, False, 60),
    "EURUSD": Market(1.08, 0.005, False, 60),
    "GBPUSD": Market(1.27, 0.006, False, 60),
    "AUDUSD": Market(0.66, 0.007, False, 40),
    "NZDUSD": Market(0.60, 0.007, False, 30),
    "USDCHF": Market(0.90, 0.005, False, 40),
    "USDCAD": Market(1.36, 0.005, False, 40),
    "EURGBP": Market(0.85, 0.004, False, 30),
    "USDJPY": Market(150.0, 0.006, False, 60),
    "EURJPY": Market(162.0, 0.007, False, 40),
    "GBPJPY": Market(190.0, 0.008, False, 40),
}
_FX_MARKET = Market(1.08, 0.005, False, 40)
_JPY_MARKET = Market(150.0, 0.006, False, 40)
_CRYPTO_MARKET = Market(100.0, 0.040, True, 20)
_OTHER_MARKET = Market(100.0, 0.015, False, 40)

# Relative volatility by UTC hour for markets with sessions: Tokyo, London open
# at 07:00, the New York open and US data at 13:00-15:00, the rollover lull at 21:00.
_SESSION = np.array([0.70, 0.70, 0.75, 0.75, 0.75, 0.75, 0.85, 1.20, 1.10, 1.05, 1.00, 1.00,
                     1.10, 1.55, 1.60, 1.45, 1.25, 1.00, 0.95, 0.90, 0.80, 0.55, 0.60, 0.65])
# Spreads widen in thin hours: Asia a little, the rollover a lot.
_SPREAD = np.array([1.3, 1.3, 1.2, 1.2, 1.1, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 2.5, 1.8, 1.4])
_SWINGS = ((61, 5.0), (13, 2.0))   # (period in days, amplitude in daily vols) of the slow moves
_DAY_TERM = 0.7                      # daily vols; the day-to-day anchor noise
_TREND = 0.12                        # regime drift per minute, in per-minute vols
_TAIL_DF = 4                         # Student-t degrees of freedom of the returns
_NORMAL = NormalDist()


def market_for(symbol: str) -> Market:
    root = root_symbol(symbol)
    if root in _MARKETS:
        return _MARKETS[root]
    if root.startswith(CRYPTO_ROOTS):
        return _CRYPTO_MARKET
    if is_fx_pair(root):
        return _JPY_MARKET if root.endswith("JPY") else _FX_MARKET
    return _OTHER_MARKET


LEVEL_FACTOR = 10.0   # prices this many times away from a symbol's usual level are another instrument's


def far_from_usual(symbol: str, closes: np.ndarray) -> str | None:
    """A warning when a bar file's prices are not the instrument's (median close more than
    LEVEL_FACTOR times away from the symbol's usual level, `_MARKETS`): a file of another symbol
    would be replayed with this one's contract size, digits and spread. None when they fit, or
    when the symbol's level is not known."""
    market = _MARKETS.get(root_symbol(symbol))
    if market is None or not len(closes):
        return None
    median = float(np.median(closes))
    ratio = median / market.level
    if 1 / LEVEL_FACTOR <= ratio <= LEVEL_FACTOR:
        return None
    times = f"{ratio:,.0f} times" if ratio > 1 else f"1/{1 / ratio:,.0f} of"
    return (f"the file's prices (median close {median:,.6g}) are {times} {root_symbol(symbol)}'s usual level "
            f"(~{market.level:,.6g}): is the symbol right? It is replayed with {symbol}'s contract size, digits "
            f"and spread")


def unknown_symbol(symbol: str, overrides: dict[str, SymbolSpec] | None = None) -> str | None:
    """Why the built-in feed would only make up a market for `symbol` (a misspelt symbol would trade a
    price series nothing resembles), or None when it knows the instrument: its own table, a currency
    pair, a crypto root, the symbol table, or the config's `symbols:` (the trader vouches for it)."""
    root = root_symbol(symbol)
    if (root in _MARKETS or is_fx_pair(root) or root.startswith(CRYPTO_ROOTS)
            or known_spec(symbol, overrides) is not None):
        return None
    near = get_close_matches(root, list(_MARKETS), n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return f"the built-in feed does not know the symbol {symbol!r}{hint}"


class BuiltinFeed:
    """Synthetic M1 bars; see the module docstring. Brokers' decorated names of one
    instrument (XAUUSD, XAUUSDm, GOLD) share its bars."""

    name = "builtin"

    def __init__(self, seed: int = 7):
        self.seed = seed

    def closed_bars(self, symbol: str, count: int, now: float) -> Bars:
        last = _minute(now) - BAR_SECONDS
        return self._bars(symbol, last - (count - 1) * BAR_SECONDS, last)

    def bars_between(self, symbol: str, start: float, now: float) -> Bars:
        first = -(-int(math.ceil(start)) // BAR_SECONDS) * BAR_SECONDS
        return self._bars(symbol, first, _minute(now) - BAR_SECONDS)

    def price_at(self, symbol: str, now: float) -> float | None:
        forming = _minute(now)
        return float(self._bars(symbol, forming, forming).open[0])

    def _bars(self, symbol: str, first: int, last: int) -> Bars:
        """Bars with open times first .. last (inclusive, whole minutes)."""
        if last < first:
            return Bars.empty()
        if (last - first) // BAR_SECONDS >= MAX_BARS:
            raise ValueError(f"builtin feed: {(last - first) // BAR_SECONDS + 1} bars asked for; "
                             f"at most {MAX_BARS} at a time")
        spec = spec_for(symbol)
        key = (self.seed, root_symbol(symbol), spec.digits, spec.spread_points)
        days = [_day_bars(*key, day) for day in range(first // DAY_SECONDS, last // DAY_SECONDS + 1)]
        start = (first - days[0].time[0]) // BAR_SECONDS
        stop = start + (last - first) // BAR_SECONDS + 1
        if len(days) == 1:
            return days[0].slice(start, stop)
        joined = Bars(*(np.concatenate([getattr(d, f) for d in days])
                        for f in ("time", "open", "high", "low", "close", "volume", "spread")))
        return joined.slice(start, stop)


def _minute(now: float) -> int:
    return int(now // BAR_SECONDS) * BAR_SECONDS


@lru_cache(maxsize=64)
def _day_bars(seed: int, root: str, digits: int, spread_points: float, day: int) -> Bars:
    """The 1,440 bars of UTC day `day` (days since 1970-01-01)."""
    market = market_for(root)
    rng = np.random.default_rng(_hash_int(seed, root, "day", day))
    minute = np.arange(MINUTES)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    burst = _bursts(rng)
    activity = _session(market, weekday)[minute // 60] * burst
    sigma = market.daily_vol / math.sqrt(MINUTES) * activity  # per-minute log-return vol

    # Sub-minute path: fat-tailed shocks plus regime drifts, then bridged onto the anchors.
    step_sigma = np.repeat(sigma / math.sqrt(SUBSTEPS), SUBSTEPS)
    shocks = rng.standard_t(_TAIL_DF, MINUTES * SUBSTEPS) * math.sqrt((_TAIL_DF - 2) / _TAIL_DF)
    drift = np.repeat(_regime_drifts(rng) * sigma / SUBSTEPS, SUBSTEPS)
    steps = shocks * step_sigma + drift
    start, end = _anchor(seed, root, market, day), _anchor(seed, root, market, day + 1)
    weight = step_sigma ** 2 / np.sum(step_sigma ** 2)
    steps += weight * (end - start - steps.sum())
    path = start + np.concatenate(([0.0], np.cumsum(steps)))
    path[-1] = end  # exactly the next day's first open

    points = path[:-1].reshape(MINUTES, SUBSTEPS)
    open_, close = points[:, 0], path[SUBSTEPS::SUBSTEPS]
    high = np.maximum(points.max(axis=1), close)
    low = np.minimum(points.min(axis=1), close)
    # Ticks poke out beyond a sampled path: an occasional extra wick, up or down.
    spike = rng.exponential(0.6, (2, MINUTES)) * sigma * (rng.random((2, MINUTES)) < 0.25)
    high, low = high + spike[0], low - spike[1]

    ticks = market.tick_volume * activity * rng.lognormal(0.0, 0.35, MINUTES)
    spread = spread_points * _SPREAD[minute // 60] * np.sqrt(burst) * rng.lognormal(0.0, 0.12, MINUTES)
    o, h, lo, c = (np.round(np.exp(x), digits) for x in (open_, high, low, close))
    bars = Bars.from_arrays(day * DAY_SECONDS + minute * BAR_SECONDS, o, h, lo, c,
                            volume=np.maximum(1.0, np.round(ticks)), spread=np.maximum(1.0, np.round(spread)))
    # a seed or symbol table that drives the path out of range must not reach the books
    plausible.check_bars(bars, "builtin feed")
    for array in vars(bars).values():
        array.flags.writeable = False  # cached: every caller gets views of these arrays
    return bars


def _session(market: Market, weekday: int) -> np.ndarray:
    """Relative volatility by UTC hour; an ordinary weekday keeps the market's daily vol."""
    session = np.sqrt(_SESSION) if market.always_open else _SESSION.copy()
    session /= np.sqrt(np.mean(session ** 2))
    if weekday >= 5 and not market.always_open:
        session *= 0.4  # weekend: the few quotes there are move little
    return session


def _bursts(rng: np.random.Generator) -> np.ndarray:
    """Volatility clusters: a few bursts a day (news, stops running) that decay over minutes."""
    minute = np.arange(MINUTES)
    burst = np.ones(MINUTES)
    for _ in range(rng.poisson(2.5)):
        begin, strength, decay = rng.integers(MINUTES), rng.uniform(0.8, 2.5), rng.uniform(10, 60)
        after = minute >= begin
        burst[after] *= 1 + strength * np.exp(-(minute[after] - begin) / decay)
    return burst


def _regime_drifts(rng: np.random.Generator) -> np.ndarray:
    """Per-minute drift in per-minute vols: short trends (about 45 min) in random directions."""
    lengths = rng.geometric(1 / 45, MINUTES)
    ends = np.cumsum(lengths)
    count = int(np.searchsorted(ends, MINUTES)) + 1
    strengths = rng.normal(0.0, _TREND, count)
    return np.repeat(strengths, lengths[:count])[:MINUTES]


def _anchor(seed: int, root: str, market: Market, day: int) -> float:
    """Log price at 00:00 UTC of `day`: level, smooth swings, and a day-to-day term."""
    x = math.log(market.level)
    for period, amplitude in _SWINGS:
        knot, offset = divmod(day, period)
        u = offset / period
        ease = u * u * (3 - 2 * u)  # smoothstep: the swing has no kinks at the knots
        a, b = (_hash_normal(seed, root, "swing", period, k) for k in (knot, knot + 1))
        x += amplitude * market.daily_vol * (a + (b - a) * ease)
    return x + _DAY_TERM * market.daily_vol * _hash_normal(seed, root, "day-anchor", day)


def _hash_int(*parts: object) -> int:
    """A stable 64-bit number for `parts` (Python's hash() changes between processes)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _hash_normal(*parts: object) -> float:
    return _NORMAL.inv_cdf((_hash_int(*parts) + 0.5) / 2**64)
