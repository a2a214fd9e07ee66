"""The real PostgreSQL server for the fleet tests: one database per test session
(`scalper_t_<random>`, dropped at the end: other suites use the same server at the same time),
one schema per ledger inside it (a fresh ledger costs a CREATE SCHEMA, not a CREATE DATABASE).

The server is SCALPER_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test, trust
auth). When it cannot be reached the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

ADMIN_URL = os.environ.get("SCALPER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ENGINES = ("sqlite", "postgresql")

# The suite's durability switch for PostgreSQL (as tests/conftest.py's for SQLite): a commit
# returns before the server's WAL reaches the disk. What it gives up is only a server crash or a
# power cut losing the last commits; a client killed after COMMIT returned loses nothing either
# way, and that is what the crash tests kill. fsync per commit was most of these tests' wall time.
SYNCHRONOUS_COMMIT = "off"

MAX_READERS = 3   # read connections kept open (the latest ledgers a test reads)

_state: dict[str, Any] = {}


def unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here (None: they can)."""
    if "why" not in _state:
        try:
            import psycopg
        except ImportError:
            _state["why"] = "psycopg is not installed (pip install '.[fleet]')"
            return _state["why"]
        try:
            with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as c:
                c.execute("SELECT 1")
            _state["why"] = None
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _state["why"] = f"PostgreSQL is not reachable at {ADMIN_URL} ({first})"
    return _state["why"]


def require() -> None:
    why = unavailable()
    if why:
        pytest.skip(f"needs PostgreSQL: {why}")


def _with_database(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, ""))


def session_database() -> str:
    """The URL of this session's database, created on first use."""
    require()
    if "db" not in _state:
        import psycopg

        name = f"scalper_t_{secrets.token_hex(5)}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
        _state["db"] = _with_database(ADMIN_URL, name)
        _state["db_name"] = name
    return _state["db"]


def drop_session_database() -> None:
    for conn in _state.pop("readers", {}).values():
        conn.close()
    name = _state.pop("db_name", None)
    _state.pop("db", None)
    if name is None:
        return
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fresh_ledger_url() -> str:
    """A new, empty schema in the session database, as a ledger URL (search_path set to it)."""
    import psycopg

    base = session_database()
    schema = f"l_{secrets.token_hex(6)}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if urlsplit(base).query else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema} -csynchronous_commit={SYNCHRONOUS_COMMIT}')}"


def is_url(location: object) -> bool:
    return str(location).startswith("postgresql://")


def ledger_of(folder: Path) -> Any:
    """The ledger a test folder's bots.yaml names: its file, or its PostgreSQL schema (a LedgerUrl)."""
    import yaml

    from scalper.ledger.postgres import LedgerUrl

    config = folder / "bots.yaml"
    chosen = yaml.safe_load(config.read_text()).get("ledger", "ledger.db") if config.exists() else "ledger.db"
    return LedgerUrl.parse(chosen) if is_url(chosen) else folder / chosen


def rows(location: Any, sql: str, params: Any = ()) -> list[dict]:
    """Rows of a ledger (a file, or a PostgreSQL URL) or a paper broker's file, as dicts."""
    from tests.enginekit import rows as file_rows

    if not is_url(location):
        return file_rows(Path(location), sql, params)
    cur = _reader(location).execute(sql, params)
    cols = [d[0] for d in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def has_ledger(location: Any) -> bool:
    """Has the PostgreSQL ledger at `location` been created yet (its `meta` table)?"""
    return "meta" in _reader(location).table_names()


def _reader(location: Any) -> Any:
    """One read-only connection per ledger for the whole session (a check after every step of the
    model test would otherwise open hundreds); autocommit, so every read sees the latest commits."""
    from scalper.ledger import postgres

    where = location if isinstance(location, postgres.LedgerUrl) else postgres.LedgerUrl.parse(str(location))
    readers = _state.setdefault("readers", {})
    if where.url not in readers:
        while len(readers) >= MAX_READERS:   # the server's connections are shared with other suites
            readers.pop(next(iter(readers))).close()
        readers[where.url] = postgres.connect(where, readonly=True, application="scalper tests")
    return readers[where.url]


def clone_ledger(location: Any) -> Any:
    """A copy of a PostgreSQL ledger in a new schema (a test's `copytree` of a crashed folder)."""
    from scalper.ledger import Ledger
    from scalper.ledger.copy import copy_ledger
    from scalper.ledger.postgres import LedgerUrl

    url = LedgerUrl.parse(fresh_ledger_url())
    with Ledger(location, readonly=True) as source, Ledger(url) as target:
        copy_ledger(source.conn, target.conn)
    return url
