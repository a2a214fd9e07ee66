"""`optimize --chart`: the out-of-sample equity with the fold boundaries (or the
winner's equity when there is no walk-forward), and each searched parameter
against the objective, one panel per parameter."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

MAX_PARAM_PANELS = 6


def draw(path: str | Path, *, title: str, equity: Sequence[tuple[float, float]], equity_label: str,
         boundaries: Sequence[tuple[float, str]], trials: Sequence[dict], params: Sequence[str],
         objective: str, chosen: dict | None) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from scalper.report.charts import _dates, _equity, _x, require

    require()
    shown = list(params)[:MAX_PARAM_PANELS]
    cols = max(1, min(3, len(shown)))
    rows = math.ceil(len(shown) / cols)
    fig = Figure(figsize=(14, 4 + 3.2 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1 + rows, cols, height_ratios=[1.3] + [1] * rows)
    fig.suptitle(title)
    eq_ax = fig.add_subplot(grid[0, :])
    _equity(eq_ax, equity, equity_label)
    for when, label in boundaries:
        eq_ax.axvline(_x([when])[0], color="grey", linestyle="--", linewidth=0.8)
        eq_ax.annotate(label, (_x([when])[0], 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                       ha="left", va="top", color="dimgrey")
    if equity:
        eq_ax.axhline(equity[0][1], color="black", linewidth=0.5, alpha=0.5)
    _dates(eq_ax)
    for k, name in enumerate(shown):
        ax = fig.add_subplot(grid[1 + k // cols, k % cols])
        xs = [t["params"][name] for t in trials if t["value"] is not None]
        ys = [t["value"] for t in trials if t["value"] is not None]
        order = [t.get("fold", 1) for t in trials if t["value"] is not None]
        ax.scatter(xs, ys, c=order, cmap="viridis", s=14, alpha=0.7)
        if chosen is not None:
            ax.axvline(chosen[name], color="#c62828", linewidth=1.0, label="chosen")
            ax.legend(fontsize=7, loc="best")
        folds = sorted(set(order))
        ax.set_title("in-sample trials" + (f" by fold: purple = {folds[0]} … yellow = {folds[-1]}"
                                           if len(folds) > 1 else ""), fontsize=8, loc="left")
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylabel(objective, fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
