"""Runs: one row per run-once pass (started, finished, or found interrupted by the next one)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from scalper.ledger.rows import RunRow, fetch
from scalper.vocab import RunStatus

if TYPE_CHECKING:
    from scalper.ledger.store import Ledger


class Runs:
    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    def start(self, c: sqlite3.Connection, run_id: str, *, started_at: str, as_of: str, pid: int,
              dry_run: bool, host: str) -> None:
        c.execute("INSERT INTO runs (id, started_at, as_of, status, pid, dry_run, host) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (run_id, started_at, as_of, RunStatus.RUNNING, pid, int(dry_run), host))

    def finish(self, c: sqlite3.Connection, run_id: str, *, status: RunStatus, finished_at: str,
               duration_s: float, summary: str) -> None:
        c.execute("UPDATE runs SET status = ?, finished_at = ?, duration_s = ?, summary = ? WHERE id = ?",
                  (status, finished_at, duration_s, summary, run_id))

    def mark_interrupted(self, c: sqlite3.Connection, *, noticed_at: str, host: str) -> list[RunRow]:
        """Every run of terminal host `host` still `running` becomes `interrupted` (call under that
        host's run lock: such a run died without finishing; another host's run may be live). Its end
        is unknown; finished_at records when that was noticed. Returns the runs so marked, as they were."""
        dead = fetch(c, RunRow, "SELECT * FROM runs WHERE status = ? AND host = ? ORDER BY rowid",
                     (RunStatus.RUNNING, host))
        for run in dead:
            c.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                      (RunStatus.INTERRUPTED, noticed_at, run.id))
        return dead

    def last(self, *, finished: bool = False) -> RunRow | None:
        """The latest real (not --dry-run) run by start time; `finished`: the latest that ended."""
        done = " AND finished_at IS NOT NULL" if finished else ""
        return self._ledger.row(RunRow, f"SELECT * FROM runs WHERE dry_run = 0{done} "
                                        "ORDER BY started_at DESC, rowid DESC LIMIT 1")

    def latest_as_of(self) -> str | None:
        """The engine-clock time of the latest real run (the instant a replay may not go back past)."""
        return self._ledger.scalar("SELECT MAX(as_of) FROM runs WHERE dry_run = 0")

