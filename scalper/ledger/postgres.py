"""The PostgreSQL engine for the ledger: a `postgresql://` URL instead of a file.

The ledger's SQL is written once, in the dialect SQLite reads. This module adapts it at the
connection level: `connect()` returns a connection with the sqlite3 interface the ledger uses
(`execute` → cursor with `fetchone`/`fetchall`/`description`/`lastrowid`/`rowcount`, explicit
BEGIN/COMMIT/ROLLBACK), and rewrites each statement once (cached) on its way to the server:

- `?` and `:name` placeholders → `%s` / `%(name)s` (a literal `%` → `%%`);
- `INSERT OR IGNORE` → `ON CONFLICT DO NOTHING`; `INSERT OR REPLACE` → `ON CONFLICT (primary
  key) DO UPDATE` (the key read from the catalog once per table);
- an INSERT gets `RETURNING` its table's identity column (`id`, or the hidden rowid): `lastrowid`;
- `GROUP_CONCAT(x)` → `string_agg(x::text, ',')`, `LIKE` → `ILIKE` (SQLite's LIKE ignores ASCII case),
  `json_extract(x, '$.a')` → `x::jsonb #>> '{a}'` (text: cast it where a number is compared),
  `CAST(… AS INTEGER/REAL)` → BIGINT / DOUBLE PRECISION;
- `PRAGMA foreign_keys` / `foreign_key_check` (a table rebuild's) are no-ops: PostgreSQL checks
  foreign keys at every statement; `DROP TABLE` in a rebuild cascades to the referring constraints;
- DDL types: `INTEGER PRIMARY KEY` → an identity column, `INTEGER` → BIGINT (tickets and
  account numbers outgrow 32 bits), `REAL` → DOUBLE PRECISION, `TEXT` → `TEXT COLLATE "C"`
  (SQLite compares text byte by byte; so does the C collation, whatever the server's locale);
- a table without an integer key (`runs`) gets the hidden `rowid` SQLite gives every table, as an
  identity column that `SELECT *` does not return (the alert cursor and "the last run" use it).

A write transaction (`BEGIN IMMEDIATE`) takes a transaction-scoped advisory lock first
(`pg_advisory_xact_lock`), so writers are serialised fleet-wide exactly as SQLite serialises
them on one machine: a check-then-insert inside one transaction cannot race, and every
statement after the lock sees every earlier commit (READ COMMITTED takes a new snapshot per
statement). The unique keys stay the backstop. Reads run outside transactions (autocommit).

Why psycopg 3 directly and not SQLAlchemy Core: the ledger's statements already exist as SQL
text shared with SQLite, and what differs between the engines is a handful of spellings that a
connection wrapper rewrites in one place. Core would mean re-expressing every statement as
expression objects (a rewrite of all of them, for both engines) or passing text() through it
anyway (then it adds only an import of ~100 ms to a command that starts every 45 s, and a
second abstraction over the connection whose sessions and pools the ledger does not want: one
connection per command, and session advisory locks that must live on a connection we hold).
psycopg 3 is the maintained PostgreSQL driver under both, with libpq's own handling of
PGPASSWORD, ~/.pgpass and service files — which is where the credentials must come from.

psycopg is imported only when a PostgreSQL ledger is opened: the SQLite default never pays for it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from scalper.errors import ConfigError, LedgerError

SCHEMES = ("postgresql://", "postgres://")
ENGINE = "postgresql"
CREDENTIALS_FIX = ("keep the password out of the URL: put it in the PGPASSWORD environment variable, in ~/.pgpass, "
                   "or in a service file (ledger: postgresql:///?service=scalper with ~/.pg_service.conf)")
# Connection parameters that carry secrets: never accepted in a URL we are given, never shown.
_SECRET_PARAMS = ("password", "sslpassword")
CONNECT_TIMEOUT_S = 10
# TCP keepalives, so that a peer that vanishes (power cut, network gone) is noticed in about a minute
# rather than the OS default of hours: on our side (libpq's parameters: a dead server fails the
# pass), and on the server's for the connection holding a lock (`server_keepalives`: the server
# frees a vanished holder's lock).
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def is_url(value: object) -> bool:
    return isinstance(value, LedgerUrl) or (isinstance(value, str) and value.startswith(SCHEMES))


@dataclass(frozen=True)
class LedgerUrl:
    """Where a PostgreSQL ledger is: the URL to connect with, shown masked everywhere.

    `str()` is the display form (user, host, port, database, service; never a password), so
    messages, `status` and `--json` can print it as they print a file path."""

    url: str
    display: str = field(default="", compare=False)

    @classmethod
    def parse(cls, value: str, *, where: str = "ledger") -> LedgerUrl:
        """The URL, or ConfigError when it carries a password (say where to put it instead)."""
        parts = urlsplit(value)
        query = dict(parse_qsl(parts.query))
        if parts.password is not None or any(k in query for k in _SECRET_PARAMS):
            raise ConfigError(f"the ledger URL {mask(value)} carries a password", where=where, fix=CREDENTIALS_FIX)
        return cls(value, mask(value))

    def __str__(self) -> str:
        return self.display or mask(self.url)

    def __fspath__(self) -> str:   # pragma: no cover - a URL is not a file: fail loudly if treated as one
        raise TypeError(f"{self} is a PostgreSQL ledger, not a file path")

    @property
    def name(self) -> str:
        return str(self)

    def exists(self) -> bool:
        """Does this database hold a ledger (a schema version)? Unreachable counts as yes, so that
        opening it says why it cannot be reached rather than "no ledger yet"."""
        try:
            conn = connect(self, readonly=True)
        except sqlite3.Error:
            return True
        try:
            return bool(conn.table_names() & {"meta"})
        except sqlite3.Error:
            return True
        finally:
            conn.close()


def mask(url: str) -> str:
    """The URL without any password (in the netloc or the query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unparsable URL)"
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{user}:***@{host}"
    query = "&".join(f"{k}=***" if k in _SECRET_PARAMS else f"{k}={v}" for k, v in parse_qsl(parts.query))
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def refuse_foreign(conn: PgConnection) -> None:
    """A database (schema) with tables but no ledger version belongs to something else: never
    build a ledger among them (create a database for the ledger, or name a schema in the URL)."""
    from scalper.errors import NotALedger

    tables = sorted(conn.table_names())
    if "meta" in tables:
        return   # another process created the ledger since we looked: the migration re-reads the version
    if tables:
        raise NotALedger(f"{conn.where} holds the tables {', '.join(tables[:5])}{', …' if len(tables) > 5 else ''} "
                         "and no scalper ledger; it was left untouched", where="ledger",
                         fix="give the ledger a database of its own (createdb scalper), or choose a schema "
                             "with ?options=-csearch_path%3Dscalper")


