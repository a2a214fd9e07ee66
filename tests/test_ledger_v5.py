"""Schema v5: the status columns hold only words of scalper.vocab (CHECK constraints, added by
rebuilding the tables), and an existing v4 ledger migrates with every row kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.errors import LedgerError
from scalper.ledger import Ledger
from scalper.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from scalper.vocab import CloseCause, CloseState, OrderStatus, RunStatus

T = "2025-05-15T09:16:00Z"
TABLES = ("runs", "signals", "decisions", "orders", "fills", "positions", "pnl_daily", "audit", "kill_switches",
          "engine_state", "notify_outbox", "notify_state")


def _v4_ledger(path: Path, *, run_status: str = "ok") -> None:
    """A ledger as scalper v4 wrote it, with a row in every table the engine writes."""
    conn = sqlite3.connect(path)
    for v in range(1, 5):
        conn.executescript(MIGRATIONS[v])
    conn.executescript(f"""
        INSERT INTO meta VALUES ('schema_version', '4'), ('created_at', '{T}');
        INSERT INTO runs VALUES ('r1', '{T}', '{T}', '{T}', 0.5, '{run_status}', 11, 0, '{{}}'),
                                ('r2', '{T}', '{T}', NULL, NULL, 'interrupted', 12, 0, NULL);
        INSERT INTO signals VALUES (1, 'gold|tp|X|t|buy', 'r1', 'gold', 'trend_pullback', 'XAUUSD', '{T}', 1747300560,
                                    'buy', 3300.0, 3290.0, 3320.0, 0.7, '{{}}', '{T}');
        INSERT INTO decisions VALUES (1, 1, 'r1', 'gold', 'open', 'open', '', '{T}');
        INSERT INTO orders VALUES (1, 'sc-open', 1, 7, 'gold', 'open', 'XAUUSD', 'buy', 0.1, 3290.0, 3320.0, 42, 501,
                                   'filled', 1, 501, 3300.2, 0.1, 10009, 'DONE', 'r1', '{T}', '{T}'),
                                  (2, 'sc-close', 1, 7, 'gold', 'close', 'XAUUSD', 'sell', 0.1, NULL, NULL, 42, 501,
                                   'sent', 1, NULL, NULL, NULL, NULL, NULL, 'r1', '{T}', '{T}');
        INSERT INTO fills VALUES (1, 1, 7, 9001, 501, 'buy', 'in', 3300.2, 0.1, 0, 'expert', '{T}');
        INSERT INTO positions (id, account_id, ticket, order_id, signal_id, bot, strategy, symbol, side, volume,
                               price_open, sl, tp, initial_sl, magic, opened_at, status, closed_at, close_price,
                               close_reason, profit, last_price, unrealized, adopted, close_state)
            VALUES (1, 7, 501, 1, 1, 'gold', 'trend_pullback', 'XAUUSD', 'buy', 0.1, 3300.2, 3290.0, 3320.0, 3290.0,
                    42, '{T}', 'open', NULL, NULL, NULL, NULL, 3301.0, 8.0, 0, NULL),
                   (2, 7, 502, NULL, NULL, 'gold', NULL, 'XAUUSD', 'sell', 0.2, 3310.0, NULL, NULL, NULL,
                    42, '{T}', 'closed', '{T}', 3305.0, 'expert', NULL, NULL, 0, 1, 'closing');
        INSERT INTO pnl_daily VALUES ('2025-05-15', 'gold', 7, 12.5, 1, 1, 0);
        INSERT INTO audit VALUES (1, '{T}', 'r1', 'order_filled', 'gold', 7, 'filled', NULL);
        INSERT INTO kill_switches VALUES ('gold', 1, 'manual', 'by hand', '{T}');
        INSERT INTO engine_state VALUES ('paused', '0', NULL, '{T}');
    """)
    conn.commit()
    conn.close()


def _dump(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        out = {}
        for table in TABLES:
            added_since_v4 = {"orders": "reason", "runs": "host"}   # by v5 and v6
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if added_since_v4.get(table) != r[1]]
            out[table] = conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY rowid").fetchall()
        return out
    finally:
        conn.close()


def test_a_v4_ledger_with_rows_migrates_keeping_every_row(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _v4_ledger(db)
    before = _dump(db)
    with Ledger(db) as led:
        assert led.schema_version() == SCHEMA_VERSION == 6
        assert led.last_backup is not None and led.last_backup.name.startswith("ledger.db.v4.")
        assert led.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1     # back on after the rebuild
        assert led.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert led.integrity_check() == "ok"
        # the rows read back typed, with their words
        [position] = led.positions.open()
        assert (position.ticket, position.side, position.status) == (501, "buy", "open")
        assert [o.status for o in led.orders.in_flight()] == [OrderStatus.SENT]
        assert led.orders.get(2).reason is None
        assert [p.close_state for p in led.positions.closing(7)] == [CloseState.CLOSING]
    after = _dump(db)
    migrated = after.pop("audit")
    assert migrated[:-1] == before.pop("audit") and f"migrated from v4 to v{SCHEMA_VERSION}" in migrated[-1][6]
    assert after == before
    indexes = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"orders_status", "positions_open", "positions_bot_closed", "positions_closing"} <= indexes


def test_a_v4_ledger_holding_a_status_outside_the_vocabulary_is_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _v4_ledger(db, run_status="done")          # no scalper ever wrote this: the migration refuses it
    before = _dump(db)
    with pytest.raises(LedgerError, match="CHECK constraint failed"):
        Ledger(db)
    assert _dump(db) == before
    assert sqlite3.connect(db).execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("4",)


def _try(db: Path, sql: str, params: tuple) -> bool:
    """Did the ledger accept the write? (rolled back either way)"""
    with Ledger(db) as led:
        try:
            with led.tx() as c:
                c.execute(sql, params)
                raise _Undo
        except _Undo:
            return True
        except LedgerError as exc:
            assert "CHECK constraint failed" in str(exc)
            return False


class _Undo(Exception):
    pass


@pytest.fixture(scope="module")
def v5_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("v5") / "ledger.db"
    _v4_ledger(db)
    Ledger(db).close()
    return db


WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(status=st.one_of(WORDS, st.sampled_from([s.value for s in OrderStatus])))
def test_an_order_status_is_accepted_only_when_it_is_a_word_of_the_vocabulary(v5_db: Path, status: str) -> None:
    accepted = _try(v5_db, "UPDATE orders SET status = ? WHERE id = 1", (status,))
    assert accepted == (status in set(OrderStatus))


@settings(max_examples=25, deadline=None)
@given(status=st.one_of(WORDS, st.sampled_from([s.value for s in RunStatus])))
def test_a_run_status_is_accepted_only_when_it_is_a_word_of_the_vocabulary(v5_db: Path, status: str) -> None:
    assert _try(v5_db, "UPDATE runs SET status = ? WHERE id = 'r1'", (status,)) == (status in set(RunStatus))


@pytest.mark.parametrize(("sql", "params"), [
    ("UPDATE positions SET close_state = ? WHERE id = 2", ("closng",)),
    ("UPDATE positions SET close_state = 'closing' WHERE id = ?", (1,)),       # an open position is not closing
    ("UPDATE positions SET status = ? WHERE id = 1", ("gone",)),
    ("UPDATE orders SET reason = ? WHERE id = 2", ("whim",)),
    ("UPDATE fills SET entry = ? WHERE id = 1", ("inout",)),
    ("UPDATE orders SET side = ? WHERE id = 1", ("long",)),
    ("UPDATE orders SET kind = ? WHERE id = 2", ("reverse",)),
])
def test_other_words_outside_the_vocabulary_are_refused(v5_db: Path, sql: str, params: tuple) -> None:
    assert not _try(v5_db, sql, params)


def test_the_vocabulary_itself_is_accepted(v5_db: Path) -> None:
    for cause in CloseCause:
        assert _try(v5_db, "UPDATE orders SET reason = ? WHERE id = 2", (cause,))
    assert _try(v5_db, "UPDATE orders SET reason = NULL WHERE id = 2", ())
