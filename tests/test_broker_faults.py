"""Broker faults, injected by the paper broker (paper.faults / SCALPER_PAPER_FAULTS):
transient refusals are retried with exponential backoff and jitter within the
retry budget; final ones are recorded with the broker's code and text and never
retried; uncertain answers are looked up before any resend; a broker that cannot
be reached makes run-once exit 3 and leaves nothing half-written.

Most of these run the engine in-process with a fake `sleep` that records the
backoff waits; one runs the real CLI with real sleeping to show the budget
bounds the wall time, and the broker-down drill runs the real CLI too."""

from __future__ import annotations

import json

import pytest

from scalper import wiring
from scalper.brokers.base import TRANSIENT_CODES, UNCERTAIN_CODES, OrderResult, code_name
from scalper.brokers.paper import PaperBroker
from scalper.clock import FixedClock
from scalper.config import load_config
from scalper.engine import Engine
from scalper.errors import BrokerUnavailable
from scalper.orders import RetryPolicy
from tests.enginekit import engine_at
from tests.test_exactly_once import NOW, assert_books_agree, books, broker_opens, magic_of, rows, run_cli, write_bots

FINAL_CODES = [10006, 10007, 10013, 10014, 10015, 10016, 10017, 10018, 10019, 10022, 10026, 10027, 10030, 10032,
               10033, 10034, 10035, 10038, 10039, 10040, 10042, 10043, 10044, 10045]
POLICY = RetryPolicy()          # the desk's backoff: initial 0.2 s doubling, at most 2 s, jitter up to 0.2 s
# The paper broker's texts for the codes it has its own words for; the others it answers with the code's name.
BROKER_TEXT = {10004: "Requote", 10006: "Request rejected", 10011: "Request processing error",
               10014: "Invalid volume", 10016: "Invalid stops", 10018: "Market closed", 10019: "No money",
               10020: "Prices changed", 10021: "No quotes", 10024: "Too frequent requests"}


def _run(tmp_path, *, faults: dict | None = None, engine: dict | None = None, symbols: dict | None = None):
    config = write_bots(tmp_path, paper={"faults": faults or {}}, engine=engine, symbols=symbols)
    sleeps: list[float] = []
    summary = engine_at(config, NOW, sleep=sleeps.append).run_once()
    return config, summary, sleeps, rows(tmp_path / "ledger.db", "SELECT * FROM orders ORDER BY account_id")


def _assert_backoff(waits: list[float]) -> None:
    """Exponential from 0.2 s, capped at 2 s, each with 0 … 0.2 s of jitter."""
    for k, w in enumerate(waits):
        base = min(POLICY.initial_s * 2 ** k, POLICY.max_wait_s)
        assert base <= w <= base + POLICY.initial_s, (k, w)


@pytest.mark.parametrize("code", sorted(map(int, TRANSIENT_CODES)), ids=lambda c: f"{c}-{code_name(c)}")
def test_a_transient_refusal_is_retried_with_backoff_and_fills(tmp_path, code):
    config, s, sleeps, orders = _run(tmp_path, faults={"retcodes": [code, code]})   # refused twice, per account
    assert s.exit_code == 0, s.errors
    assert [(o["account_id"], o["status"], o["attempts"], o["code"]) for o in orders] == [
        (1, "filled", 3, 10009), (2, "filled", 3, 10009)]
    assert len(sleeps) == 4                                  # two waits before each order's third attempt
    _assert_backoff(sleeps[:2])
    _assert_backoff(sleeps[2:])
    assert sleeps[1] > sleeps[0] and sleeps[3] > sleeps[2]
    assert len(set(sleeps)) == 4                             # jitter: no two waits alike
    assert sum(sleeps[:2]) <= POLICY.budget_s and sum(sleeps[2:]) <= POLICY.budget_s
    # the refusals never reached the books: one filled order per account, nothing else
    assert [(o["account"], o["state"]) for o in rows(tmp_path / "paper.db", "SELECT * FROM orders")] == [
        ("1", "filled"), ("2", "filled")]
    audit = [json.loads(a["data"]) for a in rows(tmp_path / "ledger.db",
                                                 "SELECT * FROM audit WHERE kind = 'order_filled'")]
    assert [a["attempts"] for a in audit] == [3, 3]
    assert_books_agree(tmp_path, magic_of(config))


