"""`scalper notify test`: is every alert target reachable?"""

from __future__ import annotations

import typer

from scalper.cli.common import ConfigOpt, JsonOpt, LedgerOpt, emit_json, out_console
from scalper.cli.typer_app import app

notify_app = typer.Typer(help="Alerts (`notify:` in bots.yaml): try the targets.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("test")
def notify_test(
    target: str | None = typer.Option(None, "--target", help="Only this target (its `name:`, or its url_env)."),
    config: str | None = ConfigOpt, ledger: str | None = LedgerOpt, as_json: bool = JsonOpt,
) -> int:
    """Send a test message to every alert target and say which worked.

    The URLs come from the environment variables the targets name (`url_env`); they are
    never printed. Exit 0 when every target got it, 3 when one did not.
    """
    from rich.markup import escape

    from scalper import wiring
    from scalper.services.notify import send_test

    cfg = wiring.load(config)
    doc = send_test(cfg, target=target)
    if as_json:
        emit_json(doc)
    else:
        con = out_console(False)
        for t in doc["targets"]:
            mark = "[green]ok[/]  " if t["ok"] else "[red]FAIL[/]"
            con.print(f"{mark} {escape(t['target'])}: {escape(t['detail'])}", highlight=False)
    return doc["exit_code"]
