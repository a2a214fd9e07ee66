"""One pass, in order: record the run, connect, reconcile, fetch bars, run each bot's signals,
keep positions up, record how the run ended. The work itself is in market, signals and upkeep."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import TYPE_CHECKING

from scalper.clock import iso
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.engine.context import PassContext, RunSummary, close_brokers
from scalper.engine.market import fetch_windows
from scalper.engine.signals import SignalFlow
from scalper.engine.upkeep import upkeep
from scalper.errors import BrokerUnavailable, ScalperError
from scalper.feeds.base import Feed
from scalper.ledger import passes as books
from scalper.ledger.rows import OrderRow
from scalper.vocab import FEED_SKIPS, BotSkip, OrderKind, RunStatus

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import BotConfig


class Pass:
    """Sequences one run-once pass over the bots named (all when None)."""

    def __init__(self, ctx: PassContext, feed: Feed, bot_names: list[str] | None,
                 prefetched: dict[str, Bars | Exception]) -> None:
        self.ctx = ctx
        self.feed = feed
        self.bot_names = bot_names
        self.prefetched = prefetched
        self.t0 = time.perf_counter()

    def run(self) -> RunSummary:
        ctx, s = self.ctx, self.ctx.summary
        books.start_run(ctx.ledger, run_id=ctx.run_id, started_at=s.started_at, now=ctx.now, pid=os.getpid(),
                        dry_run=ctx.dry_run, host=ctx.host)
        status = RunStatus.OK
        try:
            self._run()
            if s.bots_skipped and all(b["reason"] == BotSkip.ENGINE_PAUSED for b in s.bots_skipped) and not s.bots_run:
                status = RunStatus.PAUSED
        except ScalperError as exc:
            status = RunStatus.UNAVAILABLE if exc.exit_code == 3 else RunStatus.ERROR
            s.errors.append(str(exc))
            s.exit_code = exc.exit_code
        except Exception as exc:  # recorded, then re-raised for the CLI's exit 1
            s.errors.append(f"{type(exc).__name__}: {exc}")
            s.exit_code = 1
            self._finish(RunStatus.ERROR)
            raise
        finally:
            close_brokers(ctx.brokers)
        if s.exit_code == 2 and status == RunStatus.OK:
            status = RunStatus.ERROR      # bad feed data: not a clean run, whatever else went well
        if ctx.unreachable and not s.exit_code:
            s.exit_code = 3
            status = RunStatus.UNAVAILABLE
        if not s.bots_run and not s.exit_code and any(b["reason"] in FEED_SKIPS for b in s.bots_skipped):
            # no bot could run for want of fresh bars: the feed is unavailable (contract: exit 3)
            s.errors += s.warnings
            s.warnings = []
            s.errors.append("no bot could run: the feed gave no fresh bars (feed unavailable)")
            s.exit_code = 3
            status = RunStatus.UNAVAILABLE
        self._finish(status)
        return s

    def _finish(self, status: RunStatus) -> None:
        ctx, s = self.ctx, self.ctx.summary
        s.orders = dict(ctx.orders)
        s.orders_final = dict(Counter(ctx.order_outcome.values()))
        s.duration_s = round(time.perf_counter() - self.t0, 4)
        try:
            books.finish_run(ctx.ledger, ctx.run_id, finished_at=iso(time.time()), duration_s=s.duration_s,
                             status=status, summary=s.to_dict())
        except ScalperError as exc:
            s.errors.append(str(exc))
            s.exit_code = s.exit_code or exc.exit_code

    def _run(self) -> None:
        ctx, s = self.ctx, self.ctx.summary
        paused, why = ctx.ledger.paused()
        candidates = [b for b in ctx.cfg.bots if not self.bot_names or b.name in self.bot_names]
        if paused:
            for b in candidates:
                s.bots_skipped.append({"bot": b.name, "reason": BotSkip.ENGINE_PAUSED, "detail": why or ""})
            return
        bots: list[BotConfig] = []
        for b in candidates:
            if not b.enabled:
                s.bots_skipped.append({"bot": b.name, "reason": BotSkip.DISABLED})
            elif b.engine_mode != "scalper":
                s.bots_skipped.append({"bot": b.name, "reason": f"engine_mode_{b.engine_mode}"})
            else:
                bots.append(b)
        if not bots:
            return

        self._connect({a for b in bots for a in b.accounts})
        magics = {b.magic_number: b.name for b in ctx.cfg.bots}
        if not ctx.dry_run:
            self._reconcile(magics)

        windows = fetch_windows(ctx, self.feed, self.prefetched, bots)
        flow = SignalFlow(ctx)
        for bot in bots:
            if not ctx.reachable(bot.accounts):
                s.bots_skipped.append({"bot": bot.name, "reason": BotSkip.BROKER_UNAVAILABLE})
                continue
            got = windows[bot.symbol]
            if isinstance(got, BotSkip):
                s.bots_skipped.append({"bot": bot.name, "reason": got})
                continue
            flow.run_bot(bot, got.tail(bot.lookback))
            s.bots_run.append(bot.name)

        if not ctx.dry_run:
            upkeep(ctx, bots, magics)

    def _connect(self, account_ids: set[int]) -> None:
        ctx = self.ctx
        for acc_id in sorted(account_ids):
            acc = ctx.cfg.account(acc_id)
            try:
                broker = ctx.broker_factory(acc)
                broker.connect()
                ctx.balances[acc_id] = broker.account_info().balance
                ctx.brokers[acc_id] = broker
            except BrokerUnavailable as exc:
                ctx.unreachable[acc_id] = str(exc)
                ctx.summary.errors.append(f"account {acc.label}: {exc}")
        if ctx.unreachable and not ctx.brokers:
            raise BrokerUnavailable("no broker account could be reached; nothing traded")

    def _reconcile(self, magics: dict[int, str]) -> None:
        ctx = self.ctx
        for acc_id, broker in ctx.brokers.items():
            broker.sync()
            # SL/TP exits booked by the sync change the balance that sizing and risk read
            ctx.balances[acc_id] = broker.account_info().balance
            ctx.summary.reconciled += ctx.desk.reconcile_orders(broker, acc_id, self._order_still_fresh)
            ctx.summary.count_positions(ctx.desk.sync_positions(broker, acc_id, magics))

    def _order_still_fresh(self, order: OrderRow) -> bool:
        """May an order that never left be sent now? Closes always; opens while their signal is fresh."""
        if order.kind != OrderKind.OPEN or order.signal_id is None:
            return order.kind == OrderKind.CLOSE
        signal = self.ctx.ledger.signals.get(order.signal_id)
        try:
            limit = self.ctx.cfg.bot(order.bot).risk.signal_max_age_s
        except KeyError:
            return False
        return signal is not None and self.ctx.now - (signal.bar_ts + BAR_SECONDS) <= limit
