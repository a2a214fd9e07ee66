"""Rendering of `scalper optimize`: the trials' progress with an ETA (stderr, in a
terminal only), the best trials, the folds, the verdict and the proposed change."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from scalper.cli.render import _money, esc

if TYPE_CHECKING:
    from rich.console import Console


@contextmanager
def trials_progress(enabled: bool):
    """The shared progress bar (scalper.cli.progress: trials done / in all, elapsed, ETA) on
    stderr; yields the callback (done, total, description), or None when disabled."""
    if not enabled:
        yield None
        return
    from scalper.cli.progress import progress

    with progress(None, "trials", enabled=True) as bar:
        yield lambda done, total, what: bar.update(done, total, f"trials {what}".rstrip())


def _num(x, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}g}"


MONEY_OBJECTIVES = ("expectancy", "net")   # objectives that are an amount of money: shown to the cent


def _objective(r: dict, value) -> str:
    return _money(value) if r["objective"] in MONEY_OBJECTIVES else _num(value)


def _params(p: dict | None) -> str:
    """name=value pairs; the strategy's name is left out when every parameter is of the same one."""
    p = p or {}
    heads = {k.split(".", 1)[0] for k in p}
    short = len(heads) == 1 and all("." in k for k in p)
    return " ".join(f"{k.split('.', 1)[1] if short else k}={v}" for k, v in p.items()) or "—"


def summary(con: Console, r: dict) -> None:
    from rich.table import Table

    head = (f"[bold]optimize[/] {esc(r['data'])}  {esc(r['symbol'])}" + (f"  bot {esc(r['bot'])}" if r["bot"] else "")
            + f"  bars {r['bars']:,}  {r['duration_s']:.1f} s")
    con.print(head)
    con.print(f"strategies {', '.join(r['strategies'])}  objective {r['objective']} (min {r['min_trades']} trades)  "
              f"trials {r['trials_done']:,}"
              + (f" ({r['trials_resumed']:,} resumed)" if r.get("trials_resumed") else "")
              + f"  jobs {r['jobs']}  seed {r['seed']}")
    con.print("space: " + esc(", ".join(r["space"])))
    if r.get("space_exhausted"):
        con.print(f"every one of the space's {r['space_points']:,} points was tried: the search stopped there "
                  f"({r['trials_asked']:,} trials asked)" if r.get("space_points") else
                  "the search stopped: the sampler proposed only points already tried")
    if r["interrupted"]:
        con.print("[yellow]interrupted:[/] every finished trial is kept" +
                  (f" in {esc(r['study'])}; run the same command again to resume" if r["study"] else "")
                  + "; below is the best so far.")
    t = Table(title="best trials" + (" (all folds, in sample)" if r["walk_forward"] else ""), title_justify="left",
              show_edge=False, pad_edge=False)
    for col in ("#", *(["fold"] if r["walk_forward"] else []), r["objective"], "trades", "PF", "net",
                "parameters"):
        t.add_column(col, justify="left" if col == "parameters" else "right")
    for row in r["best_trials"]:
        t.add_row(str(row["number"]), *([str(row.get("fold"))] if r["walk_forward"] else []),
                  _objective(r, row["value"]),
                  _num(row.get("trades")), _num(row.get("profit_factor"), 3), _money(row.get("net_pnl") or 0),
                  esc(_params(row["params"])))
    con.print(t)
    if r["walk_forward"]:
        _folds(con, r)
    else:
        best = r.get("best")
        if best:
            con.print(f"winner: #{best['number']}  {esc(_params(best['params']))}  {r['objective']} "
                      f"{_objective(r, best['value'])}  net {_money(best['net_pnl'] or 0)} "
                      f"over {best['trades']:,} trades")
    v = r["verdict"]
    colour = {"likely overfit": "red", "likely genuine": "green"}.get(v["label"], "yellow")
    con.print(f"[bold {colour}]verdict: {v['label']}[/]  {esc(v['text'])}")
    if v.get("dsr"):
        d = v["dsr"]
        con.print(f"  deflated Sharpe {_num(d['dsr'], 3)} (Sharpe {_num(d['sharpe'], 3)} per period vs "
                  f"{_num(d['sr0'], 3)} expected from {d['trials']} trials by luck; {d['periods']} periods)")
    if v.get("pbo"):
        con.print(f"  probability of backtest overfitting {_num(v['pbo']['pbo'], 3)}")
    for note in v.get("notes") or []:
        con.print(f"  [dim]{esc(note)}[/]")
    change = r.get("change")
    con.print(f"chosen ({esc(r['chosen_from'])}): {esc(_params(r['chosen']))}")
    if change:
        if change["unchanged"]:
            con.print(f"{esc(change['config'])} already holds these values.")
        else:
            con.print(esc(change["diff"].rstrip("\n")), highlight=False)
            if change["applied"]:
                con.print(f"[green]written to {esc(change['config'])}[/]")
                if change.get("warning"):
                    con.print(f"[bold red]WARNING: {esc(change['warning'])}[/]")
            elif change.get("refused_interrupted"):
                con.print("[yellow]not written: the search was interrupted; finish it (same command) to apply[/]")
            else:
                con.print("[dim]not written: add --apply to write this change[/]")
    if r.get("chart"):
        con.print(f"chart: {esc(r['chart'])}")
    for w in r.get("warnings", []):
        con.print(f"[yellow]warning:[/] {esc(w)}")


def _span(window: dict) -> str:
    """'05-20 23:09': month-day hour:minute of a window's first bar (the JSON has both ends)."""
    return window["from"][5:16]


def _pct(x) -> str:
    return "—" if x is None else f"{x:.0%}"


def _folds(con: Console, r: dict) -> None:
    from rich.table import Table

    t = Table(title="walk-forward" + (" (anchored)" if r["anchored"] else " (rolling)"), title_justify="left",
              show_edge=False, pad_edge=False)
    for col in ("fold", "IS from", "OOS from", "IS trades", "IS net", "OOS trades", "OOS net", "WFE", "PBO"):
        t.add_column(col, justify="left" if "from" in col else "right", no_wrap="from" in col)
    for f in r["folds"]:
        i, o = f["in_sample"], f["out_of_sample"]
        t.add_row(str(f["fold"]), _span(i), _span(o), _num(i.get("trades")), _money(i.get("net_pnl") or 0),
                  _num(o.get("trades")), _money(o.get("net_pnl") or 0), _pct(f["walk_forward_efficiency"]),
                  _num(f["pbo"], 2))
    con.print(t)
    for f in r["folds"]:
        con.print(f"  fold {f['fold']} chose: {esc(_params(f['chosen']))}")
    w = r["walk_forward_totals"]
    con.print(f"stitched out of sample: net {_money(w['out_of_sample_net'])} over {w['out_of_sample_trades']:,} trades "
              f"in {w['folds_done']} fold(s); walk-forward efficiency {_pct(w['walk_forward_efficiency'])}")
