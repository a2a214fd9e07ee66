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
import time
from dataclasses import dataclass
from typing import Callable


from scalper.brokers.base import (Broker, BrokerDeal, BrokerOrder, BrokerPosition, OrderRequest, OrderResult,
                                  code_name)
from scalper.clock import iso, parse_instant
from scalper.errors import BrokerUnavailable
from scalper.faults import crash_point
from scalper.ledger import Ledger

CLIENT_ID_PREFIX = "sc"


def client_order_id(dedupe_key: str, account_id: int, kind: str = "open") -> str:
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
    def __init__(self, ledger: Ledger, clock, *, run_id: str, policy: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, on_event: Callable[[str, dict], None] | None = None):
        self.ledger = ledger
        self.clock = clock
        self.run_id = run_id
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.on_event = on_event or (lambda kind, data: None)

    # --- sending ------------------------------------------------------------
    def record_intent(self, *, signal_id: int | None, dedupe_key: str, account_id: int, bot: str,
                      symbol: str, side: str, volume: float, sl: float | None, tp: float | None,
                      magic: int, kind: str = "open", position_ticket: int | None = None) -> tuple[dict, bool]:
        """(order row, created). An existing intent for the same (signal, account) is returned as is."""
        cid = client_order_id(dedupe_key, account_id, kind)
        now = iso(self.clock.now())
        with self.ledger.tx() as c:
            existing = c.execute("SELECT id FROM orders WHERE client_order_id = ?", (cid,)).fetchone()
            if existing:
                created = False
            else:
                self.ledger.insert(c, "orders", {
                    "client_order_id": cid, "signal_id": signal_id, "account_id": account_id, "bot": bot,
                    "kind": kind, "symbol": symbol, "side": side, "volume": volume, "sl": sl, "tp": tp,
                    "magic": magic, "position_ticket": position_ticket, "status": "new", "attempts": 0,
                    "run_id": self.run_id, "created_at": now, "updated_at": now})
                created = True
        row = self.ledger.one("SELECT * FROM orders WHERE client_order_id = ?", (cid,))
        if created:
            self.on_event("order_status", {"status": "new", "order": row})
        return row, created

    def send(self, broker: Broker, order: dict) -> dict:
        """Send an order whose intent is recorded; record the outcome. Returns the updated row."""
        if order["status"] != "new":
            return order
        self._set(order["id"], status="sent")
        self.on_event("order_status", {"status": "sent", "order": order})
        request = OrderRequest(client_order_id=order["client_order_id"], symbol=order["symbol"],
                               side=order["side"], volume=order["volume"], sl=order["sl"], tp=order["tp"],
                               magic=order["magic"])
        outcome = self._send_with_retry(broker, order, request)
        if outcome.unreachable:
            # Outcome unknown: leave it `sent`; the next run reconciles it against the broker.
            self._set(order["id"], attempts=outcome.attempts,
                      message=f"broker unreachable during send ({outcome.error}); will reconcile")
            self.on_event("broker_unreachable", {"account_id": order["account_id"], "message": outcome.error})
            return self._row(order["id"])
        crash_point("after_fill")  # the broker has answered; the ledger has not heard yet
        return self._settle(broker, order, outcome.result, outcome.attempts)

    def _send_with_retry(self, broker: Broker, order: dict, request: OrderRequest) -> SendOutcome:
        # imported here: most passes send nothing, and start-up time is paid every 45 s
        from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt
        from tenacity.wait import wait_exponential, wait_random

        attempts = 0

        def attempt() -> OrderResult:
            nonlocal attempts
            attempts += 1
            result = broker.send_order(request) if order["kind"] == "open" else broker.close_position(
                order["position_ticket"], comment=order["client_order_id"], magic=order["magic"])
            if result.kind == "uncertain":
                # Did it execute? Ask before any resend.
                found = broker.find_order(order["client_order_id"], order["magic"], since=_since(order))
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

        def out_of_budget(state) -> bool:
            return spent + state.upcoming_sleep > p.budget_s

        retrying = Retrying(
            stop=stop_after_attempt(p.attempts) | out_of_budget,
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

    def _settle(self, broker: Broker, order: dict, result: OrderResult, attempts: int) -> dict:
        now = self.clock.now()
        kind = result.kind
        if result.ok:
            status = "filled"
        elif kind == "uncertain":
            # Still unknown after the budget: leave it for the next run's reconciliation.
            self._set(order["id"], attempts=attempts, code=result.code,
                      message=f"{code_name(result.code)}: {result.message}; will reconcile")
            return self._row(order["id"])
        elif kind == "transient":
            status = "error"       # still refused when the retry budget ran out
        else:
            status = "rejected"
        with self.ledger.tx() as c:
            self.ledger.update(c, "orders", order["id"], {
                "status": status, "attempts": attempts, "code": result.code,
                "message": f"{code_name(result.code)}: {result.message}", "broker_ticket": result.ticket,
                "fill_price": result.price, "filled_volume": result.volume,
                "position_ticket": result.position_ticket or order["position_ticket"],
                "updated_at": iso(now)})
            if result.ok and order["kind"] == "open":
                self._record_open(c, order, result.position_ticket or result.ticket, result.price,
                                  result.volume or order["volume"], result.time or now, result.deal_ticket)
            self.ledger.audit(c, now, f"order_{status}", f"{order['side']} {order['volume']} {order['symbol']} "
                              f"→ {code_name(result.code)} {result.message}", run_id=self.run_id,
                              bot=order["bot"], account_id=order["account_id"],
                              data={"client_order_id": order["client_order_id"], "attempts": attempts})
        self.on_event("order_status", {"status": status, "order": order, "attempts": attempts,
                                       "message": f"{code_name(result.code)} ({result.code}): {result.message}"})
        return self._row(order["id"])

    def _record_open(self, c, order: dict, ticket: int, price: float, volume: float, at: float,
                     deal_ticket: int | None) -> None:
        exists = c.execute("SELECT id FROM positions WHERE account_id = ? AND ticket = ?",
                           (order["account_id"], ticket)).fetchone()
        strategy = None
        if order["signal_id"] is not None:
            s = c.execute("SELECT strategy FROM signals WHERE id = ?", (order["signal_id"],)).fetchone()
            strategy = s[0] if s else None
        if exists:
            c.execute("UPDATE positions SET order_id = ?, signal_id = ?, bot = ?, strategy = ?, adopted = 0 "
                      "WHERE id = ?", (order["id"], order["signal_id"], order["bot"], strategy, exists[0]))
        else:
            self.ledger.insert(c, "positions", {
                "account_id": order["account_id"], "ticket": ticket, "order_id": order["id"],
                "signal_id": order["signal_id"], "bot": order["bot"], "strategy": strategy,
                "symbol": order["symbol"], "side": order["side"], "volume": volume, "price_open": price,
                "sl": order["sl"], "tp": order["tp"], "initial_sl": order["sl"], "magic": order["magic"],
                "opened_at": iso(at), "status": "open", "last_price": price, "unrealized": 0.0})
        if deal_ticket:
            c.execute("INSERT OR IGNORE INTO fills (order_id, account_id, deal_ticket, position_ticket, side, "
                      "entry, price, volume, profit, reason, time) VALUES (?,?,?,?,?,?,?,?,0,'expert',?)",
                      (order["id"], order["account_id"], deal_ticket, ticket, order["side"], "in", price,
                       volume, iso(at)))

    # --- reconciliation -----------------------------------------------------
    def reconcile_orders(self, broker: Broker, account_id: int,
                         still_fresh: Callable[[dict], bool] = lambda order: False) -> list[str]:
        """Settle every order an earlier run left `new` or `sent` (a crash, a lost answer).

        The broker is asked first, always. Found filled: recorded. Found refused:
        recorded. Not found: a `new` order provably never left (the desk marks
        `sent` before sending), so it is sent now if its signal is still fresh;
        a `sent` one is marked failed and never resent blindly."""
        notes = []
        rows = self.ledger.query("SELECT * FROM orders WHERE account_id = ? AND status IN ('new', 'sent') "
                                 "ORDER BY id", (account_id,))
        for order in rows:
            cid = order["client_order_id"]
            found = broker.find_order(cid, order["magic"], since=_since(order))
            now = self.clock.now()
            if found is not None and found.state == "filled":
                result = _found_result(found, "found at broker by reconciliation")
                self._settle(broker, order, result, order["attempts"])
                notes.append(f"order {cid} was filled at the broker; recorded")
            elif found is not None:
                self._close_out(order, "rejected", f"broker holds it as {found.state} (reconciled)", now,
                                broker_ticket=found.ticket)
                notes.append(f"order {cid} was {found.state} at the broker")
            elif order["status"] == "new" and still_fresh(order):
                row = self.send(broker, order)
                notes.append(f"order {cid} had never been sent; sent now: {row['status']}")
            elif order["status"] == "new":
                self._close_out(order, "failed", "never sent (interrupted before sending); signal now stale", now)
                notes.append(f"order {cid} had never been sent and its signal is stale; marked failed")
            else:
                self._close_out(order, "failed",
                                "not found at the broker after an interrupted send; not resent", now)
                notes.append(f"order {cid} never reached the broker; marked failed, not resent")
        return notes

    def _close_out(self, order: dict, status: str, message: str, now: float, **extra) -> None:
        with self.ledger.tx() as c:
            self.ledger.update(c, "orders", order["id"], {"status": status, "message": message,
                                                          "updated_at": iso(now), **extra})
            self.ledger.audit(c, now, "reconcile", f"order {order['client_order_id']}: {status}: {message}",
                              run_id=self.run_id, bot=order["bot"], account_id=order["account_id"])
        self.on_event("order_status", {"status": status, "order": order, "message": message})

    def sync_positions(self, broker: Broker, account_id: int, magics: dict[int, str],
                       positions: list[BrokerPosition] | None = None) -> dict[str, int]:
        """Make the ledger's open positions match the broker's, for our magic numbers.

        Adopts positions the ledger does not know; closes (with the broker's
        closing deal) positions the broker no longer has; refreshes SL/TP and
        floating P&L of the rest."""
        counts = {"adopted": 0, "closed": 0, "updated": 0}
        live = positions if positions is not None else broker.positions()
        ours = {p.ticket: p for p in live if p.magic in magics}
        known = {r["ticket"]: r for r in self.ledger.open_positions([account_id])}
        now = self.clock.now()
        with self.ledger.tx() as c:
            for ticket, p in ours.items():
                row = known.get(ticket)
                if row is None:
                    any_row = c.execute("SELECT id FROM positions WHERE account_id = ? AND ticket = ?",
                                        (account_id, ticket)).fetchone()
                    if any_row:
                        continue  # closed in the ledger already (e.g. by hand); leave it
                    order = c.execute("SELECT * FROM orders WHERE client_order_id = ? AND account_id = ?",
                                      (p.comment, account_id)).fetchone()
                    self.ledger.insert(c, "positions", {
                        "account_id": account_id, "ticket": ticket, "order_id": order[0] if order else None,
                        "bot": magics.get(p.magic), "symbol": p.symbol, "side": p.side, "volume": p.volume,
                        "price_open": p.price_open, "sl": p.sl, "tp": p.tp, "initial_sl": p.sl, "magic": p.magic,
                        "opened_at": iso(p.time_open), "status": "open", "last_price": p.price_current,
                        "unrealized": p.profit, "adopted": 1})
                    self.ledger.audit(c, now, "adopted", f"position {ticket} ({p.side} {p.volume} {p.symbol}) found "
                                      "at the broker with our magic number but not in the ledger: adopted",
                                      run_id=self.run_id, bot=magics.get(p.magic), account_id=account_id,
                                      data={"ticket": ticket, "comment": p.comment})
                    counts["adopted"] += 1
                else:
                    c.execute("UPDATE positions SET sl = ?, tp = ?, volume = ?, last_price = ?, unrealized = ? "
                              "WHERE id = ?", (p.sl, p.tp, p.volume, p.price_current, p.profit + p.swap, row["id"]))
                    counts["updated"] += 1
            for ticket, row in known.items():
                if ticket in ours:
                    continue
                deals = [d for d in broker.deals(since=parse_instant(row["opened_at"]) - 86400, position=ticket)
                         if d.entry == "out"]
                self._record_close(c, row, deals, now)
                counts["closed"] += 1
        return counts

    def _record_close(self, c, row: dict, deals: list[BrokerDeal], now: float) -> None:
        if deals:
            last = max(deals, key=lambda d: d.time)
            profit = sum(d.profit + d.commission + d.swap for d in deals)
            total_vol = sum(d.volume for d in deals) or 1.0
            price = sum(d.price * d.volume for d in deals) / total_vol
            reason = last.reason
            closed_at = last.time
            for d in deals:
                c.execute("INSERT OR IGNORE INTO fills (order_id, account_id, deal_ticket, position_ticket, side, "
                          "entry, price, volume, profit, reason, time) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                          (row["order_id"], row["account_id"], d.ticket, row["ticket"], d.side, "out", d.price,
                           d.volume, d.profit, d.reason, iso(d.time)))
            message = f"position {row['ticket']} closed at the broker ({reason}) at {price}, P&L {profit:.2f}"
        else:
            profit, price, reason, closed_at = None, None, "missing_at_broker", now
            message = (f"position {row['ticket']} is gone at the broker and no closing deal was found; "
                       "closed in the ledger without P&L")
        c.execute("UPDATE positions SET status = 'closed', closed_at = ?, close_price = ?, close_reason = ?, "
                  "profit = ?, unrealized = 0 WHERE id = ?", (iso(closed_at), price, reason, profit, row["id"]))
        self.ledger.audit(c, now, "position_closed", message, run_id=self.run_id, bot=row["bot"],
                          account_id=row["account_id"], data={"ticket": row["ticket"], "reason": reason})

    # --- helpers ------------------------------------------------------------
    def _set(self, order_id: int, **fields) -> None:
        fields["updated_at"] = iso(self.clock.now())
        with self.ledger.tx() as c:
            self.ledger.update(c, "orders", order_id, fields)

    def _row(self, order_id: int) -> dict:
        return self.ledger.one("SELECT * FROM orders WHERE id = ?", (order_id,))


def _since(order: dict) -> float:
    return parse_instant(order["created_at"]) - 3600


def _found_result(found: BrokerOrder, message: str) -> OrderResult:
    """A filled order the broker holds, as the answer its request should have had (with its IN deal)."""
    deal = next((d.ticket for d in found.deals if d.entry == "in"), None)
    return OrderResult(code=10009, message=message, ticket=found.ticket, position_ticket=found.position_ticket,
                       price=found.price, volume=found.volume, time=found.time, deal_ticket=deal)