def check_database(where: LedgerUrl) -> tuple[bool, str]:
    """For `scalper check`: reach the server, log in, read the schema version. (ok, one line),
    the line naming where the password came from (never the password)."""
    from scalper.ledger.schema import SCHEMA_VERSION, SchemaError, current_version

    try:
        conn = connect(where, readonly=True, application="scalper check")
    except (sqlite3.Error, LedgerError) as exc:
        return False, str(exc)
    try:
        info = conn.raw.info
        server = f"PostgreSQL {info.server_version // 10000}.{info.server_version % 10000}"
        login = f"as {info.user}" + (f" ({_password_source()})" if info.password else "")
        try:
            version = current_version(conn)
        except SchemaError as exc:
            return False, f"{where}: reached ({server}, {login}); the ledger {exc}"
        if version == 0:
            can = conn.execute("SELECT has_database_privilege(current_database(), 'CREATE') AND "
                               "has_schema_privilege(current_schema(), 'CREATE')").fetchone()
            if not (can and can[0]):
                return False, (f"{where}: reached ({server}, {login}); no ledger yet, and this user may not "
                               "create its tables — GRANT CREATE, or use the database's owner")
            return True, f"{where}: reached ({server}, {login}); no ledger yet: the first run-once creates it"
        detail = f"{where}: reached ({server}, {login}); schema v{version}"
        if version < SCHEMA_VERSION:
            detail += f" (will be migrated to v{SCHEMA_VERSION} on the next run, in one transaction)"
        if version > SCHEMA_VERSION:
            return False, detail + f" is newer than this scalper (v{SCHEMA_VERSION}): upgrade scalper"
        return True, detail
    except sqlite3.Error as exc:
        return False, str(exc)
    finally:
        conn.close()


