"""Charts for `backtest --chart` and `report --chart` (PNG, or SVG/PDF/JPEG by the
file's extension): one price panel per symbol (candles, signals beside the bar
that gave them, trades from entry to exit coloured by result, SL and TP
levels), then the equity curve and its drawdown, in the account currency.

matplotlib is an optional dependency (the `charts` extra), imported only when
a chart is drawn; `require()` says how to install it before any work is done.
The figure is drawn on its own Agg canvas, never through pyplot, so nothing
global (backend, open windows) is touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalper.core.bars import BAR_SECONDS, Bars
from scalper.errors import BadInput

MAX_CANDLES = 300           # candles stay readable; the equity curve is always drawn in full
UP, DOWN = "#26a69a", "#ef5350"
# not the project's name with [charts] after it: on the public index that name is another project
INSTALL_FIX = "pip install matplotlib (or, in the scalper checkout, pip install '.[charts]')"
WIN, LOSS = "#1565c0", "#ef6c00"          # trade lines: not the candles' green/red
SL_COLOR, TP_COLOR = "#c62828", "#2e7d32"


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
    sl: float | None = None
    tp: float | None = None


@dataclass(frozen=True)
class SymbolPanel:
    """One symbol's price panel: its bars (None when none can be read) and marks."""

    symbol: str
    bars: Bars | None = None
    signals: Sequence[SignalMark] = ()
    trades: Sequence[TradeMark] = ()
    digits: int | None = None       # price decimals on the axis
    note: str | None = None         # why there are no candles


