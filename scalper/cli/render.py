"""Terminal rendering with rich. Pure presentation: no decisions here."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _kv_table(title: str, data: dict, key: str = "reason", value: str = "count") -> Table:
    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    t.add_column(key)
    t.add_column(value, justify="right")
    for k, v in sorted(data.items(), key=lambda kv: (-kv[1], kv[0]) if isinstance(kv[1], (int, float)) else kv[0]):
        t.add_row(str(k), str(v))
    return t


def run_summary(con: Console, s) -> None:
    head = "[bold]run-once[/]" + (" [yellow](dry run: nothing recorded or sent)[/]" if s.dry_run else "")
    con.print(f"{head}  run {s.run_id}  as of {s.as_of}  {s.duration_s * 1000:.0f} ms")
    con.print(f"bots run: {len(s.bots_run)}" + (f" ({', '.join(s.bots_run[:8])}"
                                                + (", …" if len(s.bots_run) > 8 else "") + ")" if s.bots_run else ""))
    if s.bots_skipped:
        con.print("bots skipped: " + ", ".join(f"{b['bot']} ({b['reason']})" for b in s.bots_skipped[:12])
                  + (" …" if len(s.bots_skipped) > 12 else ""))
    con.print(f"signals recorded: {s.signals}" + (f"  (already seen: {s.duplicate_signals})"
                                                  if s.duplicate_signals else ""))
    if s.signals_by_strategy:
        con.print(_kv_table("signals by strategy", s.signals_by_strategy, "strategy"))
    if s.decisions:
        con.print(_kv_table("decisions", s.decisions))
    if s.orders:
        con.print(_kv_table("orders", s.orders, "status"))
    if s.positions:
        con.print("positions: " + ", ".join(f"{k} {v}" for k, v in s.positions.items()))
    for k in s.kill_switches:
        con.print(f"[bold red]kill-switch engaged[/] for {k['bot']}: {k['reason']} "
                  f"({k['positions_closed']} position(s) closed)")
    for note in s.reconciled:
        con.print(f"[cyan]reconciled:[/] {note}")
    for e in s.errors:
        con.print(f"[red]error:[/] {e}")


def scan_summary(con: Console, r: dict) -> None:
    con.print(f"[bold]scan[/] {r['data']}  bars {r['bars']:,}  evaluated {r['evaluated']:,}  "
              f"signals {r['signals']:,}  lookback {r['lookback']}")
    t = Table(show_edge=False, pad_edge=False)
    t.add_column("strategy")
    t.add_column("buy", justify="right")
    t.add_column("sell", justify="right")
    t.add_column("total", justify="right")
    for name, c in r["counts"].items():
        t.add_row(name, f"{c['buy']:,}", f"{c['sell']:,}", f"{c['buy'] + c['sell']:,}")
    con.print(t)
    if r["skips"]:
        con.print(_kv_table("skip reasons (bars without a signal)", r["skips"]))
    for w in r.get("warnings", []):
        con.print(f"[yellow]warning:[/] {w}")
    if r.get("out"):
        con.print(f"wrote {r['signals']:,} rows to {r['out']}")


def bot(con: Console, b: dict, created: bool, path) -> None:
    import yaml

    con.print(f"[green]{'added' if created else 'updated'}[/] bot [bold]{b['name']}[/] in {path}:")
    con.print(yaml.safe_dump(b, sort_keys=False, default_flow_style=None).rstrip())
