"""Terminal rendering with rich. Pure presentation: no decisions here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported when something is drawn, not at start-up
    from rich.console import Console, JustifyMethod
    from rich.table import Table


def esc(value) -> str:
    """Data printed inside rich markup: brackets in it (e.g. 'scalper[mt5]') are text, not tags."""
    from rich.markup import escape

    return escape(str(value))


def _kv_table(title: str, data: dict, key: str = "reason", value: str = "count") -> Table:
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    t.add_column(key)
    t.add_column(value, justify="right")
    for k, v in sorted(data.items(), key=lambda kv: (-kv[1], kv[0]) if isinstance(kv[1], (int, float)) else kv[0]):
        t.add_row(str(k), f"{v:,}" if isinstance(v, int) else str(v))
    return t


def _counts(data: dict) -> str:
    return ", ".join(f"{esc(k)} {v:,}" for k, v in sorted(data.items(), key=lambda kv: (-kv[1], kv[0])))


def run_summary(con: Console, s) -> None:
    head = "[bold]run-once[/]" + (" [yellow](dry run: nothing recorded or sent)[/]" if s.dry_run else "")
    con.print(f"{head}  as of {s.as_of}  {s.duration_s * 1000:.0f} ms  run {s.run_id}")
    ran = f"bots run: {len(s.bots_run)}"
    if s.bots_run:
        ran += " (" + ", ".join(esc(b) for b in s.bots_run[:6]) + (", …" if len(s.bots_run) > 6 else "") + ")"
    con.print(ran)
    if s.bots_skipped:
        con.print("bots skipped: " + ", ".join(f"{esc(b['bot'])} ({esc(b['reason'])})" for b in s.bots_skipped[:8])
                  + (" …" if len(s.bots_skipped) > 8 else ""))
    line = f"signals: {s.signals:,} new"
    if s.signals_by_strategy:
        line += " (" + _counts(s.signals_by_strategy) + ")"
    if s.duplicate_signals:
        line += f", {s.duplicate_signals:,} already recorded"
    con.print(line)
    if s.decisions:
        con.print("decisions: " + _counts(s.decisions))
    if s.orders_final:
        con.print(f"orders: {s.orders_created:,} created; now " + _counts(s.orders_final))
    if s.not_sent:
        con.print("not sent (auto_trade: false): " + ", ".join(f"{esc(b)} {n:,} approved"
                                                             for b, n in sorted(s.not_sent.items())))
    if s.positions:
        con.print("positions: " + _counts(s.positions))
    for k in s.kill_switches:
        con.print(f"[bold red]kill-switch engaged[/] for {esc(k['bot'])}: {esc(k['reason'])} "
                  f"({k['positions_closed']} position(s) closed)")
    for p in s.order_problems:
        attempts = f" after {p['attempts']} attempt(s)" if p.get("attempts") else ""
        con.print(f"[yellow]order {esc(p['status'])}[/] {esc(p['bot'])} account {p['account_id']}{attempts}: "
                  f"{esc(p['message'])}")
    for note in s.reconciled:
        con.print(f"[cyan]reconciled:[/] {esc(note)}")
    for w in getattr(s, "warnings", []):
        con.print(f"[yellow]warning:[/] {esc(w)}")
    for e in s.errors:
        con.print(f"[red]error:[/] {esc(e)}")


def scan_summary(con: Console, r: dict) -> None:
    from rich.table import Table

    span = (f"  from {r['from'] or 'the start'} to {r['to'] or 'the end'}"
            if r.get("from") or r.get("to") else "")
    con.print(f"[bold]scan[/] {r['data']}  bars {r['bars']:,}{span}  evaluated {r['evaluated']:,}  "
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
        con.print(f"[yellow]warning:[/] {esc(w)}")
    if r.get("out"):
        con.print(f"wrote {r['signals']:,} rows to {r['out']}")


def bot(con: Console, b: dict, created: bool, path, *, changed: bool = True) -> None:
    import yaml

    if not changed:
        con.print(f"bot [bold]{b['name']}[/] in {path} already reads so; nothing written:")
    else:
        con.print(f"[green]{'added' if created else 'updated'}[/] bot [bold]{b['name']}[/] in {path}:")
    con.print(yaml.safe_dump(b, sort_keys=False, default_flow_style=None).rstrip(), markup=False)


# --- backtest and report ------------------------------------------------------------


def _money(x) -> str:
    return "—" if x is None else f"{x:,.2f}"


def _ratio(x) -> str:
    """A profit factor: None in the documents means no losing trade (∞ with wins, — without)."""
    return "—" if x is None else f"{x:.2f}"


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _factor(row: dict) -> str:
    if row["profit_factor"] is None and row["gross_profit"] > 0:
        return "∞"
    return _ratio(row["profit_factor"])


def _header(name: str, narrow: bool) -> str:
    """A strategy name as a column header: split after its last underscore when the
    terminal is narrow (price_action_ / pinbar), never in the middle of a word."""
    if not narrow or "_" not in name:
        return name
    head, _, tail = name.rpartition("_")
    return f"{head}_\n{tail}"


def _strategy_table(title: str, rows: dict, totals: dict, width: int = 200) -> Table:
    """One column per strategy and one for all of them: it stays readable in 80 columns."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    t.add_column("")
    columns = {**rows, "all": totals}
    natural = 16 + sum(max(len(n), 9) + 3 for n in columns)
    for name in columns:
        t.add_column(_header(name, natural > width), justify="right", no_wrap=True,
                     style="bold" if name == "all" else None)
    lines = (("signals", lambda r: f"{r['signals']:,}"), ("approved", lambda r: f"{r['approved']:,}"),
             ("rejected", lambda r: f"{r['rejected_total']:,}"),
             ("trades", lambda r: f"{r['trades']:,}"), ("win rate", lambda r: _pct(r["win_rate"])),
             ("profit factor", _factor), ("expectancy", lambda r: _money(r["expectancy"])),
             ("net P&L", lambda r: _money(r["net_pnl"])), ("max drawdown", lambda r: _money(r["max_drawdown"])))
    for label, cell in lines:
        t.add_row(label, *(cell(r) for r in columns.values()))
    return t