def require(option: str = "--chart") -> None:
    """Fail early, before anything is computed or written, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BadInput("drawing a chart needs matplotlib, which is not installed", where=option,
                       fix=f"{INSTALL_FIX}, or drop {option}") from None


def draw(path: str | Path, *, title: str, equity: Sequence[tuple[float, float]], bars: Bars | None = None,
         signals: Sequence[SignalMark] = (), trades: Sequence[TradeMark] = (), equity_label: str = "equity",
         max_candles: int = MAX_CANDLES, symbol: str = "", digits: int | None = None, currency: str = "USD",
         span: tuple[float, float] | None = None) -> Path:
    """Write a chart of one symbol to `path`. With `bars`, the last `max_candles` of
    them are drawn as candles and only the marks inside that span are shown; without,
    the marks are drawn at their own prices on a time axis."""
    panel = SymbolPanel(symbol, bars, signals, trades, digits)
    return draw_panels(path, title=title, panels=[panel], equity=equity, equity_label=equity_label,
                       currency=currency, max_candles=max_candles, span=span)


def draw_panels(path: str | Path, *, title: str, panels: Sequence[SymbolPanel],
                equity: Sequence[tuple[float, float]], equity_label: str = "equity", currency: str = "USD",
                max_candles: int = MAX_CANDLES, span: tuple[float, float] | None = None) -> Path:
    """Price panels (one per symbol, each on its own price axis), then equity and
    drawdown sharing one time axis over `span` (default: the equity's own)."""
    require()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = list(panels) or [SymbolPanel("")]
    n = len(panels)
    fig = Figure(figsize=(14, 3.6 * n + 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n + 2, 1, height_ratios=[3] * n + [1.6, 1.0])
    fig.suptitle(title, fontsize=12)
    for ax, panel in zip(axes[:n], panels):
        _price_panel(ax, panel, max_candles)
    equity_ax, dd_ax = axes[n], axes[n + 1]
    dd_ax.sharex(equity_ax)
    _equity_and_drawdown(equity_ax, dd_ax, equity, equity_label, currency, span)
    from scalper.outputs import CHART_FORMATS

    out = Path(path)
    fig.savefig(out, format=CHART_FORMATS.get(out.suffix.lower(), "png"))
    return out


def _price_panel(ax, panel: SymbolPanel, max_candles: int) -> None:
    span = None
    name = panel.symbol or "price"
    if panel.bars is not None and len(panel.bars):
        shown = panel.bars.tail(max_candles)
        _candles(ax, shown)
        span = (float(shown.time[0]), float(shown.time[-1]) + BAR_SECONDS)
        ax.set_title(f"{name}: last {len(shown):,} one-minute bars", loc="left", fontsize=10)
        offset = float(np.median(shown.high - shown.low)) or 1e-9
    else:
        why = panel.note or "no bar data"
        ax.set_title(f"{name}: signals and trades at their prices ({why})", loc="left", fontsize=10)
        prices = [m.price for m in panel.signals] + [t.entry for t in panel.trades]
        offset = (max(prices) - min(prices)) * 0.01 if len(prices) > 1 else 1e-9
    signals = [s for s in panel.signals if _inside(s.time, span)]
    trades = [t for t in panel.trades if _inside(t.entry_time, span)]
    hidden = len(panel.trades) - len(trades)
    if hidden:
        ax.set_title(f"{hidden:,} earlier trade(s) outside the candles", loc="right", fontsize=8, color="grey")
    _signals(ax, signals, panel.bars if span else None, offset)
    _trades(ax, trades, span)
    ax.set_ylabel(f"{name} price" if panel.symbol else "price")
    _price_ticks(ax, panel.digits)
    ax.grid(alpha=0.2)
    _dates(ax)
    if span is None and not (signals or trades):
        ax.text(0.5, 0.5, "nothing to draw in this span", transform=ax.transAxes, ha="center", va="center")
    _legend(ax, signals, trades)


def _inside(t: float, span: tuple[float, float] | None) -> bool:
    return span is None or span[0] <= t <= span[1]


def _x(times) -> np.ndarray:
    """Epoch seconds → matplotlib date numbers (days since 1970-01-01)."""
    return np.asarray(times, dtype=np.float64) / 86_400.0


def _candles(ax, bars: Bars) -> None:
    x = _x(bars.time + BAR_SECONDS / 2)
    up = bars.close >= bars.open
    colors = np.where(up, UP, DOWN)
    ax.vlines(x, bars.low, bars.high, colors=colors, linewidth=0.7, zorder=1)
    body = np.abs(bars.close - bars.open)
    # A doji still shows a sliver of body.
    body = np.maximum(body, (bars.high.max() - bars.low.min()) * 1e-3)
    ax.bar(x, body, bottom=np.minimum(bars.open, bars.close), width=0.7 * BAR_SECONDS / 86_400.0,
           color=colors, edgecolor=colors, linewidth=0.4, zorder=1)


def _signals(ax, marks: Sequence[SignalMark], bars: Bars | None, offset: float) -> None:
    """Triangles beside the bar that gave the signal (under its low for a buy, over its
    high for a sell), so a trade's entry circle never covers them. Rejected ones hollow."""
    if not marks:
        return
    lows, highs = {}, {}
    if bars is not None:
        lows = dict(zip(bars.time.tolist(), bars.low.tolist()))
        highs = dict(zip(bars.time.tolist(), bars.high.tolist()))
    for direction, marker, color in (("buy", "^", UP), ("sell", "v", DOWN)):
        for approved in (True, False):
            pick = [m for m in marks if m.direction == direction and m.approved == approved]
            if not pick:
                continue
            if direction == "buy":
                y = [lows.get(int(m.time), m.price) - offset for m in pick]
            else:
                y = [highs.get(int(m.time), m.price) + offset for m in pick]
            ax.scatter(_x([m.time + BAR_SECONDS / 2 for m in pick]), y, marker=marker, s=34,
                       facecolors=color if approved else "none", edgecolors=color, linewidths=0.9, zorder=3)


def _trades(ax, trades: Sequence[TradeMark], span) -> None:
    right = span[1] if span else None
    for t in trades:
        end = t.exit_time if t.exit_time is not None else (right or t.entry_time + 30 * BAR_SECONDS)
        for level, color in ((t.sl, SL_COLOR), (t.tp, TP_COLOR)):
            if level is not None:
                ax.hlines(level, _x(t.entry_time), _x(end), colors=color, linestyles=(0, (2, 2)),
                          linewidth=1.0, zorder=2)
        if t.exit_time is not None and t.exit is not None:
            result = WIN if (t.pnl or 0) >= 0 else LOSS
            ax.plot(_x([t.entry_time, t.exit_time]), [t.entry, t.exit], color=result, linewidth=1.6, zorder=4)
            ax.scatter(_x([t.exit_time]), [t.exit], marker="X", s=44, color=result, edgecolors="black",
                       linewidths=0.4, zorder=5)
        ax.scatter(_x([t.entry_time]), [t.entry], marker="o", s=40, color="white", edgecolors="black",
                   linewidths=1.0, zorder=5)


def _legend(ax, signals, trades) -> None:
    from matplotlib.lines import Line2D

    def mark(marker, face, edge, label):
        return Line2D([], [], linestyle="none", marker=marker, markersize=7, markerfacecolor=face,
                      markeredgecolor=edge, label=label)

    handles = []
    if signals:
        handles += [mark("^", UP, UP, "buy signal"), mark("v", DOWN, DOWN, "sell signal")]
        if any(not s.approved for s in signals):
            handles.append(mark("^", "none", "grey", "signal not traded (hollow)"))
    if trades:
        handles += [mark("o", "white", "black", "entry"), mark("X", "grey", "black", "exit"),
                    Line2D([], [], color=WIN, linewidth=1.6, label="winning trade"),
                    Line2D([], [], color=LOSS, linewidth=1.6, label="losing trade")]
        if any(t.sl is not None for t in trades):
            handles.append(Line2D([], [], color=SL_COLOR, linestyle=(0, (2, 2)), label="stop loss"))
        if any(t.tp is not None for t in trades):
            handles.append(Line2D([], [], color=TP_COLOR, linestyle=(0, (2, 2)), label="take profit"))
    if handles:
        # beside the panel, never over the candles
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, borderaxespad=0)


def _price_ticks(ax, digits: int | None) -> None:
    from matplotlib.ticker import FuncFormatter

    d = 2 if digits is None else digits
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.{d}f}"))


