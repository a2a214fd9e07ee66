"""PNG charts for `backtest --chart` and `report --chart`: price with signals
and trades marked above, the equity curve below.

matplotlib is an optional dependency (the `charts` extra), imported only when
a chart is drawn; `require()` says how to install it before any work is done.
The figure is drawn on its own Agg canvas, never through pyplot, so nothing
global (backend, open windows) is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from scalper.core.bars import BAR_SECONDS, Bars
from scalper.errors import BadInput

MAX_CANDLES = 300           # candles stay readable; the equity curve is always drawn in full
UP, DOWN = "#26a69a", "#ef5350"
INSTALL_FIX = "pip install 'scalper[charts]'"


@dataclass(frozen=True)
class SignalMark:
    time: float             # open time of the signal bar
    price: float
    direction: str
    approved: bool = True


@dataclass(frozen=True)
class TradeMark:
    entry_time: float
    entry: float
    exit_time: float | None  # None while open
    exit: float | None
    direction: str
    pnl: float | None


def require(option: str = "--chart") -> None:
    """Fail early, before anything is computed or written, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BadInput("drawing a chart needs matplotlib, which is not installed", where=option,
                       fix=f"{INSTALL_FIX}, or drop {option}") from None


def draw(path: str | Path, *, title: str, equity: Sequence[tuple[float, float]], bars: Bars | None = None,
         signals: Sequence[SignalMark] = (), trades: Sequence[TradeMark] = (), equity_label: str = "equity",
         max_candles: int = MAX_CANDLES) -> Path:
    """Write the chart to `path` (PNG).

    With `bars`, the last `max_candles` of them are drawn as candles and only
    the marks inside that span are shown; without, the marks are drawn at their
    own prices on a time axis.
    """
    require()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    price_ax, equity_ax = fig.subplots(2, 1, height_ratios=[3, 1])
    fig.suptitle(title)

    span = None
    if bars is not None and len(bars):
        shown = bars.tail(max_candles)
        _candles(price_ax, shown)
        span = (float(shown.time[0]), float(shown.time[-1]) + BAR_SECONDS)
        price_ax.set_title(f"last {len(shown):,} bars", loc="left", fontsize=9)
    else:
        price_ax.set_title("signals and trades at their prices (no bar data)", loc="left", fontsize=9)
    _signals(price_ax, [s for s in signals if _inside(s.time, span)])
    _trades(price_ax, [t for t in trades if _inside(t.entry_time, span)])
    price_ax.set_ylabel("price")
    _dates(price_ax)

    _equity(equity_ax, equity, equity_label)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _inside(t: float, span: tuple[float, float] | None) -> bool:
    return span is None or span[0] <= t <= span[1]


def _x(times) -> np.ndarray:
    """Epoch seconds → matplotlib date numbers (days since 1970-01-01)."""
    return np.asarray(times, dtype=np.float64) / 86_400.0


def _candles(ax, bars: Bars) -> None:
    x = _x(bars.time + BAR_SECONDS / 2)
    up = bars.close >= bars.open
    colors = np.where(up, UP, DOWN)
    ax.vlines(x, bars.low, bars.high, colors=colors, linewidth=0.7)
    body = np.abs(bars.close - bars.open)
    # A doji still shows a sliver of body.
    body = np.maximum(body, (bars.high.max() - bars.low.min()) * 1e-3)
    ax.bar(x, body, bottom=np.minimum(bars.open, bars.close), width=0.7 * BAR_SECONDS / 86_400.0,
           color=colors, edgecolor=colors, linewidth=0.4)


def _signals(ax, marks: Sequence[SignalMark]) -> None:
    for direction, marker, color in (("buy", "^", UP), ("sell", "v", DOWN)):
        for approved, alpha in ((True, 0.9), (False, 0.3)):
            pick = [m for m in marks if m.direction == direction and m.approved == approved]
            if pick:
                label = f"{direction} signal" + ("" if approved else " (rejected)")
                ax.scatter(_x([m.time + BAR_SECONDS / 2 for m in pick]), [m.price for m in pick], marker=marker,
                           s=18, color=color, alpha=alpha, label=label, zorder=3)


def _trades(ax, trades: Sequence[TradeMark]) -> None:
    for t in trades:
        color = UP if t.direction == "buy" else DOWN
        ax.scatter(_x([t.entry_time]), [t.entry], marker="o", s=36, facecolors="none", edgecolors=color, zorder=4)
        if t.exit_time is not None and t.exit is not None:
            result = "#1565c0" if (t.pnl or 0) >= 0 else "#6d4c41"
            ax.plot(_x([t.entry_time, t.exit_time]), [t.entry, t.exit], color=result, linewidth=1.0, zorder=4)
            ax.scatter(_x([t.exit_time]), [t.exit], marker="x", s=30, color=result, zorder=4)
    if trades:
        ax.scatter([], [], marker="o", facecolors="none", edgecolors="grey", label="trade entry")
        ax.scatter([], [], marker="x", color="grey", label="trade exit")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8, ncols=3)


def _equity(ax, equity: Sequence[tuple[float, float]], label: str) -> None:
    ax.set_ylabel(label)
    if not equity:
        ax.text(0.5, 0.5, "no closed trades", transform=ax.transAxes, ha="center", va="center")
        return
    times, values = zip(*equity)
    ax.step(_x(times), values, where="post", color="#1565c0", linewidth=1.2)
    ax.grid(alpha=0.3)
    _dates(ax)


def _dates(ax) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
