"""Terminal rendering of the operator commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalper.cli.render import esc

if TYPE_CHECKING:  # rich is imported when something is drawn, not at start-up
    from rich.console import Console, JustifyMethod


def status(con: Console, d: dict) -> None:
    from rich.table import Table

    from scalper.cli.render import _money, _price, _when

    colour = {"running": "green", "paused": "bold red", "failing": "red", "stalled": "yellow"}.get(
        d["engine"]["state"], "yellow")
    con.print(f"engine: [{colour}]{d['engine']['state'].replace('_', ' ')}[/] ({esc(d['engine']['detail'])})")
    con.print(f"config: {esc(d['config'])}")
    con.print(f"ledger: {esc(d['ledger'])}")
    last = d["last_run"]
    if last:
        con.print(f"last run: {last['started_at']}  {(last['duration_s'] or 0) * 1000:,.0f} ms  {last['status']}")
    t = Table(title="accounts", title_justify="left", show_edge=False, pad_edge=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("account", "left"), ("broker", "left"), ("balance", "right"), ("equity", "right"), ("open", "right"),
        ("max DD", "right"))
    for col, j in columns:
        t.add_column(col, justify=j, no_wrap=True)
    for a in d["accounts"]:
        cur = f" {a['currency']}" if a["currency"] else ""
        t.add_row(f"{a['id']} {esc(a['name'])}", a["broker"],
                  _money(a["balance"]) + cur if a["balance"] is not None else "—",
                  _money(a["equity"]) + cur if a["equity"] is not None else "—",
                  f"{a['open_positions']:,}", _money(a["max_drawdown"]))
    con.print(t)
    for a in d["accounts"]:
        if a["note"]:
            con.print(f"  account {a['id']}: {esc(a['note'])}")
    # fits 80 columns: no vertical rules, short headers, names never wrap
    from rich import box

    t = Table(title="bots", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
              padding=(0, 1))
    for col in ("bot", "symbol", "auto_trade", "kill-switch"):
        t.add_column(col, no_wrap=True)
    for col in ("open", "today", "risk", "DD"):
        t.add_column(col, justify="right", no_wrap=True)
    for b in d["bots"]:
        ks = b["kill_switch"]
        t.add_row(esc(b["bot"]), esc(b["symbol"]), "on" if b["auto_trade"] else "off",
                  "[red]engaged[/]" if ks["engaged"] else "off",
                  f"{b['open_positions']:,}", _money(b["pnl_today"]), _money(b["open_risk"]), _money(b["drawdown"]))
    con.print(t)
    for b in d["bots"]:
        if not b["enabled"] or b["engine_mode"] != "scalper":
            why = "disabled" if not b["enabled"] else "engine_mode " + b["engine_mode"]
            con.print(f"  {esc(b['bot'])}: not run ({why})")
        if b["kill_switch"]["engaged"]:
            ks = b["kill_switch"]
            con.print(f"  {esc(b['bot'])}: kill-switch engaged ({esc(ks['source'])}: {esc(ks['reason'] or '')})")
    hosts_pending(con, d)
    con.print("auto_trade off: signals and decisions recorded, no order sent. today: realized P&L of the UTC "
              "day + open P&L. risk: lost if every stop is hit. DD: realized P&L below its peak.", style="dim")
    if d["open_positions"]:
        con.print(f"open positions: {len(d['open_positions']):,}")
        for r in d["open_positions"]:
            dg = r.get("digits")
            con.print(f"  {esc(r['bot'])} acct {r['account_id']} #{r['ticket']} {r['side']} {r['volume']} "
                      f"{esc(r['symbol'])} @ {_price(r['price_open'], dg)} sl {_price(r['sl'], dg)} "
                      f"tp {_price(r['tp'], dg)} since {_when(r['opened_at'])} P&L {_money(r['unrealized'])}",
                      soft_wrap=True)


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
    hosts_pending(con, d)
    for e in d.get("errors", []):
        con.print(f"[red]error:[/] {esc(e)}")


def rollback(con: Console, d: dict) -> None:
    con.print(f"[bold]engine paused[/] (scalper resume lifts it). Since {d['since']}:")
    a = d["activity"]
    con.print(f"  runs {a['runs']:,}, signals {a['signals']:,}, approved {a['approved']:,}, "
              f"rejected {a['rejected']:,}, positions opened {a['positions_opened']:,}")
    con.print("  orders: " + (", ".join(f"{k} {v:,}" for k, v in a["orders"].items()) or "none"))
    con.print(f"  canceled {d['orders_canceled']:,} unsent order(s); closed {d['positions_closed']:,} position(s)")
    hosts_pending(con, d)
    for e in d["errors"]:
        con.print(f"[red]error:[/] {esc(e)}")


def check(con: Console, d: dict) -> None:
    for item in d["items"]:
        mark = "[green]ok[/]  " if item["ok"] else "[red]FAIL[/]"
        con.print(f"{mark} {esc(item['what'])}: {esc(item['detail'])}", highlight=False)
    con.print("[green]all good[/]" if d["ok"] else f"[red]problems found[/] (exit {d['exit_code']})")


def hosts_pending(con: Console, d: dict) -> None:
    """Fleet: the terminal hosts that have not confirmed an operator request yet."""
    pending = d.get("hosts_pending")
    if pending is None:
        return
    if not pending:
        con.print("fleet: every host has confirmed")
        return
    for r in pending:
        left = f", {r['left_open']} position(s) still open there" if r.get("left_open") is not None else ""
        con.print(f"fleet: [yellow]host {esc(r['host'])} has not confirmed[/] the {r['kind'].replace('_', '-')} "
                  f"of {r['requested_at']}{left} (its worker's next task or pass closes them)", soft_wrap=True)