@pytest.mark.parametrize("code", sorted(map(int, UNCERTAIN_CODES)), ids=lambda c: f"{c}-{code_name(c)}")
def test_an_uncertain_answer_is_looked_up_not_resent(tmp_path, code):
    # The paper broker executes the order, then answers TIMEOUT / CONNECTION.
    config, s, sleeps, orders = _run(tmp_path, faults={"retcodes": [code]})
    assert s.exit_code == 0, s.errors
    assert [(o["status"], o["attempts"]) for o in orders] == [("filled", 1), ("filled", 1)]
    assert all(o["message"] == f"DONE: found after {code_name(code)}" for o in orders)
    assert sleeps == []
    assert len(broker_opens(tmp_path)) == 2
    assert_books_agree(tmp_path, magic_of(config))           # incl. the IN deal as a fill in the ledger


def test_a_lost_answer_is_found_by_client_id_and_not_resent(tmp_path):
    config, s, sleeps, orders = _run(tmp_path, faults={"lost_answer": True})
    assert s.exit_code == 0, s.errors
    assert [(o["status"], o["attempts"], o["code"]) for o in orders] == [("filled", 1, 10009)] * 2
    assert all("found after TIMEOUT" in o["message"] for o in orders)
    opens = broker_opens(tmp_path)
    assert sorted(o["client_order_id"] for o in opens) == sorted(o["client_order_id"] for o in orders)
    assert len(rows(tmp_path / "paper.db", "SELECT * FROM orders")) == 2     # no second request ever reached it
    fills = rows(tmp_path / "ledger.db", "SELECT * FROM fills ORDER BY account_id")
    deals = rows(tmp_path / "paper.db", "SELECT * FROM deals ORDER BY account")
    assert [(f["deal_ticket"], f["entry"]) for f in fills] == [(d["ticket"], "in") for d in deals]
    assert_books_agree(tmp_path, magic_of(config))


def test_an_uncertain_answer_to_a_refused_request_is_resent_after_the_lookup(tmp_path):
    # contracts so large that the broker finds no margin for them; the first answer is TIMEOUT (uncertain).
    # (Stops the quote has passed are refused by the risk decision before any send: see below.)
    huge = {"XAUUSDm": {"digits": 2, "contract_size": 1e9}}
    config, s, sleeps, orders = _run(tmp_path, faults={"retcodes": [10012]}, symbols=huge)
    assert [(o["status"], o["attempts"], o["code"]) for o in orders] == [("rejected", 2, 10019)] * 2
    assert len(sleeps) == 2                        # the lookup found it refused: one resend, after a backoff
    broker = rows(tmp_path / "paper.db", "SELECT * FROM orders")
    assert {o["state"] for o in broker} == {"rejected"} and broker_opens(tmp_path) == []
    assert_books_agree(tmp_path, magic_of(config))


def test_stops_the_quote_has_passed_are_refused_before_sending(tmp_path):
    # stops_level so wide that the broker would refuse the SL: the decision refuses it, nothing is sent.
    wide = {"XAUUSDm": {"digits": 2, "contract_size": 100, "stops_level": 100_000}}
    config, s, sleeps, orders = _run(tmp_path, symbols=wide)
    assert s.exit_code == 0, s.errors
    decisions = rows(tmp_path / "ledger.db", "SELECT * FROM decisions")
    assert decisions and {d["reason"] for d in decisions} == {"risk_stops_beyond_quote"}
    assert all("against bid" in d["detail"] for d in decisions)
    assert orders == [] and rows(tmp_path / "paper.db", "SELECT * FROM orders") == [] and sleeps == []


