"""The fleet's books in the ledger (named operations; rows of `engine_state` and `audit`, no new table).

- A pass slot per host: `fleet_slot|<host>` holds the last interval slot a pass of that host
  claimed. Claiming is one atomic statement (an insert that does nothing on conflict, or an
  update guarded by `value < slot`), so two beats, or two workers for one host started by
  mistake, give one pass per host per slot on SQLite and PostgreSQL alike.
- Operator requests per host: `fleet_request|<id>|<host>` holds what the host must do (close the
  positions of kill-switched bots, or the positions a rollback named) and, once done, when the
  host confirmed. `reason` is `pending` or `confirmed`.
"""

from __future__ import annotations

import json
from typing import Any

from scalper.clock import iso
from scalper.vocab import RequestStatus

SLOT_PREFIX = "fleet_slot|"
REQUEST_PREFIX = "fleet_request|"


def _request_key(request_id: str, host: str) -> str:
    return f"{REQUEST_PREFIX}{request_id}|{host}"


def claim_slot(ledger: Any, host: str, slot: int, now: float, *, detail: dict[str, Any]) -> bool:
    """Claim `slot` for a pass of `host`: True once per (host, slot) for the whole fleet, and only
    for a slot later than the last one claimed (a late duplicate never runs an older slot).
    The claim and its audit row are one transaction."""
    key = SLOT_PREFIX + host
    with ledger.tx() as c:
        won = c.execute("INSERT INTO engine_state (key, value, reason, updated_at) VALUES (?, ?, 'slot', ?) "
                        "ON CONFLICT (key) DO NOTHING", (key, str(slot), iso(now))).rowcount == 1
        if not won:
            won = c.execute("UPDATE engine_state SET value = ?, updated_at = ? WHERE key = ? "
                            "AND CAST(value AS INTEGER) < ?", (str(slot), iso(now), key, slot)).rowcount == 1
        kind = "fleet_pass" if won else "fleet_pass_dropped"
        message = (f"host {host}: pass for slot {slot} started" if won else
                   f"host {host}: pass for slot {slot} dropped (that slot, or a later one, already had its pass)")
        ledger.audit(c, now, kind, message, data={"host": host, "slot": slot, **detail})
    return won


def record_pass_end(ledger: Any, host: str, slot: int, now: float, detail: dict[str, Any]) -> None:
    with ledger.tx() as c:
        ledger.audit(c, now, "fleet_pass_end", f"host {host}: pass for slot {slot} ended",
                     run_id=detail.get("run_id"), data={"host": host, "slot": slot, **detail})


def add_request(ledger: Any, c: Any, request_id: str, host: str, doc: dict[str, Any], now: float) -> None:
    """Inside the caller's transaction: ask `host` to do `doc` (kind, bots, positions)."""
    value = {**doc, "request": request_id, "host": host, "requested_at": iso(now), "confirmed_at": None}
    ledger.set_state(c, _request_key(request_id, host), json.dumps(value, sort_keys=True), now,
                     RequestStatus.PENDING)


def requests(ledger: Any, *, host: str | None = None, pending_only: bool = True) -> list[dict[str, Any]]:
    """Operator requests, oldest first; of one host, or of every host."""
    sql = "SELECT value FROM engine_state WHERE key LIKE ?" + (" AND reason = ?" if pending_only else "")
    params: tuple = (REQUEST_PREFIX + "%",) + ((RequestStatus.PENDING.value,) if pending_only else ())
    rows = [json.loads(r["value"]) for r in ledger.query(sql, params)]
    return sorted((r for r in rows if host is None or r["host"] == host), key=lambda r: (r["requested_at"],
                                                                                       r["request"]))


def update_request(ledger: Any, c: Any, request: dict[str, Any], now: float, *, confirmed: bool,
                   **fields: Any) -> None:
    value = {**request, **fields, "updated_at": iso(now)}
    if confirmed:
        value["confirmed_at"] = iso(now)
    ledger.set_state(c, _request_key(request["request"], request["host"]), json.dumps(value, sort_keys=True), now,
                     RequestStatus.CONFIRMED if confirmed else RequestStatus.PENDING)
