"""The ledger under a bad environment: read-only, full disk, a failure mid-run,
an older or a newer schema, a file that is not a ledger. Each ends in exit 1 with
the file and the reason (no traceback) or in a clean migration, and never in a
half-written step: afterwards `PRAGMA integrity_check` is ok, every order is
whole, and the next good run completes what was interrupted.

What an interrupted run may leave, by design (the next run completes it):
- a `runs` row with status `running` and no finished_at (as a power cut leaves it;
  the next run marks it `interrupted`);
- a signal without its decision (the next run decides it: open if still fresh,
  `risk_signal_stale` otherwise);
- an order `new` (never left: the next run sends it while fresh, else `failed`) or
  `sent` (the next run asks the broker: filled → recorded, not found → `failed`).
Never: an order `filled` without its position, a position without its order, a
decision without its signal, a row half-updated.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from scalper.clock import iso
from scalper.errors import LedgerError
from scalper.ledger import Ledger
from scalper.ledger import schema as ledger_schema
from scalper.ledger.store import MAX_PAGES_ENV
from tests.clikit import cli
from tests.conftest import run_at_once, shared_file
from tests.enginekit import engine_at, golden, just_after_close, write_config
from tests.pgkit import fresh_ledger_url, is_url, ledger_of, rows

ORDER_STATES = {"new", "sent", "filled", "rejected", "error", "failed", "canceled"}


# --- helpers ----------------------------------------------------------------------------------------
def _signal_bars() -> list[str]:
    return sorted({r["bar_time"] for r in golden(shared_file("XAUUSD_M1.expected_signals.csv"))})


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    r = cli(capsys, *args)
    return r.code, r.out, r.err


def _run(capsys, config: Path, bar: str, seconds: int = 5, *extra: str) -> tuple[int, dict, str]:
    now = iso(just_after_close(bar, seconds))
    code, out, err = _cli(capsys, "run-once", "--json", "--now", now, "--config", str(config), *extra)
    return code, json.loads(out) if out.strip() else {}, err


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _integrity(db: Path) -> None:
    if is_url(db):
        return   # PostgreSQL checks its own pages, and every foreign key at every statement
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()


def assert_whole(db: Path) -> None:
    """Only complete transactions: every row is whole and every link holds."""
    _integrity(db)
    orders = rows(db, "SELECT * FROM orders")
    for o in orders:
        assert o["status"] in ORDER_STATES, o
        if o["kind"] == "open":
            [d] = rows(db, "SELECT action FROM decisions WHERE signal_id = ?", (o["signal_id"],))
            assert d["action"] == "open", o
        if o["status"] == "filled":
            assert o["fill_price"] is not None and o["code"] == 10009, o
            if o["kind"] == "open":
                assert rows(db, "SELECT id FROM positions WHERE order_id = ?", (o["id"],)), f"no position: {o}"
    for p in rows(db, "SELECT * FROM positions WHERE order_id IS NOT NULL"):
        [o] = rows(db, "SELECT status FROM orders WHERE id = ?", (p["order_id"],))
        assert o["status"] == "filled", p
    for d in rows(db, "SELECT * FROM decisions"):
        assert rows(db, "SELECT id FROM signals WHERE id = ?", (d["signal_id"],)), d
    for r in rows(db, "SELECT * FROM runs"):
        if r["status"] == "running":
            assert r["finished_at"] is None, r


def assert_completed(db: Path, paper: Path) -> None:
    """After a good run: nothing left pending, and the broker's books agree with the ledger."""
    assert_whole(db)
    undecided = rows(db, "SELECT s.id FROM signals s LEFT JOIN decisions d ON d.signal_id = s.id "
                          "WHERE d.id IS NULL")
    assert undecided == []
    assert rows(db, "SELECT id FROM orders WHERE status IN ('new', 'sent')") == []
    assert rows(db, "SELECT id FROM runs WHERE status = 'running'") == []   # an interrupted run is marked so
    ledger_filled = {o["client_order_id"] for o in
                     rows(db, "SELECT client_order_id FROM orders WHERE status = 'filled' AND kind = 'open'")}
    broker_filled = {o["client_order_id"] for o in
                     rows(paper, "SELECT client_order_id FROM orders WHERE state = 'filled' "
                                  "AND position_ticket = ticket")}
    assert ledger_filled == broker_filled


