"""Position upkeep after the signals: sync every reached account, trail stops, trip and enforce
kill-switches, rebuild today's daily P&L. `close_bot_positions` is also how the operator's
kill-switch and rollback close a bot's positions (scalper.services.control)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scalper.brokers.base import Broker, BrokerPosition
from scalper.core.exposure import day_start, kill_switch_reason
from scalper.core.upkeep import trailing_stop
from scalper.engine.context import PassContext, log
from scalper.errors import BrokerUnavailable
from scalper.ledger import Ledger
from scalper.ledger import passes as books
from scalper.ledger.rows import PositionRow
from scalper.orders import OrderDesk
from scalper.settings import risk_rules
from scalper.vocab import CloseCause, KillSwitchSource, OrderStatus, TradeRetcode

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import BotConfig, Config


def upkeep(ctx: PassContext, bots: list[BotConfig], magics: dict[int, str]) -> None:
    by_name = {b.name: b for b in ctx.cfg.bots}
    for acc_id, broker in ctx.brokers.items():
        if acc_id in ctx.unreachable:
            continue
        broker.sync()
        live = broker.positions()
        ctx.summary.count_positions(ctx.desk.sync_positions(broker, acc_id, magics, live))
        _trail(ctx, broker, acc_id, live, by_name)
        ctx.balances[acc_id] = broker.account_info().balance
    # one read of the ledger for every bot's check, not three queries per bot
    reachable = [a for a in ctx.brokers if a not in ctx.unreachable]
    by_bot: dict[str | None, list[PositionRow]] = defaultdict(list)
    for p in ctx.ledger.positions.open(reachable):
        by_bot[p.bot].append(p)
    realized = ctx.ledger.positions.realized_today(day_start(ctx.now))
    engaged = ctx.ledger.kill_switches.engaged()
    for bot in bots:
        if bot.name in engaged:
            if engaged[bot.name].source != KillSwitchSource.KEEP_POSITIONS:
                _enforce_kill_switch(ctx, bot, by_bot.get(bot.name, []))
        elif bot.risk.kill_switch:
            _check_kill_switch(ctx, bot, by_bot.get(bot.name, []), realized.get(bot.name, 0.0))
    books.rebuild_daily_pnl(ctx.ledger, day_start(ctx.now))


def _trail(ctx: PassContext, broker: Broker, acc_id: int, live: Sequence[BrokerPosition],
           by_name: dict[str, BotConfig]) -> None:
    rows = {r.ticket: r for r in ctx.ledger.positions.open([acc_id])}
    for p in live:
        row = rows.get(p.ticket)
        bot = by_name.get(row.bot) if row and row.bot else None
        if row is None or bot is None or not bot.risk.trailing.enabled or p.price_current is None \
                or row.initial_sl is None:
            continue
        new_sl = trailing_stop(p.side, p.price_open, row.initial_sl, p.sl, p.price_current,
                               activate_r=bot.risk.trailing.activate_r, distance_r=bot.risk.trailing.distance_r)
        if new_sl is None:
            continue
        new_sl = ctx.rounding_spec(broker, p.symbol).round_price(new_sl)
        if p.sl is not None and abs(new_sl - p.sl) < 1e-12:
            continue
        result = broker.modify_stops(p.ticket, new_sl, p.tp)
        levels: tuple[float | None, float | None] | None = (new_sl, p.tp) if result.ok else None
        if result.kind == "uncertain":
            # The answer was lost: the change may stand. The broker's own levels are the truth.
            levels = next(((q.sl, q.tp) for q in broker.positions() if q.ticket == p.ticket), None)
        books.record_trailing(ctx.ledger, row.id, levels,
                              f"position {p.ticket}: SL {p.sl} → {new_sl} ({result.code} {result.message})",
                              now=ctx.now, run_id=ctx.run_id, bot=bot.name, account_id=acc_id)
        if result.ok:
            ctx.summary.positions["trailed"] = ctx.summary.positions.get("trailed", 0) + 1


def _check_kill_switch(ctx: PassContext, bot: BotConfig, positions: list[PositionRow],
                       realized_today: float) -> None:
    """`positions`: the bot's open positions on reachable accounts; `realized_today`: its closed P&L today."""
    accounts = ctx.reachable(bot.accounts)
    positions = [p for p in positions if p.account_id in accounts]
    unrealized = sum(p.unrealized or 0.0 for p in positions)
    balance = min((ctx.balances.get(a, 0.0) for a in accounts), default=0.0)
    tripped = kill_switch_reason(unrealized=unrealized, realized_today=realized_today,
                                 balance=balance, rules=risk_rules(bot.risk))
    if tripped is None:
        return
    source, reason = tripped
    books.engage_switch(ctx.ledger, bot.name, source=source, reason=reason, now=ctx.now, run_id=ctx.run_id)
    closed = close_bot_positions(ctx.ledger, ctx.desk, ctx.brokers, bot, positions)
    ctx.summary.kill_switches.append({"bot": bot.name, "source": source, "reason": reason,
                                      "positions_closed": closed})


