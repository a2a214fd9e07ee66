"""One engine pass (`scalper run-once`): the one place that sequences feed → core → ledger → broker.
Everything it decides comes from `scalper.core`; everything it remembers goes through the ledger
(`scalper.ledger.passes`); every order through the desk.

The parts of a pass, by concern:
- `sequence`: the pass itself, in order, and how the run ended;
- `market`: closed bars per symbol and their freshness (also what `scalper check` reports);
- `signals`: strategies → signals → risk decisions → one order per account;
- `upkeep`: positions after the signals: sync, trailing stops, kill-switches, daily P&L;
- `context`: what they share (summary, brokers, balances, the order desk).
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable
from os import PathLike
from typing import TYPE_CHECKING

from scalper.clock import Clock
from scalper.core.bars import Bars
from scalper.engine.context import BrokerFactory, PassContext, RunSummary, close_brokers
from scalper.engine.sequence import Pass
from scalper.engine.signals import dedupe_key
from scalper.errors import BadInput, DataError
from scalper.feeds.base import Feed
from scalper.ledger import Ledger, run_lock
from scalper.ledger.lock import DEFAULT_HOST, leaves_lock_file

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import Config

__all__ = ["BrokerFactory", "Engine", "RunSummary", "close_brokers", "dedupe_key"]


class Engine:
    def __init__(self, cfg: Config, *, ledger_path: str | PathLike[str], clock: Clock, feed: Feed,
                 broker_factory: BrokerFactory, dry_run: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self.ledger_path = ledger_path
        self.clock = clock
        self.feed = feed
        self.broker_factory = broker_factory
        self.dry_run = dry_run
        self.sleep = sleep
        self.host = DEFAULT_HOST   # the terminal host this pass is for (a fleet: its lock on PostgreSQL)

    def run_once(self, bot_names: list[str] | None = None) -> RunSummary:
        unknown = [n for n in (bot_names or []) if n not in {b.name for b in self.cfg.bots}]
        if unknown:
            from scalper.errors import quote

            raise BadInput(f"no bot named {quote(unknown[0])}", where="--bot",
                           fix=f"use one of: {', '.join(b.name for b in self.cfg.bots) or '(no bots defined)'}")
        now = self.clock.now()
        # The bars are read before anything is opened or written: when every symbol's data is bad,
        # the run is bad input (exit 2) and leaves no file behind, like a bad config.
        bars = self._read_bars(bot_names, now)
        bad = [v for v in bars.values() if isinstance(v, DataError)]
        if bars and len(bad) == len(bars):
            raise bad[0]
        # a dry run on a ledger that was never created leaves no lock file behind either
        dry_and_new = self.dry_run and leaves_lock_file(self.ledger_path)  # type: ignore[arg-type]
        with (contextlib.nullcontext() if dry_and_new else run_lock(self.ledger_path, host=self.host)):  # type: ignore[arg-type]
            ledger = Ledger.snapshot(self.ledger_path) if self.dry_run else Ledger(self.ledger_path)
            with ledger:
                ctx = PassContext(self.cfg, ledger, clock=self.clock, now=now, dry_run=self.dry_run,
                                  broker_factory=self.broker_factory, sleep=self.sleep, host=self.host)
                return Pass(ctx, self.feed, bot_names, bars).run()

    def _read_bars(self, bot_names: list[str] | None, now: float) -> dict[str, Bars | Exception]:
        """Closed bars once per symbol of the bots that would run (the most any bot on it needs),
        or the feed's error."""
        need: dict[str, int] = defaultdict(int)
        for b in self.cfg.bots:
            if (not bot_names or b.name in bot_names) and b.enabled and b.engine_mode == "scalper":
                need[b.symbol] = max(need[b.symbol], b.lookback)
        out: dict[str, Bars | Exception] = {}
        for symbol, count in need.items():
            try:
                out[symbol] = self.feed.closed_bars(symbol, count, now)
            except Exception as exc:  # not swallowed: re-raised inside the pass, which records the run
                out[symbol] = exc
        return out