def _password_source() -> str:
    """Where libpq found the password: named, never shown."""
    if os.environ.get("PGPASSWORD"):
        return "password from PGPASSWORD"
    if os.environ.get("PGSERVICE") or "service=" in os.environ.get("SCALPER_LEDGER", ""):
        return "password from the service file or ~/.pgpass"
    return "password from ~/.pgpass" if not os.environ.get("PGPASSFILE") else "password from $PGPASSFILE"


# --- errors: the sqlite3 vocabulary, with a message that says what to do ---------------------------
class PgError(sqlite3.DatabaseError):
    """A PostgreSQL failure, in the sqlite3 exception hierarchy the ledger already handles.
    `explained` is the whole message for the user (the ledger's own explainer uses it as is)."""

    explained = True


class PgIntegrityError(sqlite3.IntegrityError):
    explained = True


def _translate_error(exc: BaseException, where: LedgerUrl) -> sqlite3.Error:
    import psycopg

    text = _secretless(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    if isinstance(exc, psycopg.errors.IntegrityError):
        return PgIntegrityError(f"the ledger {where}: {text}")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return PgError(f"the ledger {where} cannot be written ({text}); grant the ledger's user the rights it "
                       "needs (ALTER DEFAULT PRIVILEGES / GRANT), or use its owner")
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return PgError(f"the ledger {where} is read-only here ({text})")
    if isinstance(exc, psycopg.errors.DiskFull):
        return PgError(f"the disk holding the ledger {where} is full ({text}); free space on the database server")
    if isinstance(exc, psycopg.OperationalError):
        low = text.lower()
        if "password" in low or "authentication" in low:
            return PgError(f"cannot log in to the ledger {where} ({text}); {CREDENTIALS_FIX}")
        if "does not exist" in low:
            return PgError(f"cannot open the ledger {where} ({text}); create the database first "
                           "(createdb), or fix the URL")
        return PgError(f"cannot reach the ledger {where} ({text}); check the server is running and the URL")
    return PgError(f"the ledger {where}: {text}")


_PASSWORD_RE = re.compile(r"(password\s*=\s*)(\S+)", re.IGNORECASE)
_URL_PASSWORD_RE = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]+)(@)")


def _secretless(text: str) -> str:
    """A server or driver message with any password in it masked (libpq echoes connection strings)."""
    return _URL_PASSWORD_RE.sub(r"\1***\3", _PASSWORD_RE.sub(r"\1***", text))


# --- statement rewriting -----------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*)|(\?)|(?<!:):([A-Za-z_]\w*)|(%)""")


def _placeholders(sql: str) -> str:
    """`?` → %s, `:name` → %(name)s, `%` → %%, leaving string literals and identifiers alone."""
    def sub(m: re.Match[str]) -> str:
        if m.group(1) or m.group(2):
            return m.group(0).replace("%", "%%")
        if m.group(3):
            return ""
        if m.group(4):
            return "%s"
        if m.group(5):
            return f"%({m.group(5)})s"
        return "%%"
    return _TOKEN_RE.sub(sub, sql)


def _outside_literals(sql: str, fn: Any) -> str:
    """Apply fn to the parts of sql outside string literals."""
    parts = re.split(r"('(?:[^']|'')*')", sql)
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(parts))


# A column's type: the word after the column's name at the start of its definition.
_COLUMN_TYPE_RE = re.compile(r"((?:^|[(,]|\bADD\s+COLUMN)\s*\w+\s+)(INTEGER\s+PRIMARY\s+KEY|INTEGER|REAL|TEXT)\b",
                             re.I | re.M)
