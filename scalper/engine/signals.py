"""Signals → decisions → fan-out, for one bot at a time: evaluate the strategies, record each signal
under its dedupe key, decide on risk (once per signal, ever), and send one order per broker account.
Signals an interrupted run left half done are finished first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from scalper.brokers.base import Broker
from scalper.core import risk, strategies
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.core.exposure import build_exposure, day_start
from scalper.core.signals import Signal, Skip
from scalper.core.sizing import size_order
from scalper.engine.context import PassContext, log
from scalper.errors import ScalperError
from scalper.faults import crash_point
from scalper.ledger import passes as books
from scalper.ledger.rows import OrderRow
from scalper.settings import risk_limits
from scalper.symbols import SymbolSpec
from scalper.vocab import DecisionAction, OrderKind, OrderStatus

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import BotConfig

RESUME_WINDOW_S = 86_400   # how far back a run looks for signals an interrupted run left undecided

OutcomeKey = tuple[str, int, str, tuple[tuple[str, Any], ...]]


def dedupe_key(bot: str, signal: Signal, symbol: str) -> str:
    return f"{bot}|{signal.strategy}|{symbol}|{signal.bar_time}|{signal.direction}"


class SignalFlow:
    """The signal side of one pass. Strategy outcomes are shared by bots with the same inputs."""

    def __init__(self, ctx: PassContext) -> None:
        self.ctx = ctx
        self.seen_signals: set[int] = set()
        self.outcomes: dict[OutcomeKey, Signal | Skip] = {}

    def run_bot(self, bot: BotConfig, window: Bars) -> None:
        s = self.ctx.summary
        self._resume_interrupted(bot, window)
        for name in bot.strategies:
            params = bot.params_for(name)
            # Strategies are pure: bots sharing a symbol, lookback and parameters share the outcome.
            key = (bot.symbol, bot.lookback, name, tuple(sorted(params.items())))
            outcome = self.outcomes.get(key)
            if outcome is None:
                outcome = self.outcomes[key] = strategies.evaluate(name, window, params)
            if isinstance(outcome, Skip):
                s.skips[outcome.reason] = s.skips.get(outcome.reason, 0) + 1
                continue
            self._handle_signal(bot, outcome, window)

    def _handle_signal(self, bot: BotConfig, signal: Signal, window: Bars) -> None:
        ctx, s = self.ctx, self.ctx.summary
        key = dedupe_key(bot.name, signal, bot.symbol)
        signal_id, created = books.record_signal(ctx.ledger, signal, dedupe_key=key, run_id=ctx.run_id,
                                                 bot=bot.name, symbol=bot.symbol, now=ctx.now)
        first_look = signal_id not in self.seen_signals   # a resumed signal is found again by its strategy
        self.seen_signals.add(signal_id)
        if created:
            s.signals += 1
            s.signals_by_strategy[signal.strategy] = s.signals_by_strategy.get(signal.strategy, 0) + 1
        crash_point("after_signal")
        earlier = ctx.ledger.signals.decision(signal_id)
        if earlier is None:
            decision = risk.decide(signal, self._exposure(bot, window), risk_limits(bot.risk), ctx.now)
            if not books.record_decision(ctx.ledger, signal_id, decision, run_id=ctx.run_id, bot=bot.name,
                                         now=ctx.now):
                earlier = ctx.ledger.signals.decision(signal_id)   # another host's pass decided it first
        if earlier is None:
            s.decisions[decision.reason] = s.decisions.get(decision.reason, 0) + 1
            crash_point("after_decision")
            approved = decision.approved
        else:
            if not created and first_look:
                s.duplicate_signals += 1
            # Decided by an earlier (interrupted) run: send only while the signal is still fresh.
            approved = (earlier.action == DecisionAction.OPEN
                        and risk.signal_age(signal, ctx.now) <= bot.risk.signal_max_age_s)
        if not approved or ctx.dry_run:
            return
        if not bot.auto_trade:   # a bot that only records its signals (watching, or kept on paper by hand)
            s.not_sent[bot.name] = s.not_sent.get(bot.name, 0) + 1
            return
        self._fan_out(bot, signal, signal_id, key)

    def _resume_interrupted(self, bot: BotConfig, window: Bars) -> None:
        """Finish the signals an interrupted run left half done: recorded but never decided, or
        approved but not fanned out to every account while still fresh. The strategies only look
        at the newest closed bar, so a rerun in a later minute would otherwise never see them again.
        The dedupe key and the client order ids keep this to at most one order per account.
        Undecided signals are looked for over the last day (a stale one is decided as stale)."""
        now = self.ctx.now
        pending = self.ctx.ledger.signals.unfinished(bot=bot.name, symbol=bot.symbol,
                                                     since_ts=now - RESUME_WINDOW_S,
                                                     approved_since_ts=now - BAR_SECONDS - bot.risk.signal_max_age_s)
        for p in pending:
            if p.action is not None and (not bot.auto_trade or set(bot.accounts) <= p.order_accounts):
                continue
            signal = books.signal_of(p.signal)
            if dedupe_key(bot.name, signal, bot.symbol) != p.signal.dedupe_key:
                continue  # never a second row for one signal
            self._handle_signal(bot, signal, window)

    def _fan_out(self, bot: BotConfig, signal: Signal, signal_id: int, key: str) -> None:
        """One order per broker account of the bot."""
        ctx = self.ctx
        qty = ctx.cfg.qty_of(bot, ctx.specs)
        for acc_id in bot.accounts:
            broker = ctx.brokers.get(acc_id)
            spec: SymbolSpec | None = None
            problem: str | None = None
            if broker is None or acc_id in ctx.unreachable:
                problem = f"account {acc_id} unreachable: {ctx.unreachable.get(acc_id, '')}"
            else:
                spec, problem = ctx.sizing_spec(broker, acc_id, bot.symbol)
            if spec is None:
                # Never sized from a guessed contract size: the order is recorded and refused here.
                order, created = ctx.desk.record_intent(
                    signal_id=signal_id, dedupe_key=key, account_id=acc_id, bot=bot.name, symbol=bot.symbol,
                    side=signal.direction, volume=qty, sl=signal.sl, tp=signal.tp, magic=bot.magic_number)
            else:
                sized = size_order(qty=qty, spec=spec, risk_percent=bot.risk.risk_percent,
                                   balance=ctx.balances.get(acc_id), risk_per_unit=signal.risk)
                if not sized.ok:
                    # Never raised to the minimum: recorded with volume 0 (no broker fills that, should a
                    # crash leave it unsent) and refused with the reason.
                    problem = f"{sized.reason}: {sized.detail}"
                order, created = ctx.desk.record_intent(
                    signal_id=signal_id, dedupe_key=key, account_id=acc_id, bot=bot.name, symbol=bot.symbol,
                    side=signal.direction, volume=sized.volume, sl=spec.round_price(signal.sl),
                    tp=spec.round_price(signal.tp), magic=bot.magic_number)
            if created:
                ctx.summary.orders_created += 1
            crash_point("after_intent")
            if problem is not None or broker is None:
                self._refuse(order, problem or "")
                continue
            ctx.desk.send(broker, order)

    def _refuse(self, order: OrderRow, message: str) -> None:
        """An intent that cannot be sent (no spec to size it, account unreachable) ends `error` here."""
        if order.status != OrderStatus.NEW:
            return
        ctx = self.ctx
        books.refuse_intent(ctx.ledger, order.id, message,
                            audit_message=f"order {order.client_order_id} not sent: {message}",
                            now=ctx.now, run_id=ctx.run_id, bot=order.bot, account_id=order.account_id)
        log.warning("order %s (%s, account %s) not sent: %s", order.client_order_id, order.bot,
                    order.account_id, message)
        ctx.on_event("order_status", {"status": OrderStatus.ERROR, "order": order, "message": message})

    # --- exposure for the risk decision ----------------------------------------
    def _exposure(self, bot: BotConfig, window: Bars) -> risk.Exposure:
        ctx = self.ctx
        accounts = ctx.reachable(bot.accounts)
        positions = ctx.ledger.positions.open(accounts)
        inflight = ctx.ledger.orders.in_flight(accounts, kind=OrderKind.OPEN)
        group_symbols = {m for g in ctx.cfg.groups_of(bot.symbol) for m in ctx.cfg.correlation_groups[g]}
        unrealized = sum(p.unrealized or 0.0 for p in positions if p.bot == bot.name)
        realized = ctx.ledger.positions.realized_today(day_start(ctx.now)).get(bot.name, 0.0)
        held = [(p.account_id, p.symbol, p.side) for p in positions]
        market = self._market(bot, accounts)   # one quote and spec for both uses below
        return build_exposure(
            held + [(o.account_id, o.symbol, o.side) for o in inflight],
            symbol=bot.symbol, group_symbols=group_symbols,
            balance=min((ctx.balances.get(a, 0.0) for a in accounts), default=0.0),
            pnl_today=realized + unrealized,
            spread_points=self._spread_points(window, market),
            kill_switch_engaged=ctx.ledger.kill_switches.get(bot.name) is not None,
            **self._stops_check(market))

    def _market(self, bot: BotConfig, accounts: list[int]) -> tuple[Any, SymbolSpec] | None:
        """(the latest quote, the symbol's spec) at the bot's first account; None when no quote
        can be had (the broker decides then)."""
        if not accounts:
            return None
        broker: Broker = self.ctx.brokers[accounts[0]]
        try:
            q = broker.quote(bot.symbol)
        except ScalperError:
            return None
        return q, self.ctx.rounding_spec(broker, bot.symbol)

    @staticmethod
    def _stops_check(market: tuple[Any, SymbolSpec] | None) -> dict[str, Any]:
        """The latest quote the order would meet and the symbol's stop rules (risk's last check)."""
        if market is None:
            return {}
        q, spec = market
        return {"quote": (q.bid, q.ask), "price_digits": spec.digits,
                "stops_min_distance": spec.stops_level * spec.point}

    @staticmethod
    def _spread_points(window: Bars, market: tuple[Any, SymbolSpec] | None) -> float | None:
        """The signal bar's spread when the feed has one, else the broker's current quote."""
        if len(window) and not np.isnan(window.spread[-1]):
            return float(window.spread[-1])
        if market is None:
            return None
        q, spec = market
        return (q.ask - q.bid) / spec.point