@pytest.mark.parametrize("code", FINAL_CODES, ids=lambda c: f"{c}-{code_name(c)}")
def test_a_final_refusal_is_recorded_with_the_brokers_code_and_text_and_not_retried(tmp_path, code):
    config, s, sleeps, orders = _run(tmp_path, faults={"retcodes": [code]})
    assert s.exit_code == 0, s.errors
    text = BROKER_TEXT.get(code, code_name(code))
    assert [(o["status"], o["attempts"], o["code"], o["message"]) for o in orders] == [
        ("rejected", 1, code, f"{code_name(code)}: {text}")] * 2
    assert sleeps == []
    assert broker_opens(tmp_path) == [] and rows(tmp_path / "ledger.db", "SELECT * FROM positions") == []
    audit = rows(tmp_path / "ledger.db", "SELECT * FROM audit WHERE kind = 'order_rejected'")
    assert len(audit) == 2 and all(code_name(code) in a["message"] for a in audit)
    assert_books_agree(tmp_path, magic_of(config))


def test_the_brokers_own_refusal_is_recorded_as_rejected(tmp_path):
    huge = {"XAUUSDm": {"digits": 2, "contract_size": 1e9}}     # no margin for it
    config, s, sleeps, orders = _run(tmp_path, symbols=huge)
    assert [(o["status"], o["attempts"], o["code"], o["message"]) for o in orders] == [
        ("rejected", 1, 10019, "NO_MONEY: No money")] * 2
    assert sleeps == []
    assert [(o["state"], o["code"]) for o in rows(tmp_path / "paper.db", "SELECT * FROM orders")] == [
        ("rejected", 10019)] * 2
    assert_books_agree(tmp_path, magic_of(config))


def test_a_transient_refusal_past_the_budget_ends_in_error_with_nothing_at_the_broker(tmp_path):
    budget = 2.0
    config, s, sleeps, orders = _run(tmp_path, faults={"retcodes": [10004] * 30},
                                     engine={"retry_attempts": 20, "retry_budget_s": budget})
    assert s.exit_code == 0, s.errors
    for o in orders:
        assert (o["status"], o["code"], o["message"]) == ("error", 10004, "REQUOTE: Requote")
        assert 3 <= o["attempts"] <= 4              # the budget, not the 20 attempts, ended it
    per_order = [sleeps[:orders[0]["attempts"] - 1], sleeps[orders[0]["attempts"] - 1:]]
    for waits in per_order:
        _assert_backoff(waits)
        assert sum(waits) <= budget                 # never a wait that would end past the budget
    assert broker_opens(tmp_path) == [] and not rows(tmp_path / "paper.db", "SELECT * FROM orders")
    assert_books_agree(tmp_path, magic_of(config))


def test_the_budget_bounds_the_wall_time_of_a_real_run(tmp_path):
    budget = 1.0
    config = write_bots(tmp_path, engine={"retry_attempts": 20, "retry_budget_s": budget})
    done = run_cli(config, NOW, SCALPER_PAPER_FAULTS="retcodes=" + ",".join(["10020"] * 20))
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    orders = rows(tmp_path / "ledger.db", "SELECT * FROM orders")
    assert [(o["status"], o["code"]) for o in orders] == [("error", 10020)] * 2
    assert all(o["attempts"] >= 2 for o in orders)
    # Two orders, each retried for at most `budget` seconds (and at least its first wait, really slept),
    # not for the ~33 s that 20 unbudgeted attempts each would sleep: the rest of the pass (reading the
    # bar file, strategies, ledger) gets a few seconds of slack for a loaded machine (speed: bench/).
    assert all(o["attempts"] < 20 for o in orders)
    assert 2 * POLICY.initial_s <= s["duration_s"] <= 2 * budget + 5.0
    assert_books_agree(tmp_path, magic_of(config))