def _v1_ledger(path: Path) -> None:
    """A ledger as scalper wrote it at schema v1 (before the v2 indexes), with some history."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = WAL")          # as scalper always wrote it
    con.executescript(ledger_schema.MIGRATIONS[1])
    con.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1'), ('created_at', '2025-05-01T00:00:00Z')")
    con.execute("INSERT INTO runs (id, started_at, as_of, finished_at, duration_s, status) VALUES "
                "('oldrun', '2025-05-01T00:00:00Z', '2025-05-01T00:00:00Z', '2025-05-01T00:00:01Z', 1.0, 'ok')")
    con.execute("INSERT INTO signals (dedupe_key, run_id, bot, strategy, symbol, bar_time, bar_ts, direction, entry, "
                "sl, tp, score, created_at) VALUES ('old|key', 'oldrun', 'gold', 'doji_breakout', 'XAUUSDm', "
                "'2025-05-01T00:00:00Z', 1746057600, 'buy', 100, 99, 101.5, 0.9, '2025-05-01T00:00:00Z')")
    con.execute("INSERT INTO decisions (signal_id, run_id, bot, action, reason, created_at) VALUES "
                "(1, 'oldrun', 'gold', 'reject', 'risk_signal_stale', '2025-05-01T00:00:00Z')")
    con.commit()
    con.close()


def _indexes(db: Path) -> set[str]:
    return {r["name"] for r in rows(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}


def _version(db: Path) -> int:
    return int(rows(db, "SELECT value FROM meta WHERE key = 'schema_version'")[0]["value"])


@pytest.fixture
def config(tmp_path, xau_csv) -> Path:
    return write_config(tmp_path, xau_csv, accounts=(1, 2), risk={"max_concurrent": 10, "max_per_symbol": 10})


@pytest.fixture
def either_config(config, ledger_engine) -> Path:
    """`config`, with its ledger in a fresh PostgreSQL schema for the postgresql run."""
    if ledger_engine == "postgresql":
        import yaml

        cfg = yaml.safe_load(config.read_text())
        cfg["ledger"] = fresh_ledger_url()
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return config


# --- read-only --------------------------------------------------------------------------------------
def _chattr_works(probe: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    probe.write_text("x")
    try:
        if subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode != 0:
            return False
        try:
            with open(probe, "a") as f:
                f.write("y")
            return False                      # immutable did not hold
        except OSError:
            return True
    finally:
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
        probe.unlink()


class ReadOnly:
    """Make a file really read-only for this process: chmod 0400 as a normal user; as root
    (whom chmod does not stop) the immutable attribute, which stops root too."""

    def __init__(self, path: Path):
        self.path = path
        self.how = None

    def __enter__(self):
        if os.geteuid() != 0:
            os.chmod(self.path, 0o400)
            self.how = "chmod 0400"
        elif _chattr_works(self.path.with_name("chattr-probe")):
            subprocess.run(["chattr", "+i", str(self.path)], check=True)
            self.how = "chattr +i"
        else:
            pytest.skip("running as root where chmod does not stop writes, and chattr +i is not available "
                        "on this filesystem: no way to make the ledger read-only for this process")
        return self

    def __exit__(self, *exc):
        if self.how == "chattr +i":
            subprocess.run(["chattr", "-i", str(self.path)], check=True)
        else:
            os.chmod(self.path, 0o600)


def test_read_only_ledger_exits_1_naming_the_file_and_changes_nothing(config, tmp_path, capsys):
    bars = _signal_bars()
    code, doc, err = _run(capsys, config, bars[0])
    assert code == 0, err
    ledger = tmp_path / "ledger.db"
    paper = tmp_path / "paper.db"
    before = (_sha(ledger), _sha(paper))
    rows_before = rows(ledger, "SELECT * FROM orders ORDER BY id")

    with ReadOnly(ledger):
        for as_json in (True, False):
            now = iso(just_after_close(bars[1]))
            args = ["run-once", "--now", now, "--config", str(config)] + (["--json"] if as_json else [])
            code, out, err = _cli(capsys, *args)
            assert code == 1, (out, err)
            text = out + err
            assert str(ledger) in text and "read-only" in text, text
            assert "Traceback" not in text
            if as_json:
                assert json.loads(out)["exit_code"] == 1

    assert (_sha(ledger), _sha(paper)) == before, "the ledger or the broker's books changed"
    wal = ledger.with_name("ledger.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    _integrity(ledger)
    assert rows(ledger, "SELECT * FROM orders ORDER BY id") == rows_before

    # writable again: the next run simply goes on
    code, doc, err = _run(capsys, config, bars[1])
    assert code == 0, err
    assert_completed(ledger, paper)


def test_ledger_in_a_folder_that_cannot_be_created_is_a_ledger_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the ledger's folder should be")
    with pytest.raises(LedgerError) as info:
        Ledger(blocker / "ledger.db")
    assert str(blocker) in str(info.value)
    (tmp_path / "a-folder.db").mkdir()
    with pytest.raises(LedgerError, match="is not a file"):
        Ledger(tmp_path / "a-folder.db")


# --- full disk ------------------------------------------------------------------------------------
def test_full_disk_at_every_step_exits_1_and_the_next_run_completes(config, tmp_path, capsys, monkeypatch):
    """A real SQLITE_FULL (max_page_count) at each point of a run where the ledger grows.

    The ledger is made with 512-byte pages, so almost every write of the run needs a new
    page and the cap, raised one page at a time, stops the run at each of its steps in turn:
    the run row, the signal, the decision, each order, each fill, the run's summary."""
    bars = _signal_bars()
    base = tmp_path / "base"
    base.mkdir()
    shutil.copy2(config, base / "bots.yaml")
    con = sqlite3.connect(base / "ledger.db")
    con.execute("PRAGMA page_size = 512")
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    for bar in bars[:6]:                               # some real history first
        code, doc, err = _run(capsys, base / "bots.yaml", bar)
        assert code == 0, err
    pages = rows(base / "ledger.db", "PRAGMA page_count")[0]["page_count"]
    target, later = bars[6], bars[6]

    outcomes = []
    for extra in range(0, 40):
        d = tmp_path / f"cap{extra}"
        shutil.copytree(base, d)
        monkeypatch.setenv(MAX_PAGES_ENV, str(pages + extra))
        code, doc, err = _run(capsys, d / "bots.yaml", target)
        monkeypatch.delenv(MAX_PAGES_ENV)
        if code == 0:
            assert_completed(d / "ledger.db", d / "paper.db")
            break
        assert code == 1, (doc, err)
        reason = " ".join(doc.get("errors") or [doc.get("error", "")])
        assert "full" in reason and str(d / "ledger.db") in reason, reason
        assert "Traceback" not in err
        assert_whole(d / "ledger.db")
        state = (len(rows(d / "ledger.db", "SELECT id FROM signals")),
                 tuple(o["status"] for o in rows(d / "ledger.db", "SELECT status FROM orders ORDER BY id")),
                 rows(d / "ledger.db", "SELECT status FROM runs ORDER BY rowid DESC LIMIT 1")[0]["status"])
        outcomes.append(state)
        # Space again: the next run (a few seconds later, the signal still fresh) completes it all.
        code, doc, err = _run(capsys, d / "bots.yaml", later, 35)
        assert code == 0, (doc, err)
        assert_completed(d / "ledger.db", d / "paper.db")
    else:
        pytest.fail("the run never fitted")
    # The cap hit the run at several distinct steps (not only at its first write).
    assert len(set(outcomes)) >= 3, outcomes