_PG_TYPES = {"INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION", "TEXT": 'TEXT COLLATE "C"'}


def _column_type(m: re.Match[str]) -> str:
    kind = " ".join(m.group(2).upper().split())
    if kind == "INTEGER PRIMARY KEY":
        return m.group(1) + "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    return m.group(1) + _PG_TYPES[kind]


_CREATE_TABLE_RE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(", re.I)
_HIDDEN_ROWID = "rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE"


def ddl(statement: str) -> str:
    """A CREATE/ALTER statement of the schema, in PostgreSQL's types. A table without an integer
    primary key gets SQLite's implicit rowid as a real column (see the module docstring)."""
    out = _outside_literals(statement, lambda part: _COLUMN_TYPE_RE.sub(_column_type, part))
    # A rebuild (new table, copy, DROP, rename) drops a table others refer to: SQLite does so with
    # foreign keys off; PostgreSQL drops the referring constraints (never rows), which the rebuilt
    # tables declare again.
    out = _DROP_TABLE_RE.sub(r"\1 CASCADE", out)
    m = _CREATE_TABLE_RE.match(out)
    if m and not re.search(r"\bid\s+BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", out):
        out = out[:m.end()] + _HIDDEN_ROWID + ", " + out[m.end():]
    return out


_DROP_TABLE_RE = re.compile(r"^(\s*DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?\w+)\s*(?=;?\s*$)", re.I)
_JSON_EXTRACT_RE = re.compile(r"\bjson_extract\(([^(),]+),\s*'\$\.([\w.]+)'\)", re.I)
_CAST_TYPE_RE = re.compile(r"\bAS\s+(INTEGER|REAL)\b", re.I)
_SELECT_LIST_RE = re.compile(r"^\s*SELECT\b(.*?)\bFROM\b", re.I | re.S)
_INSERT_RE = re.compile(r"^\s*INSERT\s+(OR\s+(IGNORE|REPLACE)\s+)?INTO\s+(\w+)\s*(\(([^)]*)\))?", re.I | re.S)
_DDL_RE = re.compile(r"^\s*(CREATE|ALTER|DROP)\b", re.I)
_GROUP_CONCAT_RE = re.compile(r"\bGROUP_CONCAT\(([^()]*)\)", re.I)
_LIKE_RE = re.compile(r"\bLIKE\b", re.I)


@dataclass(frozen=True)
class _Plan:
    sql: str                   # what the server runs
    returns_id: bool           # RETURNING id was added: lastrowid comes from the first row
    hide_rowid: bool           # `SELECT *` may include the hidden rowid column: drop it


class _Catalog:
    """What the rewriter needs to know about a table (asked once per connection and table)."""

    def __init__(self, raw: Any):
        self._raw = raw
        self._columns: dict[str, list[str]] = {}
        self._keys: dict[str, list[str]] = {}
        self._identity: dict[str, list[str]] = {}

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            rows = self._raw.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum", (table,)).fetchall()
            self._columns[table] = [r[0] for r in rows]
        return self._columns[table]

    def primary_key(self, table: str) -> list[str]:
        if table not in self._keys:
            rows = self._raw.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
                (table,)).fetchall()
            self._keys[table] = [r[0] for r in rows]
        return self._keys[table]

    def identity_columns(self, table: str) -> list[str]:
        if table not in self._identity:
            rows = self._raw.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                                     "AND attidentity <> '' ORDER BY attnum", (table,)).fetchall()
            self._identity[table] = [r[0] for r in rows]
        return self._identity[table]

    def forget(self) -> None:
        self._columns.clear()
        self._keys.clear()
        self._identity.clear()


def _dml(sql: str) -> str:
    """SQLite's spellings in a query, PostgreSQL's (outside string literals)."""
    def part(p: str) -> str:
        p = _GROUP_CONCAT_RE.sub(r"string_agg(CAST(\1 AS TEXT), ',')", p)
        p = _LIKE_RE.sub("ILIKE", p)
        p = _CAST_TYPE_RE.sub(lambda m: "AS " + _PG_TYPES[m.group(1).upper()].split(" COLLATE")[0], p)
        return p
    text = _JSON_EXTRACT_RE.sub(lambda m: f"(CAST({m.group(1)} AS jsonb) #>> '{{{m.group(2).replace('.', ',')}}}')",
                                sql)
    return _outside_literals(text, part)


