"""The order desk: the only code that talks to a broker about orders.

Intent before action: an order row (status `new`, with its client order id)
is committed before anything is sent; it moves to `sent` just before the
request leaves, and to `filled` / `rejected` / `error` / `failed` after. The
client id travels with the request (MT5: the comment, plus the bot's magic),
so after any crash `reconcile` asks the broker what really happened instead
of sending again.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from scalper.brokers.base import (
    Broker,
    BrokerDeal,
    BrokerOrder,
    BrokerPosition,
    OrderRequest,
    OrderResult,
    code_name,
)
from scalper.clock import iso, parse_instant
from scalper.errors import BrokerUnavailable
from scalper.faults import crash_point
from scalper.ledger import Ledger
from scalper.ledger.rows import OrderRow, PositionRow
from scalper.vocab import (
    CLOSE_RETRYABLE,
    CloseCause,
    CloseReason,
    CloseState,
    FillEntry,
    OrderKind,
    OrderStatus,
    Side,
    TradeRetcode,
)

CLIENT_ID_PREFIX = "sc"
# A position gone at the broker whose closing deal the history does not show yet stays `closing`
# (closed, P&L pending) and is completed on a later pass; after this long it is given up as missing.
# An interrupted opening send the broker does not show either stays `sent` (in doubt) as long.
HISTORY_WAIT_S = 3 * 86_400
IN_DOUBT = ("in doubt: not found at the broker after an interrupted send, whose history may lag; not resent, "
            "looked up again on every pass")
CLOSING = CloseState.CLOSING


def client_order_id(dedupe_key: str, account_id: int, kind: str = OrderKind.OPEN) -> str:
    """Deterministic, ASCII, 24 characters: fits MT5's comment (<= 27 safe)."""
    digest = hashlib.sha1(f"{dedupe_key}|{account_id}|{kind}".encode()).hexdigest()
    return CLIENT_ID_PREFIX + digest[:22]


@dataclass
class RetryPolicy:
    attempts: int = 5
    budget_s: float = 8.0           # bounds one send: its broker calls plus the waits between them
    initial_s: float = 0.2
    max_wait_s: float = 2.0


@dataclass
class SendOutcome:
    result: OrderResult | None
    attempts: int
    unreachable: bool = False
    error: str = ""


