"""The PostgreSQL ledger against the real server: URLs and credentials, the per-host advisory
lock between processes (and what a SIGKILL does to it), fleet-wide uniqueness under racing
processes, `scalper check`, a dry run, and `scalper ledger migrate` from a real SQLite ledger.

Every test here needs the server (tests/pgkit.py) and is skipped, saying why, without it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from scalper.clock import iso
from scalper.ledger import Ledger
from scalper.ledger.postgres import LedgerUrl, mask
from tests import pgkit
from tests.clikit import cli
from tests.conftest import run_at_once
from tests.enginekit import engine_at
from tests.test_exactly_once import NOW, assert_books_agree, books, child_env, magic_of, run_cli, write_bots

pytestmark = pytest.mark.skipif(pgkit.unavailable() is not None, reason=f"needs PostgreSQL: {pgkit.unavailable()}")

SECRET = "s3cret-Pa55word"   # never to be seen in any output


def _config(folder: Path, url: str) -> Path:
    return write_bots(folder, ledger=url)


# --- URLs and credentials ----------------------------------------------------------------------
def test_a_password_in_the_bots_file_url_is_a_config_error_that_says_where_it_goes(tmp_path, capsys):
    base = pgkit.session_database()
    with_password = base.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    config = _config(tmp_path, with_password)
    for args in (["check", "--config", str(config)], ["run-once", "--config", str(config), "--now", iso(NOW)],
                 ["status", "--config", str(config), "--json"]):
        r = cli(capsys, *args)
        assert r.code == 2, (args, r.err)
        text = r.out + r.err
        assert SECRET not in text
        assert "carries a password" in text and "PGPASSWORD" in text and ".pgpass" in text
    # ... and on the command line / SCALPER_LEDGER too (a password there shows in `ps`)
    config = _config(tmp_path / "ok", pgkit.fresh_ledger_url())
    r = cli(capsys, "status", "--config", str(config), "--ledger", with_password)
    assert r.code == 2 and SECRET not in r.out + r.err and "--ledger" in r.err
    assert SECRET not in mask(with_password) and "***" in mask(with_password)


def test_check_reaches_the_database_and_names_where_the_password_came_from_never_what_it_is(tmp_path, capsys,
                                                                                         monkeypatch):
    url = pgkit.fresh_ledger_url()
    config = _config(tmp_path, url)
    monkeypatch.setenv("PGPASSWORD", SECRET)   # trust auth ignores it; libpq still sends it if asked
    r = cli(capsys, "check", "--config", str(config), "--json")
    [item] = [i for i in r.json()["items"] if i["what"] == "ledger"]
    assert item["ok"] and "reached (PostgreSQL" in item["detail"] and "no ledger yet" in item["detail"], item
    assert engine_at(config, NOW).run_once().exit_code == 0
    r = cli(capsys, "check", "--config", str(config), "--json")
    [item] = [i for i in r.json()["items"] if i["what"] == "ledger"]
    from scalper.ledger.schema import SCHEMA_VERSION

    assert item["ok"] and f"schema v{SCHEMA_VERSION}" in item["detail"], item
    assert SECRET not in r.out + r.err

    # a server that is not there: one line naming the masked URL, nothing else
    gone = _config(tmp_path / "gone", "postgresql://postgres@127.0.0.1:1/scalper")
    r = cli(capsys, "check", "--config", str(gone), "--json")
    [item] = [i for i in r.json()["items"] if i["what"] == "ledger"]
    assert not item["ok"] and "cannot reach the ledger postgresql://postgres@127.0.0.1:1/scalper" in item["detail"]
    assert r.code != 0 and SECRET not in r.out + r.err


def test_a_run_on_postgresql_is_the_run_on_sqlite_and_a_dry_run_writes_nothing(tmp_path, capsys, monkeypatch):
    url = pgkit.fresh_ledger_url()
    pg, lite = _config(tmp_path / "pg", url), write_bots(tmp_path / "lite")
    r = cli(capsys, "run-once", "--config", str(pg), "--now", iso(NOW), "--dry-run", "--json")
    assert r.code == 0 and r.json()["orders_created"] == 0
    assert not LedgerUrl.parse(url).exists()                   # the dry run created no schema
    for config in (pg, lite):
        assert engine_at(config, NOW).run_once().exit_code == 0
    assert books(tmp_path / "pg") == books(tmp_path / "lite")
    assert_books_agree(tmp_path / "pg", magic_of(pg))
    status = cli(capsys, "status", "--config", str(pg), "--json").json()
    assert status["ledger"] == str(LedgerUrl.parse(url)) and len(status["open_positions"]) == 2
    elsewhere = tmp_path / "elsewhere"                      # no bots.yaml here: the report reads the URL alone
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    report = cli(capsys, "report", "--ledger", url, "--since", "2025-05-15", "--json")
    assert report.code == 0, report.err
    assert report.json()["ledger"] == str(LedgerUrl.parse(url)) and report.json()["totals"]["signals"] >= 1


# --- the advisory lock between processes ---------------------------------------------------------
_HOLDER = textwrap.dedent("""
    import sys, time
    from scalper.ledger import run_lock
    from scalper.ledger.postgres import LedgerUrl
    with run_lock(LedgerUrl.parse(sys.argv[1]), holder=sys.argv[2]):
        print("held", flush=True)
        time.sleep(600)