# --- a failure injected mid-run -------------------------------------------------------------------
def test_exception_inside_the_fill_transaction_rolls_it_back_whole(either_config, tmp_path, monkeypatch):
    """The fill's ledger write (order → filled, position, audit) is one transaction: an
    error in its last statement leaves none of it; the next run learns the fill from the broker."""
    from scalper.ledger.store import Ledger as L

    bars = _signal_bars()
    real_audit = L.audit

    def failing_audit(self, c, now, kind, message, **kw):
        if kind == "order_filled":
            raise RuntimeError("injected: power glitch while recording the fill")
        return real_audit(self, c, now, kind, message, **kw)

    monkeypatch.setattr(L, "audit", failing_audit)
    config = either_config
    with pytest.raises(RuntimeError, match="injected"):
        engine_at(config, just_after_close(bars[0])).run_once()
    monkeypatch.setattr(L, "audit", real_audit)

    db, paper = ledger_of(tmp_path), tmp_path / "paper.db"
    assert_whole(db)
    [order] = rows(db, "SELECT * FROM orders")
    assert order["status"] == "sent" and order["fill_price"] is None
    assert rows(db, "SELECT * FROM positions") == []
    assert [r["status"] for r in rows(db, "SELECT status FROM runs")] == ["error"]

    s = engine_at(config, just_after_close(bars[0], 30)).run_once()
    assert s.exit_code == 0, s.errors
    assert_completed(db, paper)
    assert len(rows(db, "SELECT * FROM orders WHERE status = 'filled'")) == 2


