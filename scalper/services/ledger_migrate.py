"""`scalper ledger migrate`: copy a ledger into another engine (an SQLite file into PostgreSQL),
verified row by row (count and content digest per table), or refuse and change nothing."""

from __future__ import annotations

from typing import Any

from scalper.errors import BadInput, LedgerError


def migrate(cfg: Any, *, source: Any, target: Any, replace: bool = False) -> dict[str, Any]:
    """Copy `source` into `target` (each a Path or a postgres.LedgerUrl). Both run locks are held
    (no pass writes either side meanwhile); the target is created at the current schema version
    and must hold no rows unless `replace`. Returns the per-table report; raises on any mismatch."""
    from scalper.ledger import Ledger, ledger_exists, run_lock
    from scalper.ledger.copy import CopyMismatch, copy_ledger, is_empty, verify

    if str(source) == str(target):
        raise BadInput("--from and --to name the same ledger", where="--to", fix="name the new ledger with --to")
    if not ledger_exists(source):
        raise BadInput(f"no ledger at {source}", where="--from", fix="point --from (or --ledger) at the ledger to copy")
    with run_lock(source, holder="ledger migrate", wait_s=5.0), \
            run_lock(target, holder="ledger migrate", wait_s=5.0), \
            Ledger(source) as src, Ledger(target) as dst:   # both at this scalper's schema version
        held = is_empty(dst.conn)
        if held and not replace:
            listed = ", ".join(f"{t} ({n})" for t, n in held[:4])
            raise BadInput(f"the target {target} already holds rows: {listed}; nothing was copied",
                           where="--to", fix="choose an empty database (or schema), or pass --replace to "
                                             "discard what it holds")
        try:
            tables = copy_ledger(src.conn, dst.conn)
        except CopyMismatch as exc:
            raise LedgerError(f"the copy into {target} did not verify: {exc}") from None
        again = verify(src.conn, dst.conn)   # read back after the commit, both sides
        bad = [t for t, a, b, same in again if a != b or not same]
        if bad:
            raise LedgerError(f"after the copy, {target} differs from {source} in {', '.join(bad)}; "
                              "rerun with --replace")
        version = dst.schema_version()
    return {"ok": True, "from": str(source), "to": str(target), "schema_version": version,
            "replaced": bool(held), "tables": [{"table": t.table, "rows": t.rows, "digest": t.digest}
                                                for t in tables],
            "rows": sum(t.rows for t in tables)}
