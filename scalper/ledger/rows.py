"""What the ledger hands back: one frozen dataclass per kind of record, never a bare dict.

Each row class has exactly its table's columns (times are the stored UTC ISO text); columns
that hold a word of `scalper.vocab` come back as that enum member, which still compares equal
to its text. `from_row` builds one from a cursor row by column name.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Self, TypeVar

from scalper.fleet.hosts import LOCAL
from scalper.vocab import (
    CloseState,
    DecisionAction,
    OrderKind,
    OrderStatus,
    PositionStatus,
    RunStatus,
    Side,
)

R = TypeVar("R", bound="Row")


def fetch(c: sqlite3.Connection, cls: type[R], sql: str, params: Sequence[Any] = ()) -> list[R]:
    """Rows of `cls` read on `c` (inside a transaction: what it sees so far)."""
    cur = c.execute(sql, tuple(params))
    cols = [d[0] for d in cur.description or ()]
    return [cls.from_row(cols, r) for r in cur.fetchall()]


def fetch_one(c: sqlite3.Connection, cls: type[R], sql: str, params: Sequence[Any] = ()) -> R | None:
    found = fetch(c, cls, sql, params)
    return found[0] if found else None


@dataclass(frozen=True)
class Row:
    # column → the vocabulary its stored text belongs to
    _WORDS: ClassVar[dict[str, type[Enum]]] = {}
    _FIELDS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_row(cls, columns: Sequence[str], values: Sequence[Any]) -> Self:
        """A row from a cursor's column names and one fetched tuple (extra columns are ignored)."""
        known = cls._field_names()
        data: dict[str, Any] = {}
        for name, stored in zip(columns, values):
            if name in known:
                data[name] = _as_word(cls._WORDS.get(name), stored)
        return cls(**data)

    @classmethod
    def _field_names(cls) -> frozenset[str]:
        if "_FIELDS" not in cls.__dict__:
            cls._FIELDS = frozenset(f.name for f in dataclasses.fields(cls))
        return cls._FIELDS


def _as_word(word: type[Enum] | None, stored: Any) -> Any:
    """A stored value as its vocabulary's member; a word outside it (a ledger older than the
    CHECK constraints) keeps its text."""
    if word is None or stored is None:
        return stored
    try:
        return word(stored)
    except ValueError:
        return stored


@dataclass(frozen=True)
class RunRow(Row):
    _WORDS: ClassVar[dict[str, type[Enum]]] = {"status": RunStatus}

    id: str
    started_at: str
    as_of: str
    status: RunStatus
    finished_at: str | None = None
    duration_s: float | None = None
    pid: int | None = None
    dry_run: int = 0
    summary: str | None = None
    host: str = LOCAL


@dataclass(frozen=True)
class SignalRow(Row):
    _WORDS: ClassVar[dict[str, type[Enum]]] = {"direction": Side}

    id: int
    dedupe_key: str
    run_id: str | None
    bot: str
    strategy: str
    symbol: str
    bar_time: str
    bar_ts: int
    direction: Side
    entry: float
    sl: float
    tp: float
    score: float
    params: str | None
    created_at: str


@dataclass(frozen=True)
class DecisionRow(Row):
    _WORDS: ClassVar[dict[str, type[Enum]]] = {"action": DecisionAction}

    id: int
    signal_id: int
    run_id: str | None
    bot: str
    action: DecisionAction
    reason: str
    detail: str | None
    created_at: str


@dataclass(frozen=True)
class OrderRow(Row):
    _WORDS: ClassVar[dict[str, type[Enum]]] = {"status": OrderStatus, "kind": OrderKind, "side": Side}

    id: int
    client_order_id: str
    signal_id: int | None
    account_id: int
    bot: str
    kind: OrderKind
    symbol: str
    side: Side
    volume: float
    sl: float | None
    tp: float | None
    magic: int
    position_ticket: int | None
    status: OrderStatus
    attempts: int
    broker_ticket: int | None
    fill_price: float | None
    filled_volume: float | None
    code: int | None
    message: str | None
    run_id: str | None
    created_at: str
    updated_at: str
    reason: str | None = None     # why a close order was sent (CloseCause); None for opens (schema v5)


@dataclass(frozen=True)
class PositionRow(Row):
    _WORDS: ClassVar[dict[str, type[Enum]]] = {"status": PositionStatus, "side": Side,
                                               "close_state": CloseState}

    id: int
    account_id: int
    ticket: int
    order_id: int | None
    signal_id: int | None
    bot: str | None
    strategy: str | None
    symbol: str
    side: Side
    volume: float
    price_open: float
    sl: float | None
    tp: float | None
    initial_sl: float | None
    magic: int | None
    opened_at: str
    status: PositionStatus
    closed_at: str | None
    close_price: float | None
    close_reason: str | None
    profit: float | None
    last_price: float | None
    unrealized: float | None
    adopted: int
    close_state: CloseState | None = None

    @property
    def stop_for_r(self) -> float | None:
        """The stop an R multiple is measured against: the initial one, else the current one."""
        return self.initial_sl if self.initial_sl is not None else self.sl


@dataclass(frozen=True)
class KillSwitchRow(Row):
    bot: str
    engaged: int
    source: str | None
    reason: str | None
    changed_at: str


@dataclass(frozen=True)
class DailyPnlRow(Row):
    day: str
    bot: str
    account_id: int
    realized: float
    trades: int
    wins: int
    losses: int