def test_broker_raising_mid_send_leaves_only_whole_rows(either_config, tmp_path, monkeypatch):
    from scalper.brokers.paper import PaperBroker

    bars = _signal_bars()
    calls = {"n": 0}
    real_send = PaperBroker.send_order

    def flaky_send(self, request):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionResetError("injected: socket reset mid-request")
        return real_send(self, request)

    config = either_config
    monkeypatch.setattr(PaperBroker, "send_order", flaky_send)
    with pytest.raises(ConnectionResetError):
        engine_at(config, just_after_close(bars[0])).run_once()
    monkeypatch.setattr(PaperBroker, "send_order", real_send)

    db, paper = ledger_of(tmp_path), tmp_path / "paper.db"
    assert_whole(db)
    assert sorted(o["status"] for o in rows(db, "SELECT status FROM orders")) == ["filled", "sent"]

    s = engine_at(config, just_after_close(bars[0], 30)).run_once()
    assert s.exit_code == 0, s.errors
    assert_completed(db, paper)   # the `sent` one is asked about, found absent, marked failed: never resent blind


def test_feed_failing_mid_run_records_the_run_as_an_error_and_nothing_else(either_config, tmp_path, monkeypatch):
    from scalper.feeds.csvfile import CsvFeed

    bars = _signal_bars()

    def broken(self, *a, **kw):
        raise OSError("injected: the NFS share holding the bar files went away")

    monkeypatch.setattr(CsvFeed, "closed_bars", broken)
    with pytest.raises(OSError):
        engine_at(either_config, just_after_close(bars[0])).run_once()
    db = ledger_of(tmp_path)
    assert_whole(db)
    assert rows(db, "SELECT * FROM signals") == []
    assert [r["status"] for r in rows(db, "SELECT status FROM runs")] == ["error"]


# --- schema versions --------------------------------------------------------------------------------
def test_older_schema_is_backed_up_then_migrated_on_start(config, tmp_path, capsys):
    db = tmp_path / "ledger.db"
    _v1_ledger(db)
    assert "positions_bot_closed" not in _indexes(db)

    code, doc, err = _run(capsys, config, _signal_bars()[0])
    assert code == 0, err

    [backup] = sorted(tmp_path.glob("ledger.db.v1.*.bak"))
    assert backup.stat().st_mode & 0o777 == 0o600
    _integrity(backup)
    assert _version(backup) == 1 and "positions_bot_closed" not in _indexes(backup)
    assert [r["dedupe_key"] for r in rows(backup, "SELECT dedupe_key FROM signals")] == ["old|key"]

    assert _version(db) == ledger_schema.SCHEMA_VERSION
    assert {"positions_bot_closed", "decisions_run"} <= _indexes(db)
    assert rows(db, "SELECT dedupe_key FROM signals ORDER BY id")[0]["dedupe_key"] == "old|key"
    assert rows(db, "SELECT kind FROM audit WHERE kind = 'migration'")
    assert_completed(db, tmp_path / "paper.db")

    # Opening it again migrates nothing and copies nothing.
    code, doc, err = _run(capsys, config, _signal_bars()[1])
    assert code == 0, err
    assert len(list(tmp_path.glob("ledger.db.v1.*.bak"))) == 1


