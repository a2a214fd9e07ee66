"""One engine pass (`scalper run-once`): the one place that sequences
feed → core → ledger → broker. Everything it decides comes from `scalper.core`;
everything it remembers goes through the ledger; every order through the desk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from scalper.brokers.base import Broker
from scalper.clock import Clock, human_age, iso
from scalper.config import AccountConfig, BotConfig, Config
from scalper.core import risk, strategies, upkeep
from scalper.core.exposure import build_exposure, day_start, kill_switch_reason, risk_limits
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.core.signals import Signal, Skip
from scalper.core.sizing import order_volume
from scalper.errors import (BadInput, BrokerUnavailable, DataError, FeedUnavailable, ScalperError,
                            ServerClockUncertain)
from scalper.faults import crash_point
from scalper.feeds.base import Feed
from scalper.ledger import Ledger, run_lock
from scalper.ledger.lock import leaves_lock_file
from scalper.orders import OrderDesk, RetryPolicy
from scalper.symbols import spec_for
from scalper.vocab import CloseCause

log = logging.getLogger("scalper.engine")

BrokerFactory = Callable[[AccountConfig], Broker]
KEEP_POSITIONS = "manual_no_close"   # kill-switch source of `engage --no-close` (scalper.services.control)
RESUME_WINDOW_S = 86_400   # how far back a run looks for signals an interrupted run left undecided
FEED_SKIPS = ("feed_stale", "feed_no_bars", "feed_unavailable")   # a bot skipped for want of bars


@dataclass
class RunSummary:
    run_id: str
    started_at: str
    as_of: str
    dry_run: bool = False
    duration_s: float = 0.0
    bots_run: list[str] = field(default_factory=list)
    bots_skipped: list[dict] = field(default_factory=list)
    signals: int = 0                       # new signals recorded by this run
    signals_by_strategy: dict[str, int] = field(default_factory=dict)
    duplicate_signals: int = 0             # seen again (already decided by an earlier run)
    skips: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)
    orders_created: int = 0
    orders_final: dict[str, int] = field(default_factory=dict)   # status each touched order ended in
    positions: dict[str, int] = field(default_factory=dict)
    kill_switches: list[dict] = field(default_factory=list)
    reconciled: list[str] = field(default_factory=list)
    order_problems: list[dict] = field(default_factory=list)   # rejected / error / failed, with the broker's words
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # e.g. one symbol's stale bars while other bots ran
    exit_code: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def dedupe_key(bot: str, signal: Signal, symbol: str) -> str:
    return f"{bot}|{signal.strategy}|{symbol}|{signal.bar_time}|{signal.direction}"


class Engine:
    def __init__(self, cfg: Config, *, ledger_path, clock: Clock, feed: Feed, broker_factory: BrokerFactory,
                 dry_run: bool = False, sleep: Callable[[float], None] = time.sleep):
        self.cfg = cfg
        self.ledger_path = ledger_path
        self.clock = clock
        self.feed = feed
        self.broker_factory = broker_factory
        self.dry_run = dry_run
        self.sleep = sleep
        self.host = "local"   # the terminal host this pass is for (fleet: its lock on PostgreSQL)
        self.specs = cfg.symbol_overrides()

    # ------------------------------------------------------------------------
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
        dry_and_new = self.dry_run and leaves_lock_file(self.ledger_path)
        with (contextlib.nullcontext() if dry_and_new else run_lock(self.ledger_path, host=self.host)):
            if self.dry_run:
                ledger = Ledger.snapshot(self.ledger_path)
            else:
                ledger = Ledger(self.ledger_path)
            with ledger:
                return _Pass(self, ledger, bot_names, now=now, bars=bars).run()

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
            except Exception as exc:  # noqa: BLE001 - not swallowed: re-raised inside the pass, which records the run
                out[symbol] = exc
        return out


class _Pass:
    """The state of one run-once pass."""

    def __init__(self, engine: Engine, ledger: Ledger, bot_names: list[str] | None, *, now: float | None = None,
                 bars: dict | None = None):
        self.e = engine
        self.cfg = engine.cfg
        self.ledger = ledger
        self.now = engine.clock.now() if now is None else now
        self.bars = bars
        self.t0 = time.perf_counter()
        self.run_id = uuid.uuid4().hex[:16]
        self.summary = RunSummary(run_id=self.run_id, started_at=iso(time.time()), as_of=iso(self.now),
                                  dry_run=engine.dry_run)
        self.bot_names = bot_names
        self.brokers: dict[int, Broker] = {}
        self.unreachable: dict[int, str] = {}
        self.balances: dict[int, float] = {}
        self.orders = Counter()           # every status move (the contract's `orders`)
        self.order_outcome: dict[int, str] = {}   # order id → where it ended this run
        self.seen_signals: set[int] = set()
        self.outcomes: dict[tuple, Signal | Skip] = {}
        self.desk = OrderDesk(ledger, engine.clock, run_id=self.run_id, sleep=engine.sleep,
                              policy=RetryPolicy(attempts=self.cfg.engine.retry_attempts,
                                                 budget_s=self.cfg.engine.retry_budget_s),
                              on_event=self._on_event)

    def _on_event(self, kind: str, data: dict) -> None:
        if kind == "order_status":
            self.orders[data["status"]] += 1
            if "order" in data:
                self.order_outcome[data["order"]["id"]] = data["status"]
            if data["status"] in ("rejected", "error", "failed") and "order" in data:
                o = data["order"]
                self.summary.order_problems.append({
                    "bot": o["bot"], "account_id": o["account_id"], "client_order_id": o["client_order_id"],
                    "status": data["status"], "attempts": data.get("attempts"), "message": data["message"]})
        elif kind == "broker_unreachable" and data["account_id"] not in self.unreachable:
            # Lost in the middle of the pass: send nothing more there; the run ends with exit 3.
            acc_id = data["account_id"]
            self.unreachable[acc_id] = data["message"]
            self.summary.errors.append(f"account {self.cfg.account(acc_id).label}: {data['message']}")

    # ------------------------------------------------------------------------
    def run(self) -> RunSummary:
        s = self.summary
        with self.ledger.tx() as c:
            # We hold the run lock: a run still marked `running` died without finishing (a crash).
            # Its end is unknown; finished_at records when that was noticed.
            for dead in c.execute("SELECT id, pid FROM runs WHERE status = 'running'").fetchall():
                self.ledger.update_run(c, dead[0], status="interrupted", finished_at=s.started_at)
                self.ledger.audit(c, self.now, "run_interrupted", f"run {dead[0]} (pid {dead[1]}) ended without "
                                  "finishing (killed or crashed); its orders are reconciled by this run",
                                  run_id=self.run_id)
            self.ledger.insert(c, "runs", {"id": self.run_id, "started_at": s.started_at, "as_of": s.as_of,
                                           "status": "running", "pid": os.getpid(),
                                           "dry_run": int(self.e.dry_run)})
        status = "ok"
        try:
            self._run()
            if s.bots_skipped and all(b["reason"] == "engine_paused" for b in s.bots_skipped) and not s.bots_run:
                status = "paused"
        except ScalperError as exc:
            status = "unavailable" if exc.exit_code == 3 else "error"
            s.errors.append(str(exc))
            s.exit_code = exc.exit_code
        except Exception as exc:  # recorded, then re-raised for the CLI's exit 1
            s.errors.append(f"{type(exc).__name__}: {exc}")
            s.exit_code = 1
            self._finish("error")
            raise
        finally:
            close_brokers(self.brokers)
        if s.exit_code == 2 and status == "ok":
            status = "error"      # bad feed data: not a clean run, whatever else went well
        if self.unreachable and not s.exit_code:
            s.exit_code = 3
            status = "unavailable"
        if not s.bots_run and not s.exit_code and any(b["reason"] in FEED_SKIPS for b in s.bots_skipped):
            # no bot could run for want of fresh bars: the feed is unavailable (contract: exit 3)
            s.errors += s.warnings
            s.warnings = []
            s.errors.append("no bot could run: the feed gave no fresh bars (feed unavailable)")
            s.exit_code = 3
            status = "unavailable"
        self._finish(status)
        return s

    def _finish(self, status: str) -> None:
        s = self.summary
        s.orders = dict(self.orders)
        s.orders_final = dict(Counter(self.order_outcome.values()))
        s.duration_s = round(time.perf_counter() - self.t0, 4)
        try:
            with self.ledger.tx() as c:
                self.ledger.update_run(c, self.run_id, finished_at=iso(time.time()), duration_s=s.duration_s,
                                       status=status, summary=json.dumps(s.to_dict(), sort_keys=True))
        except ScalperError as exc:
            s.errors.append(str(exc))
            s.exit_code = s.exit_code or exc.exit_code

    # ------------------------------------------------------------------------
    def _run(self) -> None:
        s = self.summary
        paused, why = self.ledger.paused()
        candidates = [b for b in self.cfg.bots if not self.bot_names or b.name in self.bot_names]
        if paused:
            for b in candidates:
                s.bots_skipped.append({"bot": b.name, "reason": "engine_paused", "detail": why or ""})
            return
        bots: list[BotConfig] = []
        for b in candidates:
            if not b.enabled:
                s.bots_skipped.append({"bot": b.name, "reason": "disabled"})
            elif b.engine_mode != "scalper":
                s.bots_skipped.append({"bot": b.name, "reason": f"engine_mode_{b.engine_mode}"})
            else:
                bots.append(b)
        if not bots:
            return

        self._connect({a for b in bots for a in b.accounts})
        magics = {b.magic_number: b.name for b in self.cfg.bots}
        if not self.e.dry_run:
            self._reconcile(magics)

        windows = self._fetch_bars(bots)
        for bot in bots:
            reachable = [a for a in bot.accounts if a in self.brokers]
            if not reachable:
                s.bots_skipped.append({"bot": bot.name, "reason": "broker_unavailable"})
                continue
            got = windows.get(bot.symbol)
            if isinstance(got, str):
                s.bots_skipped.append({"bot": bot.name, "reason": got})
                continue
            self._run_bot(bot, got.tail(bot.lookback))
            s.bots_run.append(bot.name)

        if not self.e.dry_run:
            self._upkeep(bots, magics)

    # --- edges ----------------------------------------------------------------
    def _connect(self, account_ids: set[int]) -> None:
        for acc_id in sorted(account_ids):
            acc = self.cfg.account(acc_id)
            try:
                broker = self.e.broker_factory(acc)
                broker.connect()
                self.balances[acc_id] = broker.account_info().balance
                self.brokers[acc_id] = broker
            except BrokerUnavailable as exc:
                self.unreachable[acc_id] = str(exc)
                self.summary.errors.append(f"account {acc.label}: {exc}")
        if self.unreachable and not self.brokers:
            raise BrokerUnavailable("no broker account could be reached; nothing traded")

    def _reconcile(self, magics: dict[int, str]) -> None:
        for acc_id, broker in self.brokers.items():
            broker.sync()
            # SL/TP exits booked by the sync change the balance that sizing and risk read
            self.balances[acc_id] = broker.account_info().balance
            self.summary.reconciled += self.desk.reconcile_orders(broker, acc_id, self._order_still_fresh)
            counts = self.desk.sync_positions(broker, acc_id, magics)
            for k, v in counts.items():
                if v and k != "updated":
                    self.summary.positions[k] = self.summary.positions.get(k, 0) + v

    def _order_still_fresh(self, order: dict) -> bool:
        """May an order that never left be sent now? Closes always; opens while their signal is fresh."""
        if order["kind"] != "open" or order["signal_id"] is None:
            return order["kind"] == "close"
        sig = self.ledger.one("SELECT bar_ts FROM signals WHERE id = ?", (order["signal_id"],))
        try:
            limit = self.cfg.bot(order["bot"]).risk.signal_max_age_s
        except KeyError:
            return False
        return sig is not None and self.now - (sig["bar_ts"] + BAR_SECONDS) <= limit

    def _fetch_bars(self, bots: list[BotConfig]) -> dict[str, Bars | str]:
        """Closed bars once per symbol (the most any bot on it needs), or why not."""
        need: dict[str, int] = defaultdict(int)
        for b in bots:
            need[b.symbol] = max(need[b.symbol], b.lookback)
        out: dict[str, Bars | str] = {}
        max_age = self.cfg.feed.max_bar_age_s
        for symbol, count in need.items():
            try:
                bars = (self.bars or {}).get(symbol)
                if isinstance(bars, Exception):
                    raise bars
                if bars is None:
                    bars = self.e.feed.closed_bars(symbol, count, self.now)
            except ServerClockUncertain as exc:
                self.summary.errors.append(f"feed {symbol}: {exc}")
                out[symbol] = "server_time_uncertain"
                self.summary.exit_code = 3
                continue
            except FeedUnavailable as exc:
                self.summary.errors.append(f"feed {symbol}: {exc}")
                out[symbol] = "feed_unavailable"
                self.summary.exit_code = 3
                continue
            except DataError as exc:
                self.summary.errors.append(f"feed {symbol}: {exc}")
                out[symbol] = "feed_bad_data"
                self.summary.exit_code = 2
                continue
            if len(bars) == 0:
                self.summary.warnings.append(f"feed {symbol}: no closed bar up to {iso(self.now)}; not trading it")
                out[symbol] = "feed_no_bars"
                continue
            age = self.now - (int(bars.time[-1]) + BAR_SECONDS)
            if age > max_age:
                self.summary.warnings.append(
                    f"feed {symbol}: newest closed bar is {human_age(age)} old (limit {max_age} s); not trading on it")
                out[symbol] = "feed_stale"
                continue
            if getattr(self.e.feed, "name", "") == "mt5" and not self._same_bar_times(symbol, bars):
                out[symbol] = "server_time_uncertain"
                self.summary.exit_code = 3
                continue
            out[symbol] = bars
        return out

    def _same_bar_times(self, symbol: str, bars: Bars) -> bool:
        """Has no bar already seen come back under another time? The newest bar of each pass is
        remembered; when the feed's UTC times rest on an estimated server offset that moved (stale
        quotes in a break), the remembered bar's time holds another bar: refuse the window, and
        never record a signal on a bar that was seen before under another time."""
        key = f"last_bar|{symbol}"
        newest = [int(bars.time[-1]), float(bars.open[-1]), float(bars.high[-1]), float(bars.low[-1]),
                  float(bars.close[-1])]
        seen = self.ledger.state(key)
        if seen is not None:
            t, *ohlc = json.loads(seen)
            i = bars.index_of(t)
            if i is not None and not np.allclose(ohlc, [bars.open[i], bars.high[i], bars.low[i], bars.close[i]]):
                self.summary.errors.append(
                    f"feed {symbol}: the bar seen before at {iso(t)} now comes with other prices: the trade "
                    "server's UTC offset moved (estimated from a stale quote?); not trading on these bars — "
                    "set server_utc_offset_s on the account in bots.yaml")
                return False
            if i is None and t > newest[0]:
                return True   # an older window (a replay): nothing to compare, nothing to remember
        if not self.e.dry_run and newest != (json.loads(seen) if seen else None):
            with self.ledger.tx() as c:
                self.ledger.set_state(c, key, json.dumps(newest), self.now)
        return True

    # --- one bot --------------------------------------------------------------
    def _run_bot(self, bot: BotConfig, window: Bars) -> None:
        s = self.summary
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
        s = self.summary
        key = dedupe_key(bot.name, signal, bot.symbol)
        signal_id, created = self._record_signal(bot, signal, key)
        first_look = signal_id not in self.seen_signals   # a resumed signal is found again by its strategy
        self.seen_signals.add(signal_id)
        if created:
            s.signals += 1
            s.signals_by_strategy[signal.strategy] = s.signals_by_strategy.get(signal.strategy, 0) + 1
        crash_point("after_signal")
        decision_row = self.ledger.one("SELECT * FROM decisions WHERE signal_id = ?", (signal_id,))
        if decision_row is None:
            decision = risk.decide(signal, self._exposure(bot, window), risk_limits(bot.risk), self.now)
            with self.ledger.tx() as c:
                # A fleet: another host's pass may have decided this signal since the read above. The
                # write transaction serializes the check and the insert; the first decision stands.
                won = c.execute("SELECT action FROM decisions WHERE signal_id = ?", (signal_id,)).fetchone()
                if won is None:
                    self.ledger.insert(c, "decisions", {
                        "signal_id": signal_id, "run_id": self.run_id, "bot": bot.name, "action": decision.action,
                        "reason": decision.reason, "detail": decision.detail, "created_at": iso(self.now)})
            if won is not None:
                decision_row = {"action": won[0]}
        if decision_row is None:
            s.decisions[decision.reason] = s.decisions.get(decision.reason, 0) + 1
            crash_point("after_decision")
            approved = decision.approved
        else:
            if not created and first_look:
                s.duplicate_signals += 1
            # Decided by an earlier (interrupted) run: send only while the signal is still fresh.
            approved = (decision_row["action"] == "open"
                        and risk.signal_age(signal, self.now) <= bot.risk.signal_max_age_s)
        if not approved or self.e.dry_run:
            return
        if not bot.auto_trade:
            return
        self._fan_out(bot, signal, signal_id, key)

    def _resume_interrupted(self, bot: BotConfig, window: Bars) -> None:
        """Finish the signals an interrupted run left half done: recorded but never decided, or
        approved but not fanned out to every account while still fresh. The strategies only look
        at the newest closed bar, so a rerun in a later minute would otherwise never see them again.
        The dedupe key and the client order ids keep this to at most one order per account.
        Undecided signals are looked for over the last day (a stale one is decided as stale)."""
        rows = self.ledger.query(
            "SELECT s.*, d.action AS action, (SELECT GROUP_CONCAT(o.account_id) FROM orders o "
            "WHERE o.signal_id = s.id AND o.kind = 'open') AS order_accounts "
            "FROM signals s LEFT JOIN decisions d ON d.signal_id = s.id "
            "WHERE s.bot = ? AND s.bar_ts >= ? AND s.symbol = ? "
            "AND (d.id IS NULL OR (d.action = 'open' AND s.bar_ts >= ?)) ORDER BY s.bar_ts, s.id",
            (bot.name, self.now - RESUME_WINDOW_S, bot.symbol, self.now - BAR_SECONDS - bot.risk.signal_max_age_s))
        for r in rows:
            if r["action"] is not None:
                served = {int(a) for a in (r["order_accounts"] or "").split(",") if a}
                if not bot.auto_trade or set(bot.accounts) <= served:
                    continue
            signal = Signal(strategy=r["strategy"], direction=r["direction"], bar_time=int(r["bar_ts"]),
                            entry=r["entry"], sl=r["sl"], tp=r["tp"], score=r["score"],
                            params=json.loads(r["params"] or "{}"))
            if dedupe_key(bot.name, signal, bot.symbol) != r["dedupe_key"]:
                continue  # never a second row for one signal
            self._handle_signal(bot, signal, window)

    def _record_signal(self, bot: BotConfig, signal: Signal, key: str) -> tuple[int, bool]:
        with self.ledger.tx() as c:
            row = c.execute("SELECT id FROM signals WHERE dedupe_key = ?", (key,)).fetchone()
            if row:
                return int(row[0]), False
            sid = self.ledger.insert(c, "signals", {
                "dedupe_key": key, "run_id": self.run_id, "bot": bot.name, "strategy": signal.strategy,
                "symbol": bot.symbol, "bar_time": iso(signal.bar_time), "bar_ts": int(signal.bar_time),
                "direction": signal.direction, "entry": signal.entry, "sl": signal.sl, "tp": signal.tp,
                "score": signal.score, "params": json.dumps(dict(signal.params), sort_keys=True),
                "created_at": iso(self.now)})
            return sid, True

    def _fan_out(self, bot: BotConfig, signal: Signal, signal_id: int, key: str) -> None:
        """One order per broker account of the bot."""
        for acc_id in bot.accounts:
            broker = self.brokers.get(acc_id)
            problem = None
            if broker is None or acc_id in self.unreachable:
                problem = f"account {acc_id} unreachable: {self.unreachable.get(acc_id, '')}"
                spec = None
            else:
                spec, problem = self._broker_spec(broker, acc_id, bot.symbol)
            if spec is None:
                # Never sized from a guessed contract size: the order is recorded and refused here.
                order, created = self.desk.record_intent(
                    signal_id=signal_id, dedupe_key=key, account_id=acc_id, bot=bot.name, symbol=bot.symbol,
                    side=signal.direction, volume=bot.volume, sl=signal.sl, tp=signal.tp, magic=bot.magic_number)
            else:
                volume = order_volume(qty=bot.volume, spec=spec, risk_percent=bot.risk.risk_percent,
                                      balance=self.balances.get(acc_id), risk_per_unit=signal.risk)
                order, created = self.desk.record_intent(
                    signal_id=signal_id, dedupe_key=key, account_id=acc_id, bot=bot.name, symbol=bot.symbol,
                    side=signal.direction, volume=volume, sl=spec.round_price(signal.sl),
                    tp=spec.round_price(signal.tp), magic=bot.magic_number)
            if created:
                self.summary.orders_created += 1
            crash_point("after_intent")
            if problem is not None:
                self._fail_order(order, problem)
                continue
            self.desk.send(broker, order)

    def _fail_order(self, order: dict, message: str) -> None:
        if order["status"] != "new":
            return
        with self.ledger.tx() as c:
            self.ledger.update(c, "orders", order["id"], {"status": "error", "message": message,
                                                          "updated_at": iso(self.now)})
            self.ledger.audit(c, self.now, "order_error", f"order {order['client_order_id']} not sent: {message}",
                              run_id=self.run_id, bot=order["bot"], account_id=order["account_id"])
        log.warning("order %s (%s, account %s) not sent: %s", order["client_order_id"], order["bot"],
                    order["account_id"], message)
        self._on_event("order_status", {"status": "error", "order": order, "message": message})

    def _broker_spec(self, broker: Broker, acc_id: int, symbol: str):
        """(the broker's spec, None) or (None, why not). Orders are sized with the broker's own spec only."""
        try:
            return broker.symbol_spec(symbol), None
        except BrokerUnavailable as exc:
            self._on_event("broker_unreachable", {"account_id": acc_id, "message": str(exc)})
            return None, f"account {acc_id} unreachable while reading the {symbol} spec: {exc}"
        except ScalperError as exc:
            return None, f"the broker's {symbol} spec could not be read ({exc}); not sized from a guess"

    def _spec(self, broker: Broker | None, symbol: str):
        """A spec to round prices with (trailing stops, spread): the broker's, else the configured table."""
        if broker is not None:
            try:
                return broker.symbol_spec(symbol)
            except ScalperError as exc:
                log.warning("symbol spec of %s from %s: %s; rounding with the configured table", symbol,
                            getattr(broker, "account", "?"), exc)
        return spec_for(symbol, self.e.specs)

    # --- exposure for the risk decision ----------------------------------------
    def _exposure(self, bot: BotConfig, window: Bars) -> risk.Exposure:
        accounts = [a for a in bot.accounts if a in self.brokers]
        positions = self.ledger.open_positions(accounts)
        inflight = [o for o in self.ledger.orders_in_flight(accounts) if o["kind"] == "open"]
        group_symbols = {m for g in self.cfg.groups_of(bot.symbol) for m in self.cfg.correlation_groups[g]}
        unrealized = sum(p["unrealized"] or 0.0 for p in positions if p["bot"] == bot.name)
        return build_exposure(
            [(i["account_id"], i["symbol"], i["side"]) for i in positions + inflight],
            symbol=bot.symbol, group_symbols=group_symbols,
            balance=min((self.balances.get(a, 0.0) for a in accounts), default=0.0),
            pnl_today=self._realized_today(bot) + unrealized,
            spread_points=self._spread_points(bot, window, accounts),
            kill_switch_engaged=self.ledger.kill_switch(bot.name) is not None,
            **self._stops_check(bot, accounts))

    def _stops_check(self, bot: BotConfig, accounts: list[int]) -> dict:
        """The latest quote the order would meet and the symbol's stop rules (risk's last check),
        from the bot's first account; nothing when no quote can be had (the broker decides)."""
        if not accounts:
            return {}
        broker = self.brokers[accounts[0]]
        try:
            q = broker.quote(bot.symbol)
        except ScalperError:
            return {}
        spec = self._spec(broker, bot.symbol)
        return {"quote": (q.bid, q.ask), "price_digits": spec.digits,
                "stops_min_distance": spec.stops_level * spec.point}

    def _realized_today(self, bot: BotConfig) -> float:
        row = self.ledger.one("SELECT COALESCE(SUM(profit), 0) AS p FROM positions WHERE bot = ? "
                              "AND status = 'closed' AND closed_at >= ?", (bot.name, iso(day_start(self.now))))
        return float(row["p"])

    def _spread_points(self, bot: BotConfig, window: Bars, accounts: list[int]) -> float | None:
        """The signal bar's spread when the feed has one, else the broker's current quote."""
        if len(window) and not np.isnan(window.spread[-1]):
            return float(window.spread[-1])
        if not accounts:
            return None
        broker = self.brokers[accounts[0]]
        try:
            q = broker.quote(bot.symbol)
        except ScalperError:
            return None
        return (q.ask - q.bid) / self._spec(broker, bot.symbol).point

    # --- position upkeep -------------------------------------------------------
    def _upkeep(self, bots: list[BotConfig], magics: dict[int, str]) -> None:
        s = self.summary
        by_name = {b.name: b for b in self.cfg.bots}
        for acc_id, broker in self.brokers.items():
            if acc_id in self.unreachable:
                continue
            broker.sync()
            live = broker.positions()
            counts = self.desk.sync_positions(broker, acc_id, magics, live)
            for k, v in counts.items():
                if v and k != "updated":
                    s.positions[k] = s.positions.get(k, 0) + v
            self._trail(broker, acc_id, live, by_name)
            self.balances[acc_id] = broker.account_info().balance
        # one read of the ledger for every bot's check, not three queries per bot
        reachable = [a for a in self.brokers if a not in self.unreachable]
        by_bot: dict[str, list[dict]] = defaultdict(list)
        for p in self.ledger.open_positions(reachable):
            by_bot[p["bot"]].append(p)
        realized = {r["bot"]: float(r["p"]) for r in self.ledger.query(
            "SELECT bot, COALESCE(SUM(profit), 0) AS p FROM positions WHERE status = 'closed' AND closed_at >= ? "
            "GROUP BY bot", (iso(day_start(self.now)),))}
        engaged = {r["bot"]: r["source"] for r in self.ledger.query(
            "SELECT bot, source FROM kill_switches WHERE engaged = 1")}
        for bot in bots:
            if bot.name in engaged:
                if engaged[bot.name] != KEEP_POSITIONS:
                    self._enforce_kill_switch(bot, by_bot.get(bot.name, []))
            elif bot.risk.kill_switch:
                self._check_kill_switch(bot, by_bot.get(bot.name, []), realized.get(bot.name, 0.0))
        self._update_daily_pnl()

    def _trail(self, broker: Broker, acc_id: int, live, by_name: dict[str, BotConfig]) -> None:
        rows = {r["ticket"]: r for r in self.ledger.open_positions([acc_id])}
        for p in live:
            row = rows.get(p.ticket)
            bot = by_name.get(row["bot"]) if row and row["bot"] else None
            if not bot or not bot.risk.trailing.enabled or p.price_current is None or row["initial_sl"] is None:
                continue
            new_sl = upkeep.trailing_stop(p.side, p.price_open, row["initial_sl"], p.sl, p.price_current,
                                          activate_r=bot.risk.trailing.activate_r,
                                          distance_r=bot.risk.trailing.distance_r)
            if new_sl is None:
                continue
            new_sl = self._spec(broker, p.symbol).round_price(new_sl)
            if p.sl is not None and abs(new_sl - p.sl) < 1e-12:
                continue
            result = broker.modify_stops(p.ticket, new_sl, p.tp)
            levels = (new_sl, p.tp) if result.ok else None
            if result.kind == "uncertain":
                # The answer was lost: the change may stand. The broker's own levels are the truth.
                levels = next(((q.sl, q.tp) for q in broker.positions() if q.ticket == p.ticket), None)
            with self.ledger.tx() as c:
                if levels is not None:
                    c.execute("UPDATE positions SET sl = ?, tp = ? WHERE id = ?", (*levels, row["id"]))
                self.ledger.audit(c, self.now, "trailing_stop",
                                  f"position {p.ticket}: SL {p.sl} → {new_sl} ({result.code} {result.message})",
                                  run_id=self.run_id, bot=bot.name, account_id=acc_id)
            if result.ok:
                self.summary.positions["trailed"] = self.summary.positions.get("trailed", 0) + 1

    def _check_kill_switch(self, bot: BotConfig, positions: list[dict], realized_today: float) -> None:
        """`positions`: the bot's open positions on reachable accounts; `realized_today`: its closed P&L today."""
        accounts = [a for a in bot.accounts if a in self.brokers]
        positions = [p for p in positions if p["account_id"] in accounts]
        unrealized = sum(p["unrealized"] or 0.0 for p in positions)
        balance = min((self.balances.get(a, 0.0) for a in accounts), default=0.0)
        tripped = kill_switch_reason(unrealized=unrealized, realized_today=realized_today,
                                     balance=balance, risk=bot.risk, limits=risk_limits(bot.risk))
        if tripped is None:
            return
        source, reason = tripped
        with self.ledger.tx() as c:
            self.ledger.set_kill_switch(c, bot.name, True, source=source, reason=reason, now=self.now)
            self.ledger.audit(c, self.now, "kill_switch", f"engaged: {reason}", run_id=self.run_id, bot=bot.name)
        closed = close_bot_positions(self.ledger, self.desk, self.brokers, bot, positions)
        self.summary.kill_switches.append({"bot": bot.name, "source": source, "reason": reason,
                                           "positions_closed": closed})

    def _enforce_kill_switch(self, bot: BotConfig, positions: list[dict]) -> None:
        """An engaged switch means no position of the bot stays open: close what a crash, a refused
        close or an unreachable account left open, on every pass until none is."""
        positions = [p for p in positions if p["account_id"] in self.brokers]
        if not positions:
            return
        closed = close_bot_positions(self.ledger, self.desk, self.brokers, bot, positions)
        self.summary.kill_switches.append({"bot": bot.name, "source": "engaged", "reason": "still engaged: "
                                           f"{len(positions)} open position(s) closed again",
                                           "positions_closed": closed})

    def _update_daily_pnl(self) -> None:
        update_daily_pnl(self.ledger, day_start(self.now))


def close_bot_positions(ledger: Ledger, desk: OrderDesk, brokers: dict[int, Broker], bot: BotConfig,
                        positions: list[dict], reason: CloseCause = CloseCause.KILL_SWITCH) -> int:
    """Close positions of `bot` through the desk (intent first, like any order). Returns how many
    closed (or were found closed already). Only these positions are touched: other bots sharing
    the account keep theirs, in the ledger as at the broker. A position on an account that is
    not reachable is left open, audited, and closed by a later pass while the switch is engaged."""
    closed = 0
    for p in positions:
        broker = brokers.get(p["account_id"])
        if broker is None:
            _close_skipped(ledger, desk, bot, p, f"position {p['ticket']} of {bot.name} left open: account "
                                                 f"{p['account_id']} is not reachable; a later pass closes it")
            continue
        try:
            row = desk.close_position(broker, p, bot=bot.name, magic=bot.magic_number, reason=reason)
        except BrokerUnavailable as exc:
            _close_skipped(ledger, desk, bot, p, f"position {p['ticket']} of {bot.name}: account "
                                                 f"{p['account_id']} lost while closing: {exc}")
            continue
        if row["status"] == "filled" or row["code"] == 10036:
            closed += 1
    return closed


def _close_skipped(ledger: Ledger, desk: OrderDesk, bot: BotConfig, position: dict, message: str) -> None:
    """A close not attempted now: logged and audited; the engaged switch retries it on later passes."""
    log.warning(message)
    with ledger.tx() as c:
        ledger.audit(c, desk.clock.now(), "close_skipped", message, run_id=desk.run_id, bot=bot.name,
                     account_id=position["account_id"], data={"ticket": position["ticket"]})


def close_brokers(brokers: dict[int, Broker]) -> None:
    """Disconnect every broker; a failure is logged (the pass's work is already recorded)."""
    for acc_id, b in brokers.items():
        try:
            b.close()
        except (ScalperError, OSError) as exc:
            log.warning("account %s: closing the broker connection failed: %s", acc_id, exc)


def update_daily_pnl(ledger: Ledger, since: float) -> None:
    """Rebuild pnl_daily rows from closed positions, from `since` (a UTC day start) on."""
    since_iso = iso(since)
    with ledger.tx() as c:
        c.execute("DELETE FROM pnl_daily WHERE day >= ?", (since_iso[:10],))
        c.execute("""
            INSERT INTO pnl_daily (day, bot, account_id, realized, trades, wins, losses)
            SELECT substr(closed_at, 1, 10), COALESCE(bot, '(adopted)'), account_id,
                   SUM(COALESCE(profit, 0)), COUNT(*),
                   SUM(CASE WHEN profit > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN profit < 0 THEN 1 ELSE 0 END)
            FROM positions WHERE status = 'closed' AND closed_at >= ?
            GROUP BY 1, 2, 3""", (since_iso,))