""")


def test_a_second_process_is_refused_naming_the_holder_and_a_sigkill_frees_the_lock_at_once(tmp_path):
    url = pgkit.fresh_ledger_url()
    config = _config(tmp_path, url)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url, "kill-switch"], env=child_env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        blocked = run_cli(config, NOW)
        assert blocked.returncode == 75, blocked.stderr
        [line] = blocked.stderr.strip().splitlines()
        assert line.startswith("error: another kill-switch holds the lock for host local on postgresql://")
        assert f"(pid {holder.pid} on " in line and line.endswith("nothing done")
        assert json.loads(blocked.stdout)["exit_code"] == 75
        assert books(tmp_path)["signals"] == 0                       # refused before doing anything
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        t0 = time.monotonic()
        done = run_cli(config, NOW)                                  # the server freed it with the connection
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - t0 < 30
        assert books(tmp_path)["orders"] == {1: "filled", 2: "filled"}
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_the_file_lock_names_an_operator_command_holding_it(tmp_path):
    config = write_bots(tmp_path)
    ledger = str(tmp_path / "ledger.db")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER.replace("LedgerUrl.parse(sys.argv[1])", "sys.argv[1]"),
                               ledger, "rollback"], env=child_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        blocked = run_cli(config, NOW)
        assert blocked.returncode == 75
        [line] = blocked.stderr.strip().splitlines()
        assert line == f"error: another rollback holds the lock on {ledger} (pid {holder.pid}); nothing done"
    finally:
        holder.kill()
        holder.wait()


def test_hosts_lock_separately(tmp_path):
    from scalper.errors import LockHeld
    from scalper.ledger import run_lock

    url = LedgerUrl.parse(pgkit.fresh_ledger_url())
    refused = pytest.raises(LockHeld, match="another run-once holds the lock for host vps-1")
    with run_lock(url, host="vps-1"), run_lock(url, host="vps-2"), refused, run_lock(url, host="vps-1"):
        pass


# --- uniqueness across processes -------------------------------------------------------------------
_RACER = textwrap.dedent("""
    import json, sys
    from scalper.ledger import Ledger
    from scalper.ledger.postgres import LedgerUrl
    from scalper.vocab import DecisionAction, OrderKind
    led = Ledger(LedgerUrl.parse(sys.argv[1]))
    print("ready", flush=True)
    sys.stdin.read()                                    # the barrier
    me = sys.argv[2]
    with led.tx() as c:
        sid, created = led.signals.record(c, dedupe_key="gold|trend_pullback|XAUUSD|1747300500|sell", run_id=me,
                                          bot="gold", strategy="trend_pullback", symbol="XAUUSD",
                                          bar_time="2025-05-15T09:15:00Z", bar_ts=1747300500, direction="sell",
                                          entry=3300.0, sl=3310.0, tp=3280.0, score=0.5, params="{}",
                                          created_at="2025-05-15T09:16:05Z")
    with led.tx() as c:                                 # decided once: the loser reads the winner's decision
        decided = c.execute("SELECT id FROM decisions WHERE signal_id = ?", (sid,)).fetchone() is None
        if decided:
            led.signals.decide(c, signal_id=sid, run_id=me, bot="gold", action=DecisionAction.OPEN,
                               reason="approved", detail=me, created_at="2025-05-15T09:16:05Z")
    with led.tx() as c:
        sent = led.orders.record_intent(c, client_order_id="cid-1-" + str(sid), signal_id=sid, account_id=1,
                                        bot="gold", kind=OrderKind.OPEN, symbol="XAUUSD", side="sell", volume=0.1,
                                        sl=3310.0, tp=3280.0, magic=7, position_ticket=None, run_id=me,
                                        at="2025-05-15T09:16:05Z")
    decision = led.signals.decision(sid)
    print(json.dumps({"signal": sid, "created": created, "decided": decided, "intent": sent,
                      "decision_by": decision.run_id}), flush=True)
