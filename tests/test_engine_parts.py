"""The parts of a pass on their own: the spec used to round trailing stops and spreads, and the
units of work the pass records through the ledger (one transaction each, read back as rows)."""

from __future__ import annotations

import yaml

from scalper.clock import FixedClock, iso
from scalper.config import load_config
from scalper.core.risk import Decision
from scalper.core.signals import Signal
from scalper.engine.context import PassContext
from scalper.errors import BrokerUnavailable
from scalper.ledger import Ledger
from scalper.ledger import passes as books
from scalper.symbols import spec_for
from scalper.vocab import DecisionAction, RunStatus
from tests.conftest import shared_file
from tests.enginekit import ts, write_config

NOW = ts("2025-05-15 10:00:05")


class SpecsGone:
    """A broker whose symbol table cannot be read right now (a terminal that dropped its link)."""

    account = "7"

    def symbol_spec(self, symbol: str):
        raise BrokerUnavailable("terminal not connected")


def _context(tmp_path, ledger: Ledger) -> PassContext:
    path = write_config(tmp_path, shared_file("XAUUSD_M1.csv"))
    raw = yaml.safe_load(path.read_text())
    raw["symbols"] = {"XAUUSDm": {"digits": 3, "contract_size": 100}}
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)
    return PassContext(cfg, ledger, clock=FixedClock(NOW), now=NOW, dry_run=False,
                       broker_factory=lambda acc: None, sleep=lambda s: None)   # type: ignore[arg-type,return-value]


def test_trailing_and_spread_round_with_the_configured_table_when_the_broker_cannot_say(tmp_path, caplog):
    """The fallback once crashed (`_Pass.specs` did not exist): it now yields the configured spec, logged."""
    with Ledger(tmp_path / "ledger.db") as ledger:
        ctx = _context(tmp_path, ledger)
        spec = ctx.rounding_spec(SpecsGone(), "XAUUSDm")
        assert spec == spec_for("XAUUSDm", ctx.cfg.symbol_overrides()) and spec.digits == 3
        assert ctx.rounding_spec(None, "XAUUSDm") == spec
    assert any("rounding with the configured table" in r.message for r in caplog.records)


def test_a_signal_is_recorded_once_and_read_back_as_the_strategy_gave_it(tmp_path):
    signal = Signal(strategy="doji_breakout", direction="sell", bar_time=int(NOW) - 65, entry=3301.25,
                    sl=3303.5, tp=3297.0, score=0.75, params={"lookback": 20})
    with Ledger(tmp_path / "ledger.db") as ledger:
        first = books.record_signal(ledger, signal, dedupe_key="k", run_id="r1", bot="gold", symbol="XAUUSDm",
                                    now=NOW)
        again = books.record_signal(ledger, signal, dedupe_key="k", run_id="r2", bot="gold", symbol="XAUUSDm",
                                    now=NOW + 45)
        assert first == (first[0], True) and again == (first[0], False)
        row = ledger.signals.get(first[0])
        assert row is not None and books.signal_of(row) == signal
        books.record_decision(ledger, first[0], Decision(DecisionAction.OPEN, "open"), run_id="r1", bot="gold",
                              now=NOW)
        decision = ledger.signals.decision(first[0])
        assert decision is not None and decision.action == DecisionAction.OPEN


def test_a_run_left_running_is_marked_interrupted_and_audited_by_the_next(tmp_path):
    with Ledger(tmp_path / "ledger.db") as ledger:
        assert books.start_run(ledger, run_id="a", started_at=iso(NOW), now=NOW, pid=11, dry_run=False, host="local") == []
        dead = books.start_run(ledger, run_id="b", started_at=iso(NOW + 45), now=NOW + 45, pid=12, dry_run=False, host="local")
        assert [(r.id, r.pid) for r in dead] == [("a", 11)]
        books.finish_run(ledger, "b", finished_at=iso(NOW + 46), duration_s=1.0, status=RunStatus.OK,
                         summary={"run_id": "b"})
        runs = {r["id"]: r for r in ledger.query("SELECT * FROM runs")}
        assert runs["a"]["status"] == "interrupted" and runs["a"]["finished_at"] == iso(NOW + 45)
        assert runs["b"]["status"] == "ok" and runs["b"]["summary"] == '{"run_id": "b"}'
        [audit] = ledger.query("SELECT * FROM audit WHERE kind = 'run_interrupted'")
        assert audit["run_id"] == "b" and "pid 11" in audit["message"]