def test_a_failed_migration_changes_nothing(tmp_path, monkeypatch):
    db = tmp_path / "ledger.db"
    _v1_ledger(db)
    before = _sha(db)
    monkeypatch.setitem(ledger_schema.MIGRATIONS, 2, ledger_schema.MIGRATIONS[2] + "\nCREATE INDEX broken ON nowhere (x);\n")
    with pytest.raises(LedgerError, match="nowhere"):
        Ledger(db)
    assert _version(db) == 1 and "positions_bot_closed" not in _indexes(db)   # the first statement rolled back too
    _integrity(db)
    [backup] = tmp_path.glob("ledger.db.v1.*.bak")                          # the copy was made first
    assert _version(backup) == 1
    monkeypatch.undo()
    with Ledger(db) as led:                                                  # and a good scalper migrates it
        assert led.schema_version() == ledger_schema.SCHEMA_VERSION
    assert _sha(db) != before


def test_no_backup_no_migration(tmp_path, monkeypatch):
    db = tmp_path / "ledger.db"
    _v1_ledger(db)
    before = _sha(db)

    def cannot_copy(self, label):
        raise LedgerError(f"could not back up the ledger {self.path} (injected); nothing was changed")

    monkeypatch.setattr(Ledger, "backup", cannot_copy)
    with pytest.raises(LedgerError, match="could not back up"):
        Ledger(db)
    assert _sha(db) == before and _version(db) == 1


def test_dry_run_on_an_older_ledger_writes_no_backup_and_changes_nothing(config, tmp_path, capsys):
    db = tmp_path / "ledger.db"
    _v1_ledger(db)
    before = _sha(db)
    code, doc, err = _run(capsys, config, _signal_bars()[0], 5, "--dry-run")
    assert code == 0, err
    assert _sha(db) == before
    assert list(tmp_path.glob("*.bak")) == []


def test_newer_schema_is_refused_untouched(config, tmp_path, capsys):
    db = tmp_path / "ledger.db"
    _v1_ledger(db)
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    before = _sha(db)
    code, doc, err = _run(capsys, config, _signal_bars()[0])
    assert code == 1
    assert str(db) in err and "schema version 99, newer than this scalper knows" in err and "upgrade" in err
    assert "Traceback" not in err
    assert _sha(db) == before and list(tmp_path.glob("*.bak")) == []
    assert not (tmp_path / "paper.db").exists(), "the broker was reached although the ledger was refused"


@pytest.mark.parametrize("what", ["paper_broker_file", "garbage", "bad_version_record"])
def test_a_file_that_is_not_a_usable_ledger_is_refused_untouched(what, config, tmp_path, capsys):
    bars = _signal_bars()
    target = tmp_path / "other.db"
    if what == "paper_broker_file":          # e.g. `ledger:` pointed at the broker's state by mistake
        code, doc, err = _run(capsys, config, bars[0])
        assert code == 0, err
        shutil.copy2(tmp_path / "paper.db", target)
        words, expected_code = "not a scalper ledger", 2   # a wrong path is bad input
    elif what == "garbage":             # not even SQLite: say so, not "damaged"
        target.write_bytes(b"\x00garbage" + os.urandom(8192))
        words, expected_code = "not a scalper ledger: it is not an SQLite database", 2
    else:
        _v1_ledger(target)
        con = sqlite3.connect(target)
        con.execute("UPDATE meta SET value = 'one' WHERE key = 'schema_version'")
        con.commit()
        con.close()
        words, expected_code = "not a number", 1
    before = _sha(target)
    code, out, err = _cli(capsys, "run-once", "--now", iso(just_after_close(bars[1])), "--config", str(config),
                          "--ledger", str(target))
    assert code == expected_code, err
    assert str(target) in err and words in err and "Traceback" not in err
    assert _sha(target) == before
    if expected_code == 2:
        assert not target.with_name(target.name + ".lock").exists(), "nothing is written beside a wrong path"