def test_broker_down_exits_3_with_nothing_half_written_then_recovers(tmp_path):
    config = write_bots(tmp_path)
    down = run_cli(config, NOW, SCALPER_PAPER_FAULTS="unreachable=1")
    assert down.returncode == 3, down.stderr
    s = json.loads(down.stdout)
    assert s["exit_code"] == 3 and any("unreachable" in e for e in s["errors"])
    ledger = tmp_path / "ledger.db"
    [run] = rows(ledger, "SELECT * FROM runs")
    assert run["status"] == "unavailable" and run["finished_at"] is not None
    for table in ("signals", "decisions", "orders", "positions", "fills"):
        assert rows(ledger, f"SELECT * FROM {table}") == [], table
    assert rows(ledger, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]

    back = engine_at(config, NOW + 10).run_once()    # the recovery in-process: no second start-up
    assert back.exit_code == 0 and back.errors == [], back.errors
    assert books(tmp_path)["orders"] == {1: "filled", 2: "filled"}
    assert_books_agree(tmp_path, magic_of(config))


class _FirstAnswerLostBeforeExecution(PaperBroker):
    """The first request never reaches the server and the terminal answers CONNECTION (10031),
    a case the paper broker's own faults cannot make (its scripted 10012/10031 execute first)."""

    def send_order(self, request):
        if not getattr(self, "_dropped_one", False):
            self._dropped_one = True
            return OrderResult(10031, "No connection with the trade server")
        return super().send_order(request)


def _engine_with(config, broker_class, account_ids):
    """The engine as wiring builds it, but with `broker_class` for these accounts' paper brokers."""
    cfg = load_config(config)
    clock = FixedClock(NOW)
    feed = wiring.make_feed(cfg)
    real = wiring.make_broker_factory(cfg, feed, clock)

    def factory(acc):
        broker = real(acc)
        if acc.id in account_ids:
            broker.__class__ = broker_class      # same state file, feed, clock and specs; one method differs
        return broker

    sleeps: list[float] = []
    return Engine(cfg, ledger_path=cfg.resolve_path(cfg.ledger), clock=clock, feed=feed, broker_factory=factory,
                  sleep=sleeps.append), sleeps


def test_an_uncertain_answer_with_nothing_at_the_broker_is_resent_once_after_the_lookup(tmp_path):
    config = write_bots(tmp_path)
    engine, sleeps = _engine_with(config, _FirstAnswerLostBeforeExecution, {1, 2})
    s = engine.run_once()
    assert s.exit_code == 0, s.errors
    orders = rows(tmp_path / "ledger.db", "SELECT * FROM orders ORDER BY account_id")
    assert [(o["status"], o["attempts"], o["code"]) for o in orders] == [("filled", 2, 10009)] * 2
    assert len(sleeps) == 2
    _assert_backoff(sleeps[:1])
    _assert_backoff(sleeps[1:])
    assert len(broker_opens(tmp_path)) == 2 and len(rows(tmp_path / "paper.db", "SELECT * FROM orders")) == 2
    assert_books_agree(tmp_path, magic_of(config))


class _LosesConnectionOnSend(PaperBroker):
    """Account 1's terminal drops its connection as the order leaves: the outcome is unknown."""

    def send_order(self, request):
        raise BrokerUnavailable("paper broker: connection lost during order_send")


def test_broker_lost_during_a_send_exits_3_and_the_next_run_settles_the_order(tmp_path):
    config = write_bots(tmp_path)
    engine, _ = _engine_with(config, _LosesConnectionOnSend, {1})
    s = engine.run_once()
    assert s.exit_code == 3 and any("connection lost" in e for e in s.errors)
    [run] = rows(tmp_path / "ledger.db", "SELECT * FROM runs")
    assert run["status"] == "unavailable"
    orders = {o["account_id"]: o for o in rows(tmp_path / "ledger.db", "SELECT * FROM orders")}
    assert orders[1]["status"] == "sent" and "will reconcile" in orders[1]["message"]   # honest: unknown
    assert orders[2]["status"] == "filled"

    again = engine_at(config, NOW + 10).run_once()
    assert again.exit_code == 0, again.errors
    assert books(tmp_path)["orders"] == {1: "failed", 2: "filled"}
    assert_books_agree(tmp_path, magic_of(config))
