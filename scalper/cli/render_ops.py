"""Terminal rendering of the operator commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalper.cli.render import esc

if TYPE_CHECKING:  # rich is imported when something is drawn, not at start-up
    from rich.console import Console


def status(con: Console, d: dict) -> None:
    from rich.table import Table

    state = "[bold red]PAUSED[/] (" + esc(d["pause_reason"] or "") + ")" if d["paused"] else "[green]running[/]"
    con.print(f"engine: {state}")
    con.print(f"config: {esc(d['config'])}   ledger: {esc(d['ledger'])}")
    last = d["last_run"]
    if last:
        con.print(f"last run: {last['started_at']}  {(last['duration_s'] or 0) * 1000:.0f} ms  {last['status']}")
    else:
        con.print("last run: none yet")
    # fits 80 columns: names never wrap, the state columns are short words
    t = Table(show_edge=False, pad_edge=False)
    t.add_column("bot", no_wrap=True)
    t.add_column("symbol", no_wrap=True)
    t.add_column("mode")
    t.add_column("orders")
    t.add_column("kill-switch")
    t.add_column("open", justify="right")
    t.add_column("P&L open", justify="right")
    for b in d["bots"]:
        ks = b["kill_switch"]
        t.add_row(esc(b["bot"]), esc(b["symbol"]), b["engine_mode"] if b["enabled"] else "disabled",
                  "sent" if b["auto_trade"] else "off",
                  f"[red]engaged[/] ({ks['source']})" if ks["engaged"] else "off",
                  str(b["open_positions"]), f"{b['unrealized']:,.2f}")
    con.print(t)
    if d["open_positions"]:
        con.print(f"open positions: {len(d['open_positions'])}")
        for r in d["open_positions"]:
            con.print(f"  {esc(r['bot'])} acct {r['account_id']} #{r['ticket']} {r['side']} {r['volume']} "
                      f"{esc(r['symbol'])} @ {r['price_open']}  sl {r['sl']}  tp {r['tp']}  "
                      f"P&L {r['unrealized'] or 0:,.2f}")


def kill_switch(con: Console, d: dict) -> None:
    from rich.table import Table

    if d["action"] == "status":
        t = Table(show_edge=False, pad_edge=False)
        for col in ("bot", "state", "why", "since"):
            t.add_column(col)
        for b in d["bots"]:
            t.add_row(b["bot"], "[red]engaged[/]" if b["engaged"] else "off",
                      f"{b['source']}: {b['reason']}" if b["engaged"] else "", b["since"] or "")
        con.print(t)
        return
    if d.get("note"):
        con.print(esc(d["note"]))
    for b in d["bots"]:
        left = b.get("positions_left_open", 0)
        tail = f"; [red]{left} position(s) still open[/] (every run-once tries again)" if left else ""
        if b.get("unchanged") and not b["positions_closed"] and "positions_left_open" not in b:
            con.print(f"{esc(b['bot'])}: kill-switch already {'engaged' if b['engaged'] else 'off'}; nothing to do")
            continue
        if b.get("unchanged"):
            con.print(f"{esc(b['bot'])}: kill-switch already engaged; {b['positions_closed']} position(s) left open "
                      f"earlier now closed{tail}")
            continue
        verb = "engaged" if b["engaged"] else "released"
        extra = f", {b['positions_closed']} position(s) closed" if b["engaged"] else ""
        con.print(f"kill-switch {verb} for {esc(b['bot'])}{extra}{tail}")
    for e in d.get("errors", []):
        con.print(f"[red]error:[/] {esc(e)}")


def rollback(con: Console, d: dict) -> None:
    con.print(f"[bold]engine paused[/] (scalper resume lifts it). Since {d['since']}:")
    a = d["activity"]
    con.print(f"  runs {a['runs']}, signals {a['signals']}, approved {a['approved']}, rejected {a['rejected']}, "
              f"positions opened {a['positions_opened']}")
    con.print("  orders: " + (", ".join(f"{k} {v}" for k, v in a["orders"].items()) or "none"))
    con.print(f"  canceled {d['orders_canceled']} unsent order(s); closed {d['positions_closed']} position(s)")
    for e in d["errors"]:
        con.print(f"[red]error:[/] {esc(e)}")


def check(con: Console, d: dict) -> None:
    for item in d["items"]:
        mark = "[green]ok[/]  " if item["ok"] else "[red]FAIL[/]"
        con.print(f"{mark} {esc(item['what'])}: {esc(item['detail'])}", highlight=False)
    con.print("[green]all good[/]" if d["ok"] else f"[red]problems found[/] (exit {d['exit_code']})")