def test_check_reports_a_damaged_ledger_without_a_traceback(config, tmp_path, capsys):
    (tmp_path / "ledger.db").write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    code, out, err = _cli(capsys, "check", "--config", str(config))
    assert code != 0
    assert "Traceback" not in out + err
    assert "ledger" in out + err


# --- permissions ---------------------------------------------------------------------------------
def test_ledger_wal_shm_and_backups_are_owner_only(config, tmp_path, capsys):
    db = tmp_path / "ledger.db"
    _v1_ledger(db)
    os.chmod(db, 0o600)
    old = os.umask(0o022)
    try:
        with Ledger(db) as led:             # migrates (backup) and holds the WAL open
            with led.tx() as c:
                led.audit(c, 0.0, "test", "write something so the -wal has frames")
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(db) + suffix)
                assert p.exists() and p.stat().st_mode & 0o777 == 0o600, (p, oct(p.stat().st_mode))
        [backup] = tmp_path.glob("ledger.db.v1.*.bak")
        assert backup.stat().st_mode & 0o777 == 0o600
        fresh = tmp_path / "sub" / "new.db"
        with Ledger(fresh):
            assert fresh.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_integrity_is_clean_after_all_of_it(config, tmp_path, capsys):
    """One ledger through a read-only spell, a full disk and a crash, then the good runs."""
    bars = _signal_bars()
    db = tmp_path / "ledger.db"
    code, doc, err = _run(capsys, config, bars[0])
    assert code == 0, err
    with ReadOnly(db):
        code, doc, err = _run(capsys, config, bars[1])
        assert code == 1
    pages = rows(db, "PRAGMA page_count")[0]["page_count"]
    os.environ[MAX_PAGES_ENV] = str(pages)
    try:
        code, doc, err = _run(capsys, config, bars[2])
    finally:
        del os.environ[MAX_PAGES_ENV]
    assert code in (0, 1)
    for bar in bars[2:5]:
        code, doc, err = _run(capsys, config, bar)
        assert code == 0, err
    assert_completed(db, tmp_path / "paper.db")


def test_a_new_ledger_created_by_another_process_between_two_looks_is_opened_not_refused(tmp_path, monkeypatch):
    """Opening a new file: the version is read (0: empty), then the foreign-database check looks at
    the tables, each in a snapshot of its own. A fleet's hosts open a new shared ledger at once: when
    another one commits the schema in between, the file is a ledger, not a foreign database."""
    from scalper.errors import NotALedger
    from scalper.ledger import store

    path = tmp_path / "ledger.db"
    real = store.current_version
    raced: list[int] = []

    def current_version(conn):
        version = real(conn)
        if version == 0 and not raced:
            raced.append(1)
            Ledger(path).close()   # another opener (its own connection) creates the ledger right then
        return version

    monkeypatch.setattr(store, "current_version", current_version)
    try:
        with Ledger(path) as led:
            assert led.schema_version() == ledger_schema.SCHEMA_VERSION
    except NotALedger as exc:
        pytest.fail(f"a ledger created meanwhile was refused as foreign: {exc}")
    assert raced == [1]
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT COUNT(*) FROM meta WHERE key = 'created_at'").fetchone() == (1,)
    finally:
        con.close()
    # a database that really is something else is still refused, untouched
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE positions (x)")
    con.commit()
    con.close()
    with pytest.raises(NotALedger, match="not a scalper ledger"):
        Ledger(other)
    con = sqlite3.connect(other)
    try:
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["positions"]
    finally:
        con.close()


_OPENER = """
import sys
from scalper.ledger import Ledger
print("ready", flush=True)
sys.stdin.read()
with Ledger(sys.argv[1]) as led:
    print(led.schema_version(), flush=True)
"""


def test_processes_creating_one_new_sqlite_ledger_at_once_all_open_it(tmp_path):
    path = tmp_path / "ledger.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    assert run_at_once(_OPENER, [[str(path)]] * 6, env) == [str(ledger_schema.SCHEMA_VERSION)] * 6
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT COUNT(*) FROM meta WHERE key = 'created_at'").fetchone() == (1,)
    finally:
        con.close()
