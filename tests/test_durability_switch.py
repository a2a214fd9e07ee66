"""The suite's durability switch (SCALPER_SQLITE_SYNCHRONOUS) lowers fsync for tests only:
production opens the ledger and the paper broker's books with synchronous=FULL."""

from __future__ import annotations

import os

import pytest

from scalper.brokers.paper_books import open_state
from scalper.ledger.sqlite import SYNCHRONOUS_ENV
from scalper.ledger.store import Ledger

# PRAGMA synchronous answers a number
OFF, NORMAL, FULL = 0, 1, 2


def _modes(tmp_path) -> tuple[int, int]:
    ledger = Ledger(tmp_path / "ledger.db")
    books = open_state(tmp_path / "paper.db")
    try:
        return (ledger.conn.execute("PRAGMA synchronous").fetchone()[0],
                books.execute("PRAGMA synchronous").fetchone()[0])
    finally:
        ledger.close()
        books.close()


@pytest.mark.real_durability
def test_production_opens_the_ledger_and_the_books_full_in_wal(tmp_path):
    assert SYNCHRONOUS_ENV not in os.environ
    assert _modes(tmp_path) == (FULL, FULL)
    ledger = Ledger(tmp_path / "ledger.db")
    try:
        assert ledger.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        ledger.close()


def test_the_suite_runs_with_the_switch_set(tmp_path):
    from tests.conftest import SYNCHRONOUS_ENV as named_in_conftest

    assert named_in_conftest == SYNCHRONOUS_ENV
    assert os.environ.get(SYNCHRONOUS_ENV) == "OFF"
    assert _modes(tmp_path) == (OFF, OFF)


@pytest.mark.parametrize("value, expected", [("normal", NORMAL), (" off ", OFF), ("full", FULL),
                                             ("of", FULL), ("0", FULL), ("", FULL)])
def test_only_a_known_mode_lowers_it_anything_else_means_full(tmp_path, monkeypatch, value, expected):
    monkeypatch.setenv(SYNCHRONOUS_ENV, value)
    assert _modes(tmp_path) == (expected, expected)