def _money_ticks(ax) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.2f}"))


def _collapse(equity: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """One point per instant (the last): closes sharing a timestamp make one step, not a spike."""
    out: list[tuple[float, float]] = []
    for t, v in equity:
        if out and out[-1][0] == t:
            out[-1] = (t, v)
        else:
            out.append((t, v))
    return out


def _equity(ax, equity: Sequence[tuple[float, float]], label: str) -> None:
    """An equity curve alone on `ax` (scalper optimize's chart): one step per instant."""
    ax.set_ylabel(label)
    points = _collapse(equity)
    if not points:
        ax.text(0.5, 0.5, "no closed trades", transform=ax.transAxes, ha="center", va="center")
        return
    times, values = zip(*points)
    ax.step(_x(times), values, where="post", color=WIN, linewidth=1.2)
    ax.grid(alpha=0.3)
    _money_ticks(ax)
    _dates(ax)


def _equity_and_drawdown(ax, dd_ax, equity: Sequence[tuple[float, float]], label: str, currency: str,
                         span: tuple[float, float] | None) -> None:
    ax.set_ylabel(f"{label} ({currency})")
    dd_ax.set_ylabel(f"drawdown ({currency})")
    points = _collapse(equity)
    if not points:
        for a in (ax, dd_ax):
            a.text(0.5, 0.5, "no closed trades", transform=a.transAxes, ha="center", va="center")
            a.set_yticks([])
        ax.set_xticks([])
        dd_ax.set_xticks([])
        return
    times = np.array([t for t, _ in points], dtype=np.float64)
    values = np.array([v for _, v in points], dtype=np.float64)
    drawdown = values - np.maximum.accumulate(values)
    lo, hi = span if span else (float(times[0]), float(times[-1]))
    if hi - lo < BAR_SECONDS:   # one instant: a minute either side of it (an empty span would show years)
        lo, hi = lo - BAR_SECONDS, hi + BAR_SECONDS
    # the last level holds to the end of the span
    times = np.append(times, max(hi, times[-1]))
    values = np.append(values, values[-1])
    drawdown = np.append(drawdown, drawdown[-1])
    ax.step(_x(times), values, where="post", color=WIN, linewidth=1.4, label=f"{label} ({currency})")
    if len(points) <= 60:   # a few closes: each one marked
        ax.scatter(_x(times[1:-1]), values[1:-1], s=10, color=WIN, zorder=3)
    ax.set_title(f"{label}: {values[0]:,.2f} → {values[-1]:,.2f} {currency} over {len(equity) - 1:,} close(s)",
                 loc="left", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, borderaxespad=0)
    dd_ax.fill_between(_x(times), drawdown, 0, step="post", color=LOSS, alpha=0.35, linewidth=0,
                       label=f"drawdown from the running peak ({currency})")
    dd_ax.step(_x(times), drawdown, where="post", color=LOSS, linewidth=0.8)
    worst = float(drawdown.min())
    dd_ax.set_title(f"max drawdown {abs(worst):,.2f} {currency}", loc="left", fontsize=10)
    dd_ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, borderaxespad=0)
    dd_ax.set_ylim(min(worst * 1.15, -0.01), max(-worst * 0.05, 0.01))
    # the time axis is the data's span: no margin past the last close (2% of a day was half an hour)
    ax.set_xlim(_x(lo), _x(hi))
    for a in (ax, dd_ax):
        a.grid(alpha=0.3)
        _money_ticks(a)
        _dates(a)


def _dates(ax) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