def _plan(sql: str, catalog: _Catalog) -> _Plan:
    if _DDL_RE.match(sql):
        return _Plan(_placeholders(ddl(sql)), False, False)
    text = _dml(sql)
    returns_id = False
    m = _INSERT_RE.match(text)
    if m:
        mode, table, cols = (m.group(2) or "").upper(), m.group(3), m.group(5)
        text = text[:m.start(1)] + text[m.end(1):] if m.group(1) else text
        text = text.rstrip().rstrip(";")
        has_returning = re.search(r"\bRETURNING\b", text, re.I) is not None
        tail = ""
        if mode == "IGNORE":
            tail = " ON CONFLICT DO NOTHING"
        elif mode == "REPLACE":
            key = catalog.primary_key(table)
            names = [c.strip() for c in (cols or "").split(",") if c.strip()] or catalog.columns(table)
            rest = [c for c in names if c not in key]
            tail = f" ON CONFLICT ({', '.join(key)}) " + (
                f"DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in rest)}" if rest else "DO NOTHING")
        if tail and has_returning:
            i = re.search(r"\bRETURNING\b", text, re.I).start()  # type: ignore[union-attr]
            text = text[:i] + tail.strip() + " " + text[i:]
        else:
            text += tail
        identity = catalog.identity_columns(table)   # `id`, or the hidden rowid: what SQLite's lastrowid is
        if not has_returning and identity:
            text += f" RETURNING {identity[0]}"
            returns_id = True
    listed = _SELECT_LIST_RE.match(sql)   # `SELECT *` never shows the rowid; `SELECT rowid, …` does
    hide = not m and "*" in text and not (listed and re.search(r"\browid\b", listed.group(1), re.I))
    return _Plan(_placeholders(text), returns_id, hide)


