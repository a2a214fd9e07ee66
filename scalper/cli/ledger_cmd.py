"""`scalper ledger …`: the ledger's own maintenance (today: moving it into PostgreSQL)."""

from __future__ import annotations

import typer

from scalper.cli import app
from scalper.cli.common import ConfigOpt, JsonOpt, LedgerOpt, emit_json, out_console

ledger_app = typer.Typer(help="The ledger itself: copy it into PostgreSQL (fleet mode).", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("migrate")
def migrate(
    to: str = typer.Option(..., "--to", metavar="URL|PATH",
                           help="The new ledger: postgresql://user@host/db (password from PGPASSWORD, ~/.pgpass or "
                                "a service file, never in the URL)."),
    source: str | None = typer.Option(None, "--from", metavar="PATH|URL",
                                         help="The ledger to copy.  [default: the configured ledger]"),
    replace: bool = typer.Option(False, "--replace", help="Empty the target first if it holds rows "
                                                          "(refused otherwise)."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt, as_json: bool = JsonOpt,
) -> int:
    """Copy a ledger (an SQLite file) into PostgreSQL, verified row by row.

    Every table is copied with its ids in one transaction, then counted and digested on both
    sides; any difference rolls the copy back. Stop the loop, workers and beat first (the copy
    holds both run locks, so a pass cannot write meanwhile). Then point `ledger:` at the URL.
    Exit 0 copied and verified, 2 bad input (non-empty target, same ledger), 1 the copy failed.
    """
    from rich.markup import escape

    from scalper import wiring
    from scalper.services.ledger_migrate import migrate as service

    cfg = wiring.load(config)
    src = wiring.ledger_path(cfg, source or ledger)
    dst = wiring.ledger_path(cfg, to)
    doc = service(cfg, source=src, target=dst, replace=replace)
    if as_json:
        emit_json(doc)
    else:
        con = out_console(False)
        con.print(f"copied {escape(doc['from'])} → {escape(doc['to'])} (schema v{doc['schema_version']}), "
                  f"verified row by row:", highlight=False)
        for t in doc["tables"]:
            con.print(f"  {t['table']:<15} {t['rows']:>9,} rows  sha256 {t['digest'][:16]}", highlight=False)
        con.print(f"{doc['rows']:,} rows in all; now set `ledger: {escape(doc['to'])}` in bots.yaml "
                  "(the password stays in PGPASSWORD, ~/.pgpass or a service file)", highlight=False)
    return 0