def backtest_summary(con: Console, r: dict) -> None:
    con.print(f"[bold]backtest[/] {r['data']}  {r['symbol']}" + (f"  bot {r['bot']}" if r["bot"] else "")
              + f"  bars {r['bars']:,} ({r['from']} → {r['to']})  {r['duration_s']:.2f} s")
    con.print(f"strategies {', '.join(r['strategies'])}  lookback {r['lookback']}  qty {r['qty']}"
              + (f"  risk {r['risk_percent']}%/trade" if r["risk_percent"] else ""))
    con.print(f"balance {_money(r['start_balance'])} → {_money(r['final_balance'])} {r.get('currency', '')}"
              + (f"  (start: {esc(r['balance_source'])})" if r.get("balance_source") else ""))
    if r.get("costs"):
        c = r["costs"]
        spread = (f"{c['spread_points']:g} points ({esc(c['spread_from'])})" if c["spread_points"] is not None
                  else f"from {esc(c['spread_from'])}")
        con.print(f"costs: spread {spread}  trailing stop {'on' if c['trailing_stop'] else 'off'}  "
                  f"leverage 1:{c['leverage']:g}")
    con.print(_strategy_table("per strategy", r["per_strategy"], r["totals"], con.width))
    if r["totals"]["rejected"]:
        con.print(_kv_table("rejected by reason", r["totals"]["rejected"]))
    if r["exit_reasons"]:
        con.print("exits: " + ", ".join(f"{k} {v:,}" for k, v in r["exit_reasons"].items())
                  + f"  (trailing stop moves: {r['trailing_stop_moves']:,})")
    for reason, n in r["broker_refused"].items():
        con.print(f"[yellow]refused by the broker:[/] {n:,} approved order(s): {esc(reason)}")
    for k in r["kill_switches"]:
        con.print(f"[red]kill-switch[/] {k['time']}: {k['reason']} ({k['positions_closed']} closed; "
                  "re-armed at the next UTC midnight)")
    for w in r.get("warnings", []):
        con.print(f"[yellow]warning:[/] {esc(w)}")
    for key, what in (("signals_out", "signals"), ("trades_out", "trades"), ("chart", "chart")):
        if r.get(key):
            con.print(f"wrote {what} to {r[key]}")