""")


def test_processes_racing_on_one_signal_record_it_once_decide_it_once_and_order_it_once():
    url = pgkit.fresh_ledger_url()
    Ledger(LedgerUrl.parse(url)).close()
    results = [json.loads(out) for out in run_at_once(_RACER, [[url, f"host-{i}"] for i in range(6)], child_env())]
    assert len({r["signal"] for r in results}) == 1                   # every racer holds the winner's row
    assert sum(r["created"] for r in results) == 1
    assert sum(r["decided"] for r in results) == 1
    assert sum(r["intent"] for r in results) == 1
    assert len({r["decision_by"] for r in results}) == 1
    assert [len(pgkit.rows(url, f"SELECT * FROM {t}")) for t in ("signals", "decisions", "orders")] == [1, 1, 1]


# --- ledger migrate ----------------------------------------------------------------------------------
def test_ledger_migrate_copies_a_real_sqlite_ledger_verified_and_trading_goes_on_there(tmp_path, capsys):
    folder = tmp_path / "lite"
    config = write_bots(folder)
    for offset in (0, 60, 3600):                         # signals, fills, a later pass that closes/syncs
        assert engine_at(config, NOW + offset).run_once().exit_code == 0
    url = pgkit.fresh_ledger_url()
    r = cli(capsys, "ledger", "migrate", "--config", str(config), "--to", url, "--json")
    assert r.code == 0, r.err
    doc = r.json()
    counts = {t["table"]: t["rows"] for t in doc["tables"]}
    with Ledger(folder / "ledger.db", readonly=True) as src:
        for table, n in counts.items():
            assert src.one(f"SELECT COUNT(*) AS n FROM {table}")["n"] == n
    assert counts["signals"] >= 1 and counts["orders"] == 2 and counts["runs"] == 3
    runs_lite = [r["id"] for r in pgkit.rows(folder / "ledger.db", "SELECT id FROM runs ORDER BY rowid")]
    assert [r["id"] for r in pgkit.rows(url, "SELECT id FROM runs ORDER BY rowid")] == runs_lite

    # a second copy into the same (now non-empty) target is refused, unless told
    again = cli(capsys, "ledger", "migrate", "--config", str(config), "--to", url)
    assert again.code == 2 and "already holds rows" in again.err and "--replace" in again.err
    assert cli(capsys, "ledger", "migrate", "--config", str(config), "--to", url, "--replace").code == 0

    # point the bots file at it: the next pass continues the same books (ids kept, nothing doubled)
    cfg = yaml.safe_load(config.read_text())
    cfg["ledger"] = url
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = books(folder)
    s = engine_at(config, NOW + 3660).run_once()
    assert s.exit_code == 0 and s.orders_created == 0, s.errors
    assert books(folder)["orders"] == before["orders"] and books(folder)["signals"] >= before["signals"]
    assert_books_agree(folder, magic_of(config))
    with Ledger(LedgerUrl.parse(url)) as led:
        top = led.one("SELECT MAX(id) AS n FROM audit")["n"]
        with led.tx() as c:                              # the identities continue after the copied ids
            led.audit(c, time.time(), "test", "after the copy")
        assert led.one("SELECT MAX(id) AS n FROM audit")["n"] == top + 1
    assert os.path.exists(folder / "ledger.db")          # the SQLite ledger is left as it was


# --- schema migrations on PostgreSQL -------------------------------------------------------------------
def test_a_v4_postgresql_ledger_is_migrated_to_v5_in_one_transaction_rows_ids_and_keys_kept():
    """v5 rebuilds runs, orders, positions and fills (SQLite's only way to add CHECKs): on PostgreSQL
    the same script runs, the drops cascade only to the foreign keys the rebuilt tables declare
    again, and the identities continue after the copied ids."""
    from scalper.ledger import postgres
    from scalper.ledger.schema import SCHEMA_VERSION, migration_sql
    from scalper.ledger.store import _split_sql

    url = LedgerUrl.parse(pgkit.fresh_ledger_url())
    conn = postgres.connect(url)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for v in range(1, 5):
            for statement in _split_sql(migration_sql(v, "postgresql")):
                conn.execute(statement)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '4')")
        conn.execute("INSERT INTO runs (id, started_at, as_of, status) VALUES ('r1', 'a', 'a', 'ok'), "
                     "('r2', 'b', 'b', 'ok')")
        conn.execute("INSERT INTO signals (dedupe_key, bot, strategy, symbol, bar_time, bar_ts, direction, entry, sl, "
                     "tp, score, created_at) VALUES ('k', 'gold', 'trend_pullback', 'XAUUSD', 't', 1, 'buy', 1, 0.9, "
                     "1.2, 0.5, 't')")
        conn.execute("INSERT INTO orders (id, client_order_id, signal_id, account_id, bot, symbol, side, volume, "
                     "magic, status, created_at, updated_at) VALUES (41, 'c41', 1, 1, 'gold', 'XAUUSD', 'buy', 0.1, "
                     "7, 'filled', 't', 't')")
        conn.execute("INSERT INTO positions (id, account_id, ticket, order_id, symbol, side, volume, price_open, "
                     "opened_at, status) VALUES (17, 1, 900, 41, 'XAUUSD', 'buy', 0.1, 1.0, 't', 'open')")
        conn.execute("COMMIT")
    finally:
        conn.close()

    with Ledger(url) as led:
        assert led.schema_version() == SCHEMA_VERSION == 6
        assert [r["id"] for r in led.query("SELECT id FROM runs ORDER BY rowid")] == ["r1", "r2"]
        assert led.one("SELECT order_id FROM positions WHERE id = 17")["order_id"] == 41
        with led.tx() as c:                                  # ids continue after the copied ones
            new_order = c.execute(
                "INSERT INTO orders (client_order_id, signal_id, account_id, bot, symbol, side, volume, magic, "
                "status, created_at, updated_at) VALUES ('c42', 1, 2, 'gold', 'XAUUSD', 'buy', 0.1, 7, 'new', "
                "'t', 't')").lastrowid
        assert new_order == 42
        from scalper.errors import LedgerError

        with pytest.raises(LedgerError, match="foreign key"), led.tx() as c:   # the keys hold again
            c.execute("INSERT INTO positions (account_id, ticket, order_id, symbol, side, volume, price_open, "
                      "opened_at, status) VALUES (1, 901, 999, 'XAUUSD', 'buy', 0.1, 1.0, 't', 'open')")
        with pytest.raises(LedgerError, match="check constraint"), led.tx() as c:   # v5's CHECKs
            c.execute("UPDATE orders SET status = 'filed' WHERE id = 41")
        assert led.one("SELECT COUNT(*) AS n FROM audit WHERE kind = 'migration'")["n"] == 1


_OPENER = textwrap.dedent("""
    import sys
    from scalper.ledger import Ledger
    from scalper.ledger.postgres import LedgerUrl
    print("ready", flush=True)
    sys.stdin.read()
    with Ledger(LedgerUrl.parse(sys.argv[1])) as led:
        print(led.schema_version(), flush=True)
""")


def test_processes_creating_one_new_ledger_at_once_create_it_once():
    url = pgkit.fresh_ledger_url()
    assert run_at_once(_OPENER, [[url]] * 4, child_env()) == ["6"] * 4
    assert pgkit.rows(url, "SELECT value FROM meta WHERE key = 'schema_version'") == [{"value": "6"}]
    assert pgkit.rows(url, "SELECT COUNT(*) AS n FROM meta WHERE key = 'created_at'") == [{"n": 1}]


def test_a_connection_keeps_the_urls_options_and_adds_its_name_timeout_and_keepalives():
    from urllib.parse import parse_qs, urlsplit

    from scalper.ledger import postgres

    url = pgkit.fresh_ledger_url()
    options = parse_qs(urlsplit(url).query)["options"][0].split()   # -csearch_path=<schema> -c…
    schema = next(o.split("=", 1)[1] for o in options if o.startswith("-csearch_path="))
    conn = postgres.connect(LedgerUrl.parse(url), application="scalper-probe")
    try:
        params = conn.raw.info.get_parameters()
        assert params["connect_timeout"] == str(postgres.CONNECT_TIMEOUT_S)
        assert {k: params[k] for k in postgres.KEEPALIVES} == {k: str(v) for k, v in postgres.KEEPALIVES.items()}
        assert conn.raw.execute("SHOW application_name").fetchone()[0] == "scalper-probe"
        assert conn.raw.execute("SHOW search_path").fetchone()[0] == schema   # the URL's own options
    finally:
        conn.close()


# --- the commands on a PostgreSQL ledger, in a real terminal and piped -----------------------------
def test_migrate_then_status_and_check_on_postgresql_in_a_terminal_and_piped(tmp_path):
    from tests.ptykit import in_terminal, piped

    folder = tmp_path / "lite"
    config = write_bots(folder)
    assert engine_at(config, NOW).run_once().exit_code == 0
    url = pgkit.fresh_ledger_url()
    seen = in_terminal("ledger", "migrate", "--config", config, "--to", url, cwd=folder, columns=80)
    assert seen.code == 0 and "Traceback" not in seen.text, seen.text
    assert "orders" in seen.text and "signals" in seen.text, seen.text      # the tables copied, by name

    cfg = yaml.safe_load(config.read_text())
    cfg["ledger"] = url
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    # check: the ledger reached, its schema; the feed is a May 2025 file, stale now: exit 3, said
    for command, code in ((["status"], 0), (["check"], 3)):
        seen = in_terminal(*command, "--config", config, cwd=folder, columns=80)
        assert seen.code == code and "Traceback" not in seen.text, (command, seen.text)
        out = piped(*command, "--config", config, "--json", cwd=folder)
        assert out.code == code and "\x1b" not in out.out, (command, out.out, out.err)
        assert isinstance(json.loads(out.out), dict)
        if command == ["check"]:
            assert "reached (PostgreSQL" in seen.text and "schema v6" in seen.text and "FAIL feed" in seen.text
    status = json.loads(piped("status", "--config", config, "--json", cwd=folder).out)
    text = in_terminal("status", "--config", config, cwd=folder, columns=80).text
    assert [b["open_positions"] for b in status["bots"]] == [2]              # one per account, as on SQLite
    assert all(a["name"] in text for a in status["accounts"]) and "XAUUSDm" in text, text
