"""The model-based test of the books: random sequences of what a trader's day holds, driven through
the REAL engine and operator services over real SQLite files (and a real PostgreSQL ledger:
TestPgPaperBooks), with three bots sharing two accounts
and two symbols, against the paper broker and against the MetaTrader 5 fake.

Steps: run-once at advancing minutes; kill-switch engage/release per bot and --all (with and
without closing); rollback with and without closing; resume; SL/TP hits (time jumps); positions
closed at the broker behind the engine's back; retcode faults; lost answers; lagging history (MT5);
unreachable accounts; crashes at the crash points. A crash here is simulated in process (the crash
point raises); real SIGKILLs at the same points are covered by test_exactly_once.py and
test_books.py::test_sigkill_between_engaging_and_closing_*.

After every step (tests/bookkit.py World.check_books): every position open at the broker is open in
the ledger with the same ticket, volume, SL and TP, and the reverse; every broker opening order maps
to exactly one ledger order; never two orders for one (signal, account); the ledger's realized P&L
equals the broker's balance change; the per-symbol limit holds. Positions and P&L are compared only
for accounts the engine has synced since the broker last moved behind its back (a crash, a
hand-close, an unreachable pass): until then, nobody can know.

CI runs a bounded number of steps; bench/bench_books_model.py runs thousands.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from scalper import orders as orders_module
from scalper.brokers import paper as paper_module
from scalper.engine import signals as engine_signals  # the engine's crash points: signal, decision, intent
from tests import pgkit
from tests.bookkit import BOTS, World
from tests.enginekit import ts

START = ts("2025-05-22 09:00:05")     # both exports (XAUUSD, BTCUSD) have bars from here on
BOT_NAMES = [b["name"] for b in BOTS]
ACCOUNTS = [1, 2]
RETCODES = [10004, 10006, 10018, 10019, 10021, 10031, 10012]
ENGINE_CRASH_POINTS = ["after_signal", "after_decision", "after_intent", "after_fill"]

STATS = {"steps": 0, "sequences": 0, "divergences": 0, "shared_states": 0, "open_seen": 0, "closing_seen": 0}


class SimulatedCrash(BaseException):
    """The process dies here (in process: nothing after this point runs, no handler catches it)."""


@contextmanager
def crash_at(point: str):
    """The first time the order path reaches `point`, it dies."""
    fired = []

    def crash_point(name: str) -> None:
        if name == point and not fired:
            fired.append(name)
            raise SimulatedCrash(name)

    modules = (engine_signals, orders_module, paper_module)
    saved = [m.crash_point for m in modules]
    for m in modules:
        m.crash_point = crash_point
    try:
        yield fired
    finally:
        for m, f in zip(modules, saved):
            m.crash_point = f


class Books(RuleBasedStateMachine):
    kind = "paper"
    engine = "sqlite"

    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix=f"books-{self.kind}-"))
        ledger = "ledger.db" if self.engine == "sqlite" else pgkit.fresh_ledger_url()
        self.world = World(self.dir, self.kind, START, ledger=ledger)
        self.unsynced: set[int] = set()     # accounts the broker moved on behind the engine's back
        self.faulted_pass = False           # the last run-once met scripted refusals (they may refuse a close)
        self.trail: list[str] = []
        STATS["sequences"] += 1

    def teardown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _step(self, what: str) -> None:
        STATS["steps"] += 1
        self.trail.append(what)

    def _advance(self, seconds: float) -> None:
        """MT5: the server closes what crosses SL/TP on each tick; the ledger hears at the next sync."""
        self.world.advance(seconds)
        if seconds and self.kind == "mt5":
            self.unsynced |= set(ACCOUNTS)

    def _ran(self, summary) -> None:
        """A full pass syncs every account it reached, unless the engine was paused."""
        if summary.bots_skipped and all(b["reason"] == "engine_paused" for b in summary.bots_skipped):
            return
        self.unsynced &= self.world.down

    # --- the engine ------------------------------------------------------------------------------
    @rule(minutes=st.integers(1, 6))
    def run_once(self, minutes):
        self._advance(minutes * 60)
        self._step(f"run_once +{minutes}m")
        # the broker factory hands the scripted faults to this pass's brokers (world.faults empties)
        self.faulted_pass = any(acc not in self.world.down for acc in self.world.faults)
        s = self.world.run_once()
        assert s.exit_code in (0, 3), (s.errors, s.exit_code)
        self._ran(s)

    @rule(minutes=st.integers(2, 10))
    def trade(self, minutes):
        """`scalper loop`: a pass every minute, the books checked after each."""
        for _ in range(minutes):
            self.run_once(1)
            self.books_agree()

    @rule(minutes=st.integers(15, 240))
    def time_passes(self, minutes):
        """SL/TP are hit at the broker while nobody runs (paper: booked by the next sync)."""
        self._advance(minutes * 60)
        self._step(f"time_passes +{minutes}m")

    @rule(point=st.sampled_from(ENGINE_CRASH_POINTS + ["during_send"]), minutes=st.integers(0, 2))
    def crash_in_run_once(self, point, minutes):
        self._advance(minutes * 60)
        self._step(f"crash run_once at {point} +{minutes}m")
        with crash_at(point):
            try:
                s = self.world.run_once()
                self._ran(s)
            except SimulatedCrash:
                self.unsynced |= set(ACCOUNTS)

    # --- the operator ------------------------------------------------------------------------------
    @rule(action=st.sampled_from(["engage", "release", "release"]), bot=st.sampled_from(BOT_NAMES + [None]),
          close=st.booleans())
    def kill_switch(self, action, bot, close):
        self._step(f"kill-switch {action} {bot or '--all'}" + ("" if close else " --no-close"))
        out = self.world.kill_switch(action, bot, close=close)
        for entry in out["bots"]:
            assert entry["engaged"] == (action == "engage")

    @rule(bot=st.sampled_from(BOT_NAMES[:2]))
    def kill_switch_on_a_shared_account(self, bot):
        """(weight) engage then release one of the two bots that share account 1 and the symbol."""
        self._step(f"kill-switch engage {bot}, then release")
        self.world.kill_switch("engage", bot)
        self.books_agree()
        self.world.kill_switch("release", bot)

    @rule(bot=st.sampled_from(BOT_NAMES), point=st.sampled_from(["after_fill", "during_send"]))
    def crash_in_kill_switch(self, bot, point):
        self._step(f"crash kill-switch engage {bot} at {point}")
        with crash_at(point):
            try:
                self.world.kill_switch("engage", bot)
            except SimulatedCrash:
                self.unsynced |= set(ACCOUNTS)

    @rule(since=st.sampled_from(["5m", "30m", "2h", "1d"]), close=st.booleans(), resume=st.booleans())
    def rollback(self, since, close, resume):
        self._step(f"rollback --since {since}" + (" --close-positions" if close else "")
                   + (" then resume" if resume else ""))
        self.world.rollback(since, close)
        if resume:
            self.world.resume()

    @rule()
    def resume(self):
        self._step("resume")
        self.world.resume()

    # --- the broker, behind the engine's back ------------------------------------------------------
    @rule(acc=st.sampled_from(ACCOUNTS), pick=st.integers(0, 5))
    def closed_at_the_broker_by_hand(self, acc, pick):
        tickets = sorted(self.world.broker_positions(acc))
        if not tickets:
            return
        self._step(f"hand-close on account {acc}")
        close_by_hand(self.world, acc, tickets[pick % len(tickets)])
        self.unsynced.add(acc)

    @rule(acc=st.sampled_from(ACCOUNTS), codes=st.lists(st.sampled_from(RETCODES), min_size=1, max_size=3))
    def retcode_faults(self, acc, codes):
        self._step(f"account {acc} answers {codes}")
        self.world.faults[acc].retcodes.extend(codes)

    @rule(acc=st.sampled_from(ACCOUNTS))
    def lost_answer(self, acc):
        self._step(f"account {acc} loses an answer")
        self.world.faults[acc].lost_answer = True

    @precondition(lambda self: self.kind == "mt5")
    @rule(calls=st.integers(0, 6))
    def history_lags(self, calls):
        self._step(f"history lags {calls} calls")
        for t in self.world.terminals.values():
            t.history_lag = calls

    @rule(acc=st.sampled_from(ACCOUNTS), down=st.booleans())
    def reachability(self, acc, down):
        self._step(f"account {acc} {'down' if down else 'up'}")
        if down:
            self.world.down.add(acc)
            self.unsynced.add(acc)
        else:
            self.world.down.discard(acc)

    # --- the invariant ----------------------------------------------------------------------------
    @invariant()
    def books_agree(self):
        open_rows = self.world.ledger("SELECT bot, account_id FROM positions WHERE status = 'open'")
        STATS["open_seen"] += bool(open_rows)
        STATS["shared_states"] += any(len({r["bot"] for r in open_rows if r["account_id"] == a}) > 1 for a in ACCOUNTS)
        STATS["closing_seen"] += bool(self.world.ledger("SELECT id FROM positions WHERE close_state = 'closing'"))
        problems = self.world.check_books(synced=set(ACCOUNTS) - self.unsynced)
        if problems:
            STATS["divergences"] += 1
        assert not problems, "\n".join(problems + ["after: " + " → ".join(self.trail[-12:])])

    @invariant()
    def engaged_switch_leaves_nothing_open_after_a_pass(self):
        """After a clean pass (every account reached), no engaged bot holds an open position."""
        if self.unsynced or not self.trail or not self.trail[-1].startswith("run_once"):
            return
        paused = self.world.ledger("SELECT value FROM engine_state WHERE key = 'paused'")
        if paused and paused[0]["value"] == "1":
            return
        engaged = {r["bot"] for r in self.world.ledger("SELECT bot FROM kill_switches WHERE engaged = 1 "
                                                       "AND source != 'manual_no_close'")}
        still = [p for p in self.world.ledger("SELECT * FROM positions WHERE status = 'open'") if p["bot"] in engaged]
        if self.faulted_pass:
            return   # a close refused by a scripted fault is retried on the next pass (checked then)
        assert not still, f"engaged bots still hold {still}"


class MT5Books(Books):
    kind = "mt5"


class PgPaperBooks(Books):
    """The same machine with the ledger in PostgreSQL (a fresh schema per sequence)."""
    engine = "postgresql"


def close_by_hand(world: World, acc: int, ticket: int) -> None:
    """The trader closes a position in the terminal (or the broker does): not through scalper."""
    if world.kind == "paper":
        b = world._paper_factory(world.cfg.account(acc))
        b.connect()
        try:
            b.close_position(ticket, comment="by hand")
        finally:
            b.close()
        return
    t = world.terminals[acc]
    a = t.accounts[700 + acc]
    pos = a.positions[ticket]
    t._close(a, pos, t._market(pos.symbol, pos.type), pos.volume, reason=t.DEAL_REASON_CLIENT, magic=0,
             comment="by hand")


def _settings(examples: int, steps: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), print_blob=True)


CI_EXAMPLES = int(os.environ.get("SCALPER_BOOKS_EXAMPLES", "10"))
CI_STEPS = int(os.environ.get("SCALPER_BOOKS_STEPS", "30"))

TestPaperBooks = Books.TestCase
TestPaperBooks.settings = _settings(CI_EXAMPLES, CI_STEPS)
TestMT5Books = MT5Books.TestCase
TestMT5Books.settings = _settings(CI_EXAMPLES, CI_STEPS)
TestPgPaperBooks = pytest.mark.skipif(pgkit.unavailable() is not None,
                                      reason=f"needs PostgreSQL: {pgkit.unavailable()}")(PgPaperBooks.TestCase)
TestPgPaperBooks.settings = _settings(CI_EXAMPLES, CI_STEPS)