class OrderDesk:
    def __init__(self, ledger: Ledger, clock: Any, *, run_id: str, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None):
        self.ledger = ledger
        self.clock = clock
        self.run_id = run_id
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.on_event = on_event or (lambda kind, data: None)

    # --- sending ------------------------------------------------------------
    def record_intent(self, *, signal_id: int | None, dedupe_key: str, account_id: int, bot: str,
                      symbol: str, side: str, volume: float, sl: float | None, tp: float | None,
                      magic: int, kind: OrderKind = OrderKind.OPEN, position_ticket: int | None = None,
                      reason: CloseCause | None = None) -> tuple[OrderRow, bool]:
        """(order row, created). An existing intent for the same (signal, account) is returned as is."""
        cid = client_order_id(dedupe_key, account_id, kind)
        with self.ledger.tx() as c:
            created = self.ledger.orders.record_intent(
                c, client_order_id=cid, signal_id=signal_id, account_id=account_id, bot=bot, kind=kind,
                symbol=symbol, side=side, volume=volume, sl=sl, tp=tp, magic=magic, position_ticket=position_ticket,
                run_id=self.run_id, at=iso(self.clock.now()), reason=reason)
        row = self.ledger.orders.by_client_id(cid)
        assert row is not None   # recorded above, or found there
        if created:
            self.on_event("order_status", {"status": OrderStatus.NEW, "order": row})
        return row, created

    def send(self, broker: Broker, order: OrderRow) -> OrderRow:
        """Send an order whose intent is recorded; record the outcome. Returns the updated row."""
        if order.status != OrderStatus.NEW:
            return order
        self._move(order.id, status=OrderStatus.SENT)
        self.on_event("order_status", {"status": OrderStatus.SENT, "order": order})
        request = OrderRequest(client_order_id=order.client_order_id, symbol=order.symbol,
                               side=order.side.word, volume=order.volume, sl=order.sl, tp=order.tp,
                               magic=order.magic)
        outcome = self._send_with_retry(broker, order, request)
        if outcome.unreachable:
            # Outcome unknown: leave it `sent`; the next run reconciles it against the broker.
            self._move(order.id, attempts=outcome.attempts,
                       message=f"broker unreachable during send ({outcome.error}); will reconcile")
            self.on_event("broker_unreachable", {"account_id": order.account_id, "message": outcome.error})
            return self.ledger.orders.get(order.id)
        crash_point("after_fill")  # the broker has answered; the ledger has not heard yet
        assert outcome.result is not None
        return self._settle(broker, order, outcome.result, outcome.attempts)

    def _send_with_retry(self, broker: Broker, order: OrderRow, request: OrderRequest) -> SendOutcome:
        # imported here: most passes send nothing, and start-up time is paid every 45 s
        from tenacity import (
            RetryCallState,
            RetryError,
            Retrying,
            retry_if_result,
            stop_after_attempt,
        )
        from tenacity.wait import wait_exponential, wait_random

        attempts = 0

        def attempt() -> OrderResult:
            nonlocal attempts
            attempts += 1
            if order.kind == OrderKind.OPEN:
                result = broker.send_order(request)
            else:
                assert order.position_ticket is not None
                result = broker.close_position(order.position_ticket, comment=order.client_order_id,
                                               magic=order.magic)
            if result.kind == "uncertain":
                # Did it execute? Ask before any resend.
                found = broker.find_order(order.client_order_id, order.magic, since=_since(order))
                if found is not None and found.state == "filled":
                    return _found_result(found, f"found after {code_name(result.code)}")
                # Not (yet) executed: resending is safe, as after a transient refusal.
            return result

        # The budget bounds the whole send: time spent in broker calls plus the waits asked of
        # `sleep` (so it holds with an injected sleep too). A wait that would end past it is not
        # begun: the send stops there with the last answer.
        p = self.policy
        spent = 0.0

        def timed_attempt() -> OrderResult:
            nonlocal spent
            t0 = time.monotonic()
            try:
                return attempt()
            finally:
                spent += time.monotonic() - t0

        def wait(seconds: float) -> None:
            nonlocal spent
            spent += seconds
            self.sleep(seconds)

        attempts_used = stop_after_attempt(p.attempts)

        def stop(state: RetryCallState) -> bool:
            """Out of attempts, or the next wait would spend more than the time budget."""
            return attempts_used(state) or spent + (state.upcoming_sleep or 0.0) > p.budget_s

        retrying = Retrying(
            stop=stop,
            # exponential backoff plus jitter, so many bots do not retry in lockstep
            wait=wait_exponential(multiplier=p.initial_s, max=p.max_wait_s) + wait_random(0, p.initial_s),
            retry=retry_if_result(lambda r: r.kind in ("transient", "uncertain")),
            sleep=wait, reraise=True)
        try:
            result = retrying(timed_attempt)
        except RetryError as exc:  # budget spent on transient refusals
            result = exc.last_attempt.result()
        except BrokerUnavailable as exc:
            return SendOutcome(None, attempts, unreachable=True, error=str(exc))
        return SendOutcome(result, attempts)

    def _settle(self, broker: Broker, order: OrderRow, result: OrderResult, attempts: int) -> OrderRow:
        now = self.clock.now()
        kind = result.kind
        if result.ok:
            status = OrderStatus.FILLED
        elif kind == "uncertain":
            # Still unknown after the budget: leave it for the next run's reconciliation.
            self._move(order.id, attempts=attempts, code=result.code,
                       message=f"{code_name(result.code)}: {result.message}; will reconcile")
            return self.ledger.orders.get(order.id)
        elif kind == "transient":
            status = OrderStatus.ERROR       # still refused when the retry budget ran out
        else:
            status = OrderStatus.REJECTED
        closed: tuple[PositionRow, list[BrokerDeal]] | None = None
        if result.ok and order.kind == OrderKind.CLOSE:
            # The broker's history first, outside the transaction: a broker call may be slow.
            position = self.ledger.positions.open_one(order.account_id, order.position_ticket or 0)
            if position is not None:
                closed = position, self._closing_deals(broker, position)
        with self.ledger.tx() as c:
            self.ledger.orders.move(
                c, order.id, at=iso(now), status=status, attempts=attempts, code=result.code,
                message=f"{code_name(result.code)}: {result.message}", broker_ticket=result.ticket,
                fill_price=result.price, filled_volume=result.volume,
                position_ticket=result.position_ticket or order.position_ticket)
            if result.ok and order.kind == OrderKind.OPEN:
                self._record_open(c, order, result.position_ticket or result.ticket or 0, result.price or 0.0,
                                  result.volume or order.volume, result.time or now, result.deal_ticket)
            elif closed is not None:
                # Our close order filled: closed at the result's price; its P&L comes from the closing
                # deal, which a lagging history may not show yet (then: `closing`).
                self._record_close(c, closed[0], closed[1], now, result=result, order_id=order.id)
            self.ledger.audit(c, now, f"order_{status}", f"{order.side} {order.volume} {order.symbol} "
                              f"→ {code_name(result.code)} {result.message}", run_id=self.run_id,
                              bot=order.bot, account_id=order.account_id,
                              data={"client_order_id": order.client_order_id, "attempts": attempts})
        self.on_event("order_status", {"status": status, "order": order, "attempts": attempts,
                                       "message": f"{code_name(result.code)} ({result.code}): {result.message}"})
        return self.ledger.orders.get(order.id)

    def _record_open(self, c: sqlite3.Connection, order: OrderRow, ticket: int, price: float, volume: float,
                     at: float, deal_ticket: int | None) -> None:
        positions = self.ledger.positions
        exists = positions.find(c, order.account_id, ticket)
        strategy = self.ledger.signals.strategy_of(c, order.signal_id)
        if exists is not None:
            positions.claim(c, exists.id, order_id=order.id, signal_id=order.signal_id, bot=order.bot,
                            strategy=strategy)
        else:
            positions.add(c, account_id=order.account_id, ticket=ticket, order_id=order.id,
                          signal_id=order.signal_id, bot=order.bot, strategy=strategy, symbol=order.symbol,
                          side=order.side, volume=volume, price_open=price, sl=order.sl, tp=order.tp,
                          magic=order.magic, opened_at=iso(at), last_price=price, unrealized=0.0, adopted=False)
        if deal_ticket:
            positions.record_fill(c, order_id=order.id, account_id=order.account_id, deal_ticket=deal_ticket,
                                  position_ticket=ticket, side=order.side, entry=FillEntry.IN, price=price,
                                  volume=volume, profit=0.0, reason=CloseReason.EXPERT, time=iso(at))

    def close_position(self, broker: Broker, position: PositionRow, *, bot: str, magic: int,
                       reason: CloseCause = CloseCause.KILL_SWITCH) -> OrderRow:
        """Close one open ledger position at the broker (intent first), for `reason`. A close order
        an earlier attempt left refused, in error or failed is sent again while the position is
        open: an engaged kill-switch means no position of the bot stays open. Returns the order row."""
        acc, ticket = position.account_id, position.ticket
        order, created = self.record_intent(
            signal_id=position.signal_id, dedupe_key=f"close|{acc}|{ticket}", account_id=acc, bot=bot,
            symbol=position.symbol, side=Side(position.side).opposite, volume=position.volume, sl=None, tp=None,
            magic=magic, kind=OrderKind.CLOSE, position_ticket=ticket, reason=reason)
        if not created and order.status == OrderStatus.SENT:
            # An earlier attempt died with the order in flight: ask the broker what became of it.
            found = broker.find_order(order.client_order_id, magic, since=_since(order))
            if found is not None and found.state == "filled":
                return self._settle(broker, order, _found_result(found, "found at the broker (earlier attempt)"),
                                    order.attempts)
            if not any(p.ticket == ticket for p in broker.positions()):
                self.settle_gone(broker, acc, ticket)
                return self.ledger.orders.get(order.id)
            order = replace(order, status=OrderStatus.FAILED,
                            message="not found at the broker; the position is still open")
        if not created and order.status in CLOSE_RETRYABLE:
            now = self.clock.now()
            with self.ledger.tx() as c:
                self.ledger.orders.move(c, order.id, at=iso(now), status=OrderStatus.NEW)
                self.ledger.audit(c, now, "close_retry", f"position {ticket}: close order "
                                  f"{order.client_order_id} ended {order.status} ({order.message}); "
                                  "sending it again", run_id=self.run_id, bot=bot, account_id=acc)
            order = self.ledger.orders.get(order.id)
        row = self.send(broker, order)
        if row.status == OrderStatus.REJECTED and row.code == TradeRetcode.POSITION_CLOSED:
            # Gone already (SL/TP, by hand): book it from the broker's history.
            self.settle_gone(broker, acc, ticket)
        return row

    def settle_gone(self, broker: Broker, account_id: int, ticket: int) -> str | None:
        """A ledger position the broker no longer holds: closed with its closing deals, or
        `closing` while the history does not show them yet. Returns the state it ended in."""
        row = self.ledger.positions.unsettled(account_id, ticket)
        if row is None:
            return None
        deals = self._closing_deals(broker, row)
        now = self.clock.now()
        with self.ledger.tx() as c:
            return self._record_close(c, row, deals, now)

    def _closing_deals(self, broker: Broker, row: PositionRow) -> list[BrokerDeal]:
        return [d for d in broker.deals(since=parse_instant(row.opened_at) - 86400, position=row.ticket)
                if d.entry == FillEntry.OUT]

    def reconcile_orders(self, broker: Broker, account_id: int,
                         still_fresh: Callable[[OrderRow], bool] = lambda order: False) -> list[str]:
        """Settle every order an earlier run left `new` or `sent` (a crash, a lost answer).

        The broker is asked first, always. Found filled: recorded. Found refused:
        recorded. Not found: a `new` order provably never left (the desk marks
        `sent` before sending), so it is sent now if its signal is still fresh;
        a `sent` one is never resent blindly: an opening order stays in doubt
        (`sent`) while the broker's history may lag, for HISTORY_WAIT_S, and is
        booked from the history when it shows there (its fill, and its close
        when it has closed since); otherwise it is marked failed."""
        notes = []
        for order in self.ledger.orders.in_flight([account_id]):
            cid = order.client_order_id
            found = broker.find_order(cid, order.magic, since=_since(order))
            now = self.clock.now()
            if found is not None and found.state == "filled":
                result = _found_result(found, "found at broker by reconciliation")
                self._settle(broker, order, result, order.attempts)
                notes.append(f"order {cid} was filled at the broker; recorded")
            elif found is not None:
                self._close_out(order, OrderStatus.REJECTED, f"broker holds it as {found.state} (reconciled)", now,
                                broker_ticket=found.ticket)
                notes.append(f"order {cid} was {found.state} at the broker")
            elif order.status == OrderStatus.NEW and still_fresh(order):
                row = self.send(broker, order)
                notes.append(f"order {cid} had never been sent; sent now: {row.status}")
            elif order.status == OrderStatus.NEW:
                self._close_out(order, OrderStatus.FAILED, "never sent (interrupted before sending); signal now stale",
                                now)
                notes.append(f"order {cid} had never been sent and its signal is stale; marked failed")
            elif self._may_still_show(broker, order, now):
                self._keep_in_doubt(order, now)
                notes.append(f"order {cid} not found at the broker yet (its history may lag); in doubt, not resent")
            else:
                self._close_out(order, OrderStatus.FAILED,
                                "not found at the broker after an interrupted send; not resent", now)
                notes.append(f"order {cid} never reached the broker; marked failed, not resent")
        return notes

    @staticmethod
    def _may_still_show(broker: Broker, order: OrderRow, now: float) -> bool:
        """An interrupted opening send the broker does not know yet is no proof it never arrived
        while the broker's history may lag: it may have filled, and even closed since (SL/TP)."""
        return (order.kind == OrderKind.OPEN and broker.history_may_lag
                and now - parse_instant(order.created_at) <= HISTORY_WAIT_S)

    def _keep_in_doubt(self, order: OrderRow, now: float) -> None:
        """Leave it `sent` (in flight: exposure, looked up by its client id on every pass, never
        resent: a resend could double it); audited the first time only."""
        if order.message == IN_DOUBT:
            return
        with self.ledger.tx() as c:
            self.ledger.orders.move(c, order.id, at=iso(now), message=IN_DOUBT)
            self.ledger.audit(c, now, "reconcile", f"order {order.client_order_id}: {IN_DOUBT}",
                              run_id=self.run_id, bot=order.bot, account_id=order.account_id,
                              data={"client_order_id": order.client_order_id})

    def _close_out(self, order: OrderRow, status: OrderStatus, message: str, now: float, **extra: Any) -> None:
        with self.ledger.tx() as c:
            self.ledger.orders.move(c, order.id, at=iso(now), status=status, message=message, **extra)
            self.ledger.audit(c, now, "reconcile", f"order {order.client_order_id}: {status}: {message}",
                              run_id=self.run_id, bot=order.bot, account_id=order.account_id)
        self.on_event("order_status", {"status": status, "order": order, "message": message})

    def sync_positions(self, broker: Broker, account_id: int, magics: dict[int, str],
                       positions: list[BrokerPosition] | None = None) -> dict[str, int]:
        """Make the ledger's open positions match the broker's, for the magic numbers in `magics`
        only: positions of other magic numbers on the same account are none of this call's business.

        Adopts positions the ledger does not know (with their opening fill); closes positions the
        broker no longer has, with the broker's closing deals, or marks them `closing` while the
        history does not show those yet; completes earlier `closing` ones; refreshes SL/TP,
        volume, open time and floating P&L of the rest."""
        counts = {"adopted": 0, "closed": 0, "updated": 0, "closing": 0}
        live = positions if positions is not None else broker.positions()
        ours = {p.ticket: p for p in live if p.magic in magics}
        known = {r.ticket: r for r in self.ledger.positions.open([account_id]) if r.magic in magics}
        pending = [r for r in self.ledger.positions.closing(account_id) if r.magic in magics]
        # History first, outside the transaction: a broker call may be slow.
        gone = {t: self._closing_deals(broker, r) for t, r in known.items() if t not in ours}
        late = {r.id: self._closing_deals(broker, r) for r in pending}
        adopted_in = {t: [d for d in broker.deals(since=p.time_open - 86400, position=t) if d.entry == FillEntry.IN]
                      for t, p in ours.items() if t not in known}
        now = self.clock.now()
        with self.ledger.tx() as c:
            for ticket, p in ours.items():
                row = known.get(ticket)
                if row is None:
                    if self.ledger.positions.find(c, account_id, ticket) is not None:
                        continue  # closed in the ledger already (e.g. by hand); leave it
                    self._adopt(c, account_id, p, magics, adopted_in.get(ticket, []), now)
                    counts["adopted"] += 1
                else:
                    self.ledger.positions.refresh(c, row.id, sl=p.sl, tp=p.tp, volume=p.volume,
                                                  last_price=p.price_current, unrealized=p.profit + p.swap,
                                                  opened_at=iso(p.time_open))
                    counts["updated"] += 1
            for ticket, deals in gone.items():
                state = self._record_close(c, known[ticket], deals, now)
                counts["closed" if state == "closed" else "closing"] += 1
            for r in pending:
                if late[r.id] or now - parse_instant(r.closed_at or "") > HISTORY_WAIT_S:
                    self._record_close(c, r, late[r.id], now)
                    counts["closed"] += 1
        return counts

    def _adopt(self, c: sqlite3.Connection, account_id: int, p: BrokerPosition, magics: dict[int, str],
               in_deals: list[BrokerDeal], now: float) -> None:
        order_id = self.ledger.orders.id_for_comment(c, p.comment, account_id)
        opened = min((d.time for d in in_deals), default=p.time_open)
        positions = self.ledger.positions
        positions.add(c, account_id=account_id, ticket=p.ticket, order_id=order_id, signal_id=None,
                      bot=magics.get(p.magic), strategy=None, symbol=p.symbol, side=p.side, volume=p.volume,
                      price_open=p.price_open, sl=p.sl, tp=p.tp, magic=p.magic, opened_at=iso(opened),
                      last_price=p.price_current, unrealized=p.profit, adopted=True)
        for d in in_deals:   # its opening fill, as for a position we opened
            positions.record_fill(c, order_id=order_id, account_id=account_id, deal_ticket=d.ticket,
                                  position_ticket=p.ticket, side=d.side, entry=FillEntry.IN, price=d.price,
                                  volume=d.volume, profit=d.profit, reason=d.reason, time=iso(d.time))
        self.ledger.audit(c, now, "adopted", f"position {p.ticket} ({p.side} {p.volume} {p.symbol}) found "
                          "at the broker with our magic number but not in the ledger: adopted"
                          + ("" if in_deals else " (its opening deal is not in the history)"),
                          run_id=self.run_id, bot=magics.get(p.magic), account_id=account_id,
                          data={"ticket": p.ticket, "comment": p.comment})

    def _record_close(self, c: sqlite3.Connection, row: PositionRow, deals: list[BrokerDeal], now: float, *,
                      result: OrderResult | None = None, order_id: int | None = None) -> str:
        """Book a position the broker no longer holds. With its closing deals: closed, with P&L.
        Without them yet (the history lags): `closing` — closed, at our close order's price when
        we closed it, P&L pending — completed by a later pass; given up as missing_at_broker only
        after HISTORY_WAIT_S. Returns "closed" or "closing"."""
        positions = self.ledger.positions
        state: CloseState | None = None
        profit: float | None
        price: float | None
        reason: str | None
        if deals:
            last = max(deals, key=lambda d: d.time)
            profit = sum(d.profit + d.commission + d.swap for d in deals)
            total_vol = sum(d.volume for d in deals) or 1.0
            price = sum(d.price * d.volume for d in deals) / total_vol
            reason = last.reason
            closed_at = last.time
            for d in deals:
                positions.record_fill(c, order_id=order_id or row.order_id, account_id=row.account_id,
                                      deal_ticket=d.ticket, position_ticket=row.ticket, side=d.side,
                                      entry=FillEntry.OUT, price=d.price, volume=d.volume, profit=d.profit,
                                      reason=d.reason, time=iso(d.time), replace=True)
            message = f"position {row.ticket} closed at the broker ({reason}) at {price}, P&L {profit:.2f}"
        elif row.close_state == CLOSING and now - parse_instant(row.closed_at or "") > HISTORY_WAIT_S:
            profit, price, reason = None, row.close_price, CloseReason.MISSING_AT_BROKER
            closed_at = parse_instant(row.closed_at or "")
            message = (f"position {row.ticket}: no closing deal in the broker's history after "
                       f"{HISTORY_WAIT_S // 3600} h; closed in the ledger without P&L")
        else:
            state = CLOSING
            profit, reason = None, row.close_reason
            price = result.price if result is not None else row.close_price
            closed_at = (result.time or now) if result is not None else now
            if result is not None:
                reason = CloseReason.EXPERT
                if result.deal_ticket:
                    positions.record_fill(c, order_id=order_id, account_id=row.account_id,
                                          deal_ticket=result.deal_ticket, position_ticket=row.ticket,
                                          side=Side(row.side).opposite, entry=FillEntry.OUT,
                                          price=result.price or 0.0, volume=result.volume or row.volume, profit=0.0,
                                          reason=CloseReason.EXPERT, time=iso(closed_at))
            message = (f"position {row.ticket} is closed at the broker but its closing deal is not in the "
                       "history yet: closing (P&L pending), completed on a later pass")
        positions.close(c, row.id, closed_at=iso(closed_at), close_price=price, close_reason=reason, profit=profit,
                        close_state=state)
        self.ledger.audit(c, now, "position_closing" if state else "position_closed", message, run_id=self.run_id,
                          bot=row.bot, account_id=row.account_id, data={"ticket": row.ticket, "reason": reason})
        return "closing" if state else "closed"

    # --- helpers ------------------------------------------------------------
    def _move(self, order_id: int, **fields: Any) -> None:
        with self.ledger.tx() as c:
            self.ledger.orders.move(c, order_id, at=iso(self.clock.now()), **fields)


def _since(order: OrderRow) -> float:
    return parse_instant(order.created_at) - 3600


def _found_result(found: BrokerOrder, message: str) -> OrderResult:
    """A filled order the broker holds, as the answer its request should have had (with its IN deal)."""
    deal = next((d.ticket for d in found.deals if d.entry == FillEntry.IN), None)
    return OrderResult(code=TradeRetcode.DONE, message=message, ticket=found.ticket,
                       position_ticket=found.position_ticket, price=found.price, volume=found.volume, time=found.time,
                       deal_ticket=deal)

