"""Alerts as a state machine: passes over the real gold export, targets that answer, fail or hang,
and after every step the outbox, the ledger and what the receiver accepted agree."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.conftest import shared_file
from tests.enginekit import rows, ts
from tests.test_notify import Hook, _config

pytest.importorskip("apprise", reason="alerts need the notify extra")

from scalper.clock import iso
from scalper.services.run import run_once

MAX_TRIES = 3


class AlertMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.dir = Path(tempfile.mkdtemp(prefix="notify-machine-"))
        self.hook = Hook()
        self.saved = {k: os.environ.get(k) for k in ("ALERTS_ALL", "ALERTS_GOLD")}
        os.environ["ALERTS_ALL"] = self.hook.url("json", "all")
        os.environ["ALERTS_GOLD"] = self.hook.url("form", "gold")
        self.config = _config(self.dir, shared_file("XAUUSD_M1.csv"), [
            {"name": "all", "url_env": "ALERTS_ALL", "timeout_s": 0.3, "max_tries": MAX_TRIES},
            {"name": "gold", "url_env": "ALERTS_GOLD", "events": ["fills", "closes"], "bots": ["gold"],
             "timeout_s": 0.3, "max_tries": MAX_TRIES},
        ])
        self.now = ts("2025-05-15T09:16:05")
        self.passes = 0

    def teardown(self):
        if hasattr(self, "hook"):
            self.hook.close()
            for k, v in self.saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(minutes=st.integers(min_value=1, max_value=20))
    def a_pass(self, minutes):
        before = len(self.hook.posts)
        summary = run_once(config=str(self.config), ledger=None, now=iso(self.now))
        assert summary.exit_code == 0
        paths = [p["path"] for p in self.hook.posts[before:]]
        assert len(paths) == len(set(paths)), "two messages to one target in one pass"
        self.now += minutes * 60
        self.passes += 1

    @rule(mode=st.sampled_from(["ok", "ok", "fail", "slow"]))
    def the_service_changes(self, mode):
        self.hook.mode, self.hook.delay = mode, 1.0

    def _db(self, sql):
        db = self.dir / "ledger.db"
        return rows(db, sql) if db.exists() else []

    @invariant()
    def outbox_and_receiver_agree(self):
        if not hasattr(self, "hook"):
            return
        out = self._db("SELECT * FROM notify_outbox")
        for target in ("all", "gold"):
            got = self.hook.delivered(target)
            assert len(got) == len(set(got)), "an accepted alert was accepted again"
            sent = {r["text"] for r in out if r["target"] == target and r["status"] == "sent"}
            assert set(got) == sent
        for r in out:
            assert (r["status"] == "dropped") == (r["tries"] >= MAX_TRIES and r["status"] != "sent")
        dropped = [r for r in out if r["status"] == "dropped"]
        assert len(self._db("SELECT * FROM audit WHERE kind = 'notify_dropped'")) == len(dropped)

    @invariant()
    def every_trade_is_queued_once_per_target_that_wants_it(self):
        if not hasattr(self, "hook"):
            return
        positions = self._db("SELECT * FROM positions")
        out = self._db("SELECT * FROM notify_outbox")
        keys = {(r["target"], r["event_key"]) for r in out}
        assert len(keys) == len(out)
        for p in positions:
            fill = f"fill:{p['account_id']}:{p['ticket']}"
            close = f"close:{p['account_id']}:{p['ticket']}"
            assert ("all", fill) in keys and (("gold", fill) in keys) == (p["bot"] == "gold")
            assert (("all", close) in keys) == (p["status"] == "closed")


TestAlertMachine = AlertMachine.TestCase
TestAlertMachine.settings = settings(max_examples=6, stateful_step_count=10, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