# --- the connection ----------------------------------------------------------------------------------
WRITE_LOCK_KEY = "scalper.ledger.write"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, from a name (same on every machine)."""
    import hashlib
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class Cursor:
    """The sqlite3 cursor subset the ledger uses."""

    def __init__(self, rows: list[tuple], description: list[tuple] | None, rowcount: int,
                 lastrowid: int | None):
        self._rows = rows
        self._i = 0
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> tuple | None:
        if self._i >= len(self._rows):
            return None
        self._i += 1
        return self._rows[self._i - 1]

    def fetchall(self) -> list[tuple]:
        rest = self._rows[self._i:]
        self._i = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.fetchall())


def _param(v: Any) -> Any:
    return int(v) if isinstance(v, bool) else v   # SQLite stores a bool as 0/1; BIGINT columns take ints


class PgConnection:
    """A psycopg 3 connection speaking the sqlite3 interface the ledger is written against."""

    engine = ENGINE

    def __init__(self, raw: Any, where: LedgerUrl):
        self.raw = raw
        self.where = where
        self.catalog = _Catalog(raw)
        self._plans: dict[str, _Plan] = {}

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        import psycopg

        head = sql.strip().rstrip(";").upper()
        if head.startswith("PRAGMA"):
            return self._pragma(head)
        try:
            if head in ("BEGIN", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE", "BEGIN DEFERRED"):
                self.raw.execute("BEGIN")
                if head != "BEGIN DEFERRED":
                    self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(WRITE_LOCK_KEY),))
                return Cursor([], None, -1, None)
            if head in ("COMMIT", "ROLLBACK", "END"):
                self.raw.execute(head)
                return Cursor([], None, -1, None)
            plan = self._plans.get(sql)
            if plan is None:
                plan = self._plans[sql] = _plan(sql, self.catalog)
            args: Any = ({k: _param(v) for k, v in params.items()} if isinstance(params, dict)
                         else tuple(_param(v) for v in params))
            cur = self.raw.execute(plan.sql, args)
            if _DDL_RE.match(sql):
                self.catalog.forget()
                self._plans.clear()
            rows = cur.fetchall() if cur.description is not None else []
            desc = [(c.name, None, None, None, None, None, None) for c in cur.description or ()]
            if plan.hide_rowid and any(d[0] == "rowid" for d in desc):
                keep = [i for i, d in enumerate(desc) if d[0] != "rowid"]
                desc = [desc[i] for i in keep]
                rows = [tuple(r[i] for i in keep) for r in rows]
            lastrowid = None
            if plan.returns_id:
                lastrowid = rows[0][0] if rows else None
                rows, desc = [], []
            return Cursor(rows, desc or None, cur.rowcount, lastrowid)
        except psycopg.Error as exc:
            raise _translate_error(exc, self.where) from exc

    def _pragma(self, head: str) -> Cursor:
        """SQLite's switches: PostgreSQL always enforces foreign keys (at each statement), so turning
        them off for a rebuild is a no-op and the check after it finds nothing. Others are SQLite's own."""
        words = head.replace(" ", "")
        if words.startswith("PRAGMAFOREIGN_KEYS="):
            return Cursor([], None, -1, None)
        if words == "PRAGMAFOREIGN_KEY_CHECK":
            return Cursor([], [("table", None, None, None, None, None, None)], 0, None)
        raise PgError(f"the ledger {self.where}: {head.split()[1] if len(head.split()) > 1 else head} is an "
                      "SQLite PRAGMA; PostgreSQL has no equivalent")

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Plain INSERTs in bulk (the copy into a PostgreSQL ledger): one round trip per batch."""
        import psycopg

        try:
            with self.raw.cursor() as cur:
                cur.executemany(_placeholders(sql), [tuple(_param(v) for v in r) for r in rows])
        except psycopg.Error as exc:
            raise _translate_error(exc, self.where) from exc

    def table_names(self) -> set[str]:
        # pg_class, not information_schema: its views cost ~5 ms a query, on every open
        return {r[0] for r in self.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace(current_schema()) "
            "AND relkind IN ('r', 'p')").fetchall()}

    def close(self) -> None:
        with contextlib.suppress(Exception):   # closing a broken connection: nothing left to do
            self.raw.close()


def connect(where: LedgerUrl, *, readonly: bool = False, application: str = "scalper") -> PgConnection:
    """A connection to the ledger's database: autocommit (transactions are explicit), numeric sums
    read as Python numbers, read-only sessions for readers. Credentials come from libpq's
    environment (PGPASSWORD…), ~/.pgpass or a service file, never from us."""
    try:
        import psycopg
        from psycopg.conninfo import make_conninfo
    except ImportError:
        raise LedgerError(f"the ledger {where} is a PostgreSQL database, and psycopg is not installed; "
                          "install it from the scalper checkout: pip install '.[fleet]'"
                          ) from None
    try:
        # The libpq parameters go through make_conninfo, whose **kwargs are typed as connection parameters
        # (connect()'s own keywords would otherwise claim the dict's values in the type check).
        conninfo = make_conninfo(where.url, connect_timeout=CONNECT_TIMEOUT_S, application_name=application[:63],
                                 **KEEPALIVES)
        raw = psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise _translate_error(exc, where) from None
    _number_loaders(raw)
    if readonly:
        raw.execute("SET default_transaction_read_only = on")
    return PgConnection(raw, where)


def server_keepalives(conn: PgConnection) -> None:
    """Ask the server to probe this connection as we probe it (user-settable, per session)."""
    for name in ("idle", "interval", "count"):
        conn.raw.execute(f"SET tcp_keepalives_{name} = {KEEPALIVES['keepalives_' + name]}")


def _number_loaders(raw: Any) -> None:
    """NUMERIC (what SUM and AVG of BIGINT return) as int or float, as SQLite returns them."""
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        def load(self, data: Any) -> Any:
            text = bytes(data).decode()
            try:
                return int(text)
            except ValueError:
                return float(text)

    raw.adapters.register_loader("numeric", NumberLoader)