def report(con: Console, r: dict, all_trades: bool = False) -> None:
    from rich.table import Table

    con.print(f"[bold]report[/] {r['ledger']}  since {r['since']}" + (f"  bot {r['bot']}" if r["bot"] else ""))
    con.print(_strategy_table("signals → decisions → trades, per strategy", r["per_strategy"], r["totals"],
                              con.width))
    # Decisions and orders side by side.
    from rich.measure import Measurement

    parts = [_kv_table("decisions", r["decisions"])]
    parts += [_kv_table(f"{kind} orders", counts, "status") for kind, counts in sorted(r["orders"].items())]
    wide = sum(Measurement.get(con, con.options, p).maximum for p in parts) + 4 * (len(parts) - 1)
    if wide <= con.width:
        side = Table.grid(padding=(0, 4))
        for _ in parts:
            side.add_column()
        side.add_row(*parts)
        con.print(side)
    else:   # one under the other rather than reason codes cut
        for part in parts:
            con.print(part)
    if r["daily_pnl"]:
        t = Table(title="daily P&L", title_justify="left", show_edge=False, pad_edge=False)
        for name in ("day", "bot", "account", "realized", "trades", "wins", "losses"):
            t.add_column(name, justify="left" if name in ("day", "bot") else "right")
        for d in r["daily_pnl"]:
            t.add_row(d["day"], d["bot"], str(d["account_id"]), _money(d["realized"]), str(d["trades"]),
                      str(d["wins"]), str(d["losses"]))
        con.print(t)
    missing = r["totals"].get("trades_without_pnl") or 0
    if missing:
        con.print(f"[yellow]{missing:,} closed trade(s) without a P&L[/] (the broker's closing deal was not found): "
                  "listed below, left out of the trades, win rate and P&L above")
    journal(con, r.get("trades", []), limit=None if all_trades else JOURNAL_ROWS)
    con.print(f"open positions: {len(r['open_positions']) or 'none'}")
    for p in r["open_positions"]:
        d = p.get("digits")
        con.print(f"  {esc(p['bot'])} {esc(p['strategy'] or '(adopted)')} {p['side']} {p['volume']} "
                  f"{esc(p['symbol'])} @ {_price(p['price_open'], d)} sl {_price(p['sl'], d)} "
                  f"tp {_price(p['tp'], d)} since {_when(p['opened_at'])} P&L {_money(p['unrealized'])} "
                  f"(acct {p['account_id']})", soft_wrap=True)
    if r.get("chart"):
        con.print(f"wrote chart to {r['chart']}" + (f" ({r['chart_note']})" if r.get("chart_note") else ""))


JOURNAL_ROWS = 20


def _duration(seconds) -> str:
    if seconds is None:
        return "—"
    m, sec = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    if h >= 48:
        return f"{h // 24:,}d{h % 24:02d}h"
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s"


def _price(x, digits=None) -> str:
    """A price with thousands separators and the symbol's decimals (2 when unknown)."""
    return "—" if x is None else f"{x:,.{2 if digits is None else digits}f}"


def _when(text) -> str:
    """'2025-05-27T08:35:05Z' → '05-27 08:35' (UTC)."""
    return str(text).replace("T", " ")[5:16] if text else "—"


def journal(con: Console, trades: list[dict], limit: int | None = JOURNAL_ROWS) -> None:
    """Closed trades, the latest last; `limit` shows only the last ones (None: all).
    A table when the terminal is wide, one line per trade otherwise (80 columns)."""
    from rich.table import Table

    if not trades:
        con.print("closed trades: none in the span")
        return
    shown = trades if limit is None else trades[-limit:]
    title = f"closed trades (UTC): {len(trades):,}" + (f", the last {len(shown):,} (--journal lists all)"
                                                       if len(shown) < len(trades) else "")
    cells = [(_when(x["exit_time"]), esc(x["bot"]), esc(x["strategy"]), x["side"],
              _price(x["entry"], x.get("digits")), _price(x["exit"], x.get("digits")),
              "—" if x["r_multiple"] is None else f"{x['r_multiple']:+.2f}R", _duration(x["duration_s"]),
              esc(x["exit_reason"] or "—"), _money(x["pnl"])) for x in shown]
    if con.width < 120:
        con.print(title)
        for c in cells:
            con.print(f"  {c[0]} {c[1]} {c[2]} {c[3]} {c[4]} → {c[5]} {c[6]} {c[7]} {c[8]} [bold]{c[9]}[/]",
                      soft_wrap=True)
        return
    t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("closed", "left"), ("bot", "left"), ("strategy", "left"), ("side", "left"), ("entry", "right"),
        ("exit", "right"), ("R", "right"), ("held", "right"), ("why", "left"), ("P&L", "right"))
    for name, justify in columns:
        t.add_column(name, justify=justify, no_wrap=True)
    for c in cells:
        t.add_row(*c)
    con.print(t)


def journal_csv(trades: list[dict]) -> None:
    import csv
    import sys

    from scalper.report.journal import JOURNAL_FIELDS

    w = csv.DictWriter(sys.stdout, fieldnames=JOURNAL_FIELDS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(trades)


REPORT_CSV_FIELDS = ["strategy", "signals", "approved", "rejected", "trades", "wins", "losses", "win_rate",
                     "profit_factor", "expectancy", "net_pnl", "max_drawdown", "gross_profit", "gross_loss"]


def report_csv(r: dict) -> None:
    """The per-strategy table on stdout, one row per strategy, a column per rejection reason.
    An empty profit_factor means there was no losing trade."""
    import csv
    import sys

    reasons = sorted({reason for row in r["per_strategy"].values() for reason in row["rejected"]})
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(REPORT_CSV_FIELDS + [f"rejected_{reason}" for reason in reasons])
    for name, row in r["per_strategy"].items():
        values = {**row, "strategy": name, "rejected": row["rejected_total"]}
        w.writerow(["" if values[f] is None else values[f] for f in REPORT_CSV_FIELDS]
                   + [row["rejected"].get(reason, 0) for reason in reasons])