def _enforce_kill_switch(ctx: PassContext, bot: BotConfig, positions: list[PositionRow]) -> None:
    """An engaged switch means no position of the bot stays open: close what a crash, a refused
    close or an unreachable account left open, on every pass until none is."""
    positions = [p for p in positions if p.account_id in ctx.brokers]
    if not positions:
        return
    closed = close_bot_positions(ctx.ledger, ctx.desk, ctx.brokers, bot, positions)
    ctx.summary.kill_switches.append({"bot": bot.name, "source": "engaged", "reason": "still engaged: "
                                      f"{len(positions)} open position(s) closed again",
                                      "positions_closed": closed})


def close_positions_by_bot(ledger: Ledger, desk: OrderDesk, brokers: dict[int, Broker], cfg: Config,
                           positions: Sequence[PositionRow], reason: CloseCause) -> tuple[int, list[str]]:
    """`close_bot_positions` for each bot's share of `positions` → (how many closed, problems). The
    positions of a bot the config no longer has are left open, and named."""
    by_bot: dict[str, list[PositionRow]] = defaultdict(list)
    for p in positions:
        by_bot[p.bot or ""].append(p)
    closed, problems = 0, []
    for name, mine in by_bot.items():
        try:
            bot = cfg.bot(name)
        except KeyError:
            problems.append(f"positions of unknown bot {name!r} left open")
            continue
        closed += close_bot_positions(ledger, desk, brokers, bot, mine, reason=reason)
    return closed, problems


def close_bot_positions(ledger: Ledger, desk: OrderDesk, brokers: dict[int, Broker], bot: BotConfig,
                        positions: list[PositionRow], reason: CloseCause = CloseCause.KILL_SWITCH) -> int:
    """Close positions of `bot` through the desk (intent first, like any order). Returns how many
    closed (or were found closed already). Only these positions are touched: other bots sharing
    the account keep theirs, in the ledger as at the broker. A position on an account that is
    not reachable is left open, audited, and closed by a later pass while the switch is engaged."""
    closed = 0
    for p in positions:
        broker = brokers.get(p.account_id)
        if broker is None:
            _close_skipped(ledger, desk, bot, p, f"position {p.ticket} of {bot.name} left open: account "
                                                 f"{p.account_id} is not reachable; a later pass closes it")
            continue
        try:
            row = desk.close_position(broker, p, bot=bot.name, magic=bot.magic_number, reason=reason)
        except BrokerUnavailable as exc:
            _close_skipped(ledger, desk, bot, p, f"position {p.ticket} of {bot.name}: account "
                                                 f"{p.account_id} lost while closing: {exc}")
            continue
        if row.status == OrderStatus.FILLED or row.code == TradeRetcode.POSITION_CLOSED:
            closed += 1
    return closed


def _close_skipped(ledger: Ledger, desk: OrderDesk, bot: BotConfig, position: PositionRow, message: str) -> None:
    """A close not attempted now: logged and audited; the engaged switch retries it on later passes."""
    log.warning(message)
    books.audit_event(ledger, desk.clock.now(), "close_skipped", message, run_id=desk.run_id, bot=bot.name,
                      account_id=position.account_id, data={"ticket": position.ticket})
