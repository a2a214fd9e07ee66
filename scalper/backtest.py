"""The backtester: the core of `run-once` driven over a history.

History replaces the feed, the simulated exchange of `scalper.core.sim` replaces the
broker (the paper broker drives the same rules), and the bar being replayed is the clock:
each bar is decided at `now` = its close + DECISION_DELAY_S, in the order one
run-once pass takes at that instant:

1. the broker's sync: every open position whose SL or TP this bar reached
   closes (`sim.bar_exit`); when the equity is then zero or below, the broker
   closes the rest at the quote (`sim.stopped_out`, exit reason "stop_out"),
   which leaves no balance: risk refuses every later signal (risk_no_balance);
2. this bar's raw signals (the strategies' fast path, `scan_history`, which
   gives what evaluating each window gives) in the bot's strategy order, each
   meeting `risk.decide` with the Exposure of the simulated book
   (`core.exposure.build_exposure`); an approved one is sized
   (`sizing.size_order`; one below the symbol's minimum volume is refused, never
   raised to it), its SL/TP rounded as an order's are, and filled at
   the far side of the quote (`sim.quote`, `sim.fill_price`); risk's last check
   refuses one whose stops that quote has already passed
   (`risk_stops_beyond_quote`, as `run-once` checks the broker's quote), and the
   broker one its free margin cannot hold (`sim.no_money`, counted as
   "broker_no_money", as the paper broker answers NO_MONEY); a position opened
   by an earlier strategy counts against the later ones;
3. position upkeep: trailing stops (`upkeep.trailing_stop` at the latest
   price) and the kill-switch (`core.exposure.kill_switch_reason`), which
   closes every position at the latest price and halts new entries.

"The latest price" and the spread at `now` are the simulated exchange's
(`sim.latest_after_close`, `sim.spreads_after_close`): what the paper broker quotes.

What a live engine never has to decide, decided here:
- one account is simulated: a bot's accounts all get the same orders and fills;
- the kill-switch re-arms at the next UTC midnight (live, it stays engaged
  until `scalper kill-switch release`), so one bad day does not end the test;
- positions still open after the last bar replayed are closed at the latest
  price then, with exit reason "end";
- the account's leverage is the setup's (default `sim.DEFAULT_LEVERAGE`, the
  paper broker's).
"""

from __future__ import annotations

import dataclasses
import math
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter

import numpy as np

from scalper.clock import DAY_SECONDS
from scalper.core import risk, sim, upkeep
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.core.exposure import (
    build_exposure,
    day_start,
    day_starts,
    kill_switch_idle_when_flat,
    kill_switch_reason,
    kill_switch_trips,
)
from scalper.core.rules import RiskRules
from scalper.core.scan import EmaStore, scan_history
from scalper.core.signals import Direction, Signal
from scalper.core.sim import (
    DEFAULT_LEVERAGE,
    bar_exit,
    close_price,
    exit_bars,
    exit_time,
    fill_price,
    margin,
    no_money,
    profit,
    stopped_out,
)
from scalper.core.sizing import Sizing, size_order
from scalper.core.stops import stops_valid
from scalper.core.strategies.views import HistoryView
from scalper.memory import give_back
from scalper.rounding import round_array as _round_prices  # SymbolSpec.round_price of every price
from scalper.symbols import SymbolSpec

DECISION_DELAY_S = 5          # a run-once starts a few seconds after the bar closes
ACCOUNT = 0                   # the one simulated account
AFTER_CLOSE_S = BAR_SECONDS + DECISION_DELAY_S   # a pass's `now` after its bar's open time
PROGRESS_STEPS = 200          # progress callbacks per replay, at most
LOSS_SLACK = 0.01             # a cent per position on the loss bounds: sums rounded in another order

INVALID_STOPS = "broker_invalid_stops"
NO_MONEY = "broker_no_money"
KILL_SWITCH_EXIT = "kill_switch"
STOP_OUT_EXIT = "stop_out"
END_EXIT = "end"

Progress = Callable[[int, int], None]   # (bars done, bars in all)


@dataclass(frozen=True)
class Setup:
    """What is replayed: one bot's symbol, strategies, parameters, size and risk."""

    symbol: str
    spec: SymbolSpec
    strategies: tuple[str, ...]
    params: Mapping[str, Mapping]   # resolved parameters per strategy
    lookback: int
    qty: float
    rules: RiskRules    # the bot's risk settings (scalper.settings.risk_rules of its `risk:`)
    balance: float
    leverage: float = DEFAULT_LEVERAGE


@dataclass(frozen=True, slots=True)
class Trade:
    strategy: str
    direction: Direction
    signal_time: int        # open time of the signal bar
    entry_time: float       # the instant the order filled
    exit_time: float
    volume: float
    entry: float
    exit: float
    sl: float               # as sent with the order
    tp: float
    final_sl: float         # where trailing left it (= sl when it never moved)
    exit_reason: str        # sl | tp | kill_switch | stop_out | end
    pnl: float              # in the symbol's profit currency


TRADE_NAMES = tuple(f.name for f in dataclasses.fields(Trade))   # in order: the replay's trade tuples follow it


class TradeLog:
    """Trades in closing order, kept as the tuples of their fields (Trade's order): the replay appends a
    tuple, not a frozen Trade (a fifth of its time per trade), the rows and statistics read the columns,
    and the Trade objects are built once, on first asking (`trades`)."""

    __slots__ = ("_columns", "_trades", "rows")

    def __init__(self, trades: list[Trade] | None = None):
        self._trades = trades
        self._columns: dict[str, list] | None = None
        self.rows: list[tuple] = [] if trades is None else [tuple(getattr(t, n) for n in TRADE_NAMES)
                                                             for t in trades]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def trades(self) -> list[Trade]:
        if self._trades is None or len(self._trades) != len(self.rows):
            self._trades = [Trade(*row) for row in self.rows]
        return self._trades

    def column(self, name: str) -> list:
        """One field's values, in closing order, without transposing the others."""
        k = TRADE_NAMES.index(name)
        return [row[k] for row in self.rows]

    def columns(self) -> dict[str, list]:
        """Each field's values, in closing order (made once for the rows and the summary: not to be
        changed by the reader)."""
        if self._columns is None or len(self._columns["pnl"]) != len(self.rows):
            self._columns = (dict(zip(TRADE_NAMES, map(list, zip(*self.rows)))) if self.rows
                             else {n: [] for n in TRADE_NAMES})
        return self._columns


@dataclass(frozen=True)
class KillSwitchEvent:
    time: float
    source: str             # unrealized_loss | daily_loss
    reason: str
    positions_closed: int


class BacktestResult:
    """What a replay gave: the bars replayed and the open times of the first and last; the raw signals
    (before risk, as scan_history orders them); decisions (strategy -> reason code -> count); approved
    orders the broker refused, by reason; the kill-switch events; the trailing stop's moves; the final
    balance. `trades` (Trade objects in closing order) is built on first reading from `trade_log`."""

    __slots__ = ("bars", "decisions", "end", "final_balance", "kill_switches", "refused", "setup", "signals",
                 "start", "trade_log", "trailed")

    def __init__(self, *, setup: Setup, bars: int, start: int | None, end: int | None, signals: list[Signal],
                 decisions: dict[str, Counter], refused: Counter, trades: list[Trade] | TradeLog,
                 kill_switches: list[KillSwitchEvent], trailed: int, final_balance: float):
        self.setup, self.bars, self.start, self.end, self.signals = setup, bars, start, end, signals
        self.decisions, self.refused, self.kill_switches = decisions, refused, kill_switches
        self.trade_log = trades if isinstance(trades, TradeLog) else TradeLog(trades)
        self.trailed, self.final_balance = trailed, final_balance

    @property
    def trades(self) -> list[Trade]:
        return self.trade_log.trades

    def __repr__(self) -> str:
        return (f"BacktestResult(symbol={self.setup.symbol!r}, bars={self.bars}, trades={len(self.trade_log)}, "
                f"final_balance={self.final_balance!r})")


@dataclass(slots=True)
class _Position:
    strategy: str
    direction: Direction
    signal_time: int
    entry_time: float
    entry: float
    volume: float
    initial_sl: float
    sl: float
    tp: float
    entry_bar: int = 0
    exit_bar: int = 0          # where its prices close it (past the last bar replayed: never)
    exit_sl: float = 0.0       # its stop then (after the last bar's upkeep when never)
    exit_moves: int = 0        # trailing moves until then
    worst_pnl: float = 0.0     # its P&L at its worst price before it exits
    margin: float = 0.0        # the margin it holds
    moves: int = 0             # trailing moves counted when it closes
    part: int = -1             # its signal's position in _Parts, when opened from them


def run_backtest(history: Bars, setup: Setup, *, start: float | None = None, end: float | None = None,
                 progress: Progress | None = None, view: HistoryView | None = None,
                 emas: EmaStore | None = None) -> BacktestResult:
    """Replay the signal bars whose open time is in [start, end] (bounds optional).

    Bars before `start` are still read by the windows that need them. `view`: a
    HistoryView of `history` kept across calls; `emas`: a store of its history EMAs (see
    scan_history).
    """
    scanned = scan_history(history, list(setup.strategies), setup.params, setup.lookback, view=view, emas=emas)
    if view is None:
        give_back()   # the scan's per-window arrays
    result = _Replay(history, setup, scanned.signals, start, end).run(progress)
    if view is None:   # a single backtest: its rows, made next, reuse that memory (not an optimiser's trial)
        give_back()   # the replay's arrays
    return result


class _Replay:
    """The simulated account and book while a history is replayed.

    Event-driven. A position's life does not depend on the rest of the book: it fills at the
    quote of its signal's pass, its trailing stop moves by its own prices, and it exits where
    the bars reach its stop or target. So every signal's would-be position is followed with
    numpy, all at once, before the replay (`_Paths`). The replay then steps in Python only
    through the bars where something needs the whole book — an exit, or a signal bar whose
    signals the book does not refuse by itself — and checks the stop-out and the kill-switch
    in between with a bound first and numpy second. A signal the book refuses by itself
    (`risk.book_refusal`: the first checks of `risk.decide`, which read no market) changes
    nothing, so it is only counted: Python work per exit and per signal, not per bar.

    What does not depend on the book or the balance is computed per signal beforehand (`_Parts`,
    the vector forms of the rules): an empty book's decision is then `risk.reason_of` of those
    parts, today's P&L and the balance. When a book of one position refuses every signal (the
    default risk: one position per symbol), the replay is a chain (`_chain`): a position opens,
    the signals until its exit are marked refused and counted at the end, and the next may open
    at its exit bar or the next signal bar; the full step resumes wherever the chain breaks.
    """

    def __init__(self, history: Bars, setup: Setup, signals: list[Signal], start: float | None,
                 end: float | None):
        self.setup = setup
        self.limits = setup.rules.limits
        self.spec = setup.spec
        self.stop_distance = setup.spec.stops_level * setup.spec.point
        n = len(history)
        # numpy arrays, read one element at a time (as Python numbers) only on stepped bars.
        self.time = history.time
        self.open_, self.high, self.low = history.open, history.high, history.low
        self.latest = sim.latest_after_close(history)
        self.spread = sim.spreads_after_close(history, setup.spec.spread_points)

        self.first = max(setup.lookback - 1, 0 if start is None else int(np.searchsorted(history.time, start)))
        self.last = n - 1 if end is None else int(np.searchsorted(history.time, end, side="right")) - 1
        times = np.fromiter(map(attrgetter("bar_time"), signals), dtype=np.int64, count=len(signals))
        if self.first <= self.last:
            inside = (times >= self.time[self.first]) & (times <= self.time[self.last])
        else:
            inside = np.zeros(len(signals), dtype=bool)
        self.signals = list(compress(signals, inside.tolist()))
        bar_index = np.searchsorted(history.time, times[inside]).astype(np.int64)
        # At one bar, the strategies speak in the bot's order.
        order = {name: k for k, name in enumerate(setup.strategies)}
        rank = np.fromiter(map(order.__getitem__, map(attrgetter("strategy"), self.signals)), dtype=np.int64,
                           count=len(self.signals))
        sequence = np.lexsort((rank, bar_index)).tolist()   # by bar, then strategy (stable)
        self.signal_bars: list[int] = np.unique(bar_index).tolist()   # a bar's signals: _signals_at
        self.paths = _Paths(self, bar_index)
        self.fast = _Parts(self, bar_index, sequence, rank, times[inside])
        # runs of sequence positions [start, end) refused by a book of one, and its side (1: a buy)
        self.held_spans = (array("q"), array("q"), array("q"))
        # runs of sequence positions [start, end) decided on an empty book by their parts alone (_leap)
        self.decided_spans = (array("q"), array("q"))
        self._leaps: _Leaps | None = None   # built on the chain's first asking

        self.balance = setup.balance
        self.book: list[_Position] = []
        # Bounds that spare the exact margin and stop-out checks while they cannot act: the most the
        # book can lose before its positions exit (at their worst prices, a cent of slack each for
        # the rounding of sums) and the margin it holds, summed as positions open, 0 when it empties.
        self.loss_bound = 0.0
        self.held_bound = 0.0
        self.realized_by_day: dict[float, float] = defaultdict(float)
        self.kill_engaged_day: float | None = None
        self.decisions: dict[str, Counter] = {name: Counter() for name in setup.strategies}
        self.refused: Counter = Counter()
        self.trade_log = TradeLog()
        self._add_trade = self.trade_log.rows.append
        self.kill_switches: list[KillSwitchEvent] = []
        self.trailed = 0
        self.fixed_size: Sizing | None = None
        self.kill_switch_enabled = setup.rules.kill_switch.enabled
        # the upkeep of an empty book is the kill-switch's check alone (no position to trail): never acting?
        self.flat_idle = not self.kill_switch_enabled or kill_switch_idle_when_flat(setup.rules)

    LEAP = True   # the chain's routine steps taken by _leap (False: each by the chain's own code)

    # --- the loop ---------------------------------------------------------------
    def run(self, progress: Progress | None) -> BacktestResult:
        first, last = self.first, self.last
        total = max(0, last - first + 1)
        signal_bars = self.signal_bars
        n_signal_bars = len(signal_bars)
        next_signal = 0
        self._progress, self._reported = progress, first
        self._report_every = max(1, total // PROGRESS_STEPS)
        chain = self.fast.full[True] and self.fast.full[False]   # a book of one refuses every signal
        i = first
        while i <= last:
            while next_signal < n_signal_bars and signal_bars[next_signal] < i:
                next_signal += 1
            due = signal_bars[next_signal] if next_signal < n_signal_bars else last + 1
            if (chain and not self.book and due <= last and self.kill_engaged_day is None
                    and not risk.no_balance(self.balance, self.limits)):
                i, next_signal = self._chain(due, signal_bars, next_signal)
                continue
            if len(self.book) == 1 and self._full_book():
                # The book of one refuses every signal by itself (risk.book_refusals) until its exit, a
                # stop-out or the kill-switch: those of the bars before are only marked, counted at the end.
                due = self.book[0].exit_bar
                acts = self._acts_between(i, min(due, last + 1))
                if acts is not None:
                    due = acts
                end = bisect_left(signal_bars, due, next_signal)
                if end > next_signal:
                    positions = self.fast.first
                    self._hold(positions[next_signal], positions[end], self.book[0].direction == "buy")
                    next_signal = end
            elif self.book:
                # Until the next exit nothing changes the book but a stop-out or the kill-switch, and a
                # signal the book refuses by itself (risk.book_refusal) changes nothing: its bar need not
                # be stepped. The first signal bar with a signal the book does not refuse is due.
                due = min(p.exit_bar for p in self.book)
                refusals = []
                exposure = None
                while next_signal < n_signal_bars and signal_bars[next_signal] < due:
                    bar = signal_bars[next_signal]
                    exposure = exposure or self._book_exposure()
                    reasons = self._book_refusals(bar, next_signal, exposure)
                    if reasons is None:
                        due = bar
                        break
                    refusals.append((bar, reasons))
                    next_signal += 1
                acts = self._acts_between(i, min(due, last + 1))
                if acts is not None:
                    due = acts
                for bar, reasons in refusals:   # the bars before a stop-out or the kill-switch
                    if bar >= due:   # decided again once that has acted
                        next_signal = bisect_left(signal_bars, bar)
                        break
                    for strategy, reason in reasons:
                        self.decisions[strategy][reason] += 1
            else:
                acts = None
            if due > last:
                break
            i = due
            self._step(i)
            assert acts is None or not self.book, "the vector and scalar stop-out/kill-switch rules disagree"
            self._report(i)
            i += 1
        if total:
            self._close_all(last, self._now(last), END_EXIT)
        self._count_held()
        if progress is not None:
            progress(total, total)
        del self._progress
        return BacktestResult(
            setup=self.setup, bars=total, start=int(self.time[first]) if total else None,
            end=int(self.time[last]) if total else None, signals=self.signals, decisions=self.decisions,
            refused=self.refused, trades=self.trade_log, kill_switches=self.kill_switches, trailed=self.trailed,
            final_balance=self.balance)

    def _report(self, i: int) -> None:
        if self._progress is not None and i - self._reported >= self._report_every:
            self._progress(i - self.first + 1, self.last - self.first + 1)
            self._reported = i

    def _chain(self, i: int, signal_bars: list[int], next_signal: int) -> tuple[int, int]:
        """While the book holds at most one position and a book of one refuses every signal: a
        position opens at signal bar i, its bars until its exit e are not stepped (the signals there
        marked as refused, `_acts_between` checked), the next one may open at e or at the next
        signal bar after. The steps are `_step`'s: from signal bar i (the book empty, nothing done
        there yet) until the chain breaks (the kill-switch, no balance, a stop-out or a kill-switch
        ahead, a position open past the last bar). Returns the bar to step next (nothing done there
        yet) and the index in `signal_bars` of the first signal bar from it on."""
        last, time, f, limits = self.last, self.time, self.fast, self.limits
        n_signal_bars = len(signal_bars)
        leaps = self._leaps_for_chain()
        while True:
            if leaps is not None:   # the routine steps from here, without objects; the step it stops at below
                i, next_signal = self._leap(leaps, i, next_signal)
            # bar i, the book empty after its sync (no stop-out, the kill-switch off)
            if risk.no_balance(self.balance, limits):   # (after an exit) decided as _step decides
                return i, bisect_left(signal_bars, i, next_signal)
            now = int(time[i]) + AFTER_CLOSE_S
            today = day_start(now)
            if next_signal < n_signal_bars and signal_bars[next_signal] == i:
                self._decide_empty(i, next_signal, now, today)
            if self._progress is not None:
                self._report(i)
            book = self.book
            if (len(book) == 1 and book[0].part >= 0 and book[0].exit_bar <= last
                    and not any(self._may_act(i, book[0].exit_bar))):
                # The bound of bars i .. e-1 holds at this bar's upkeep too (the position's worst price
                # is taken from bar i on): neither this upkeep's kill-switch nor anything until e acts.
                e = book[0].exit_bar
            elif not book and self.flat_idle:   # nothing opened, and an empty book's upkeep never acts
                e = 0
            else:
                e = self._chain_upkeep(i, now, today)
                if e < 0:   # the chain breaks
                    return -e, bisect_left(signal_bars, -e, next_signal)
            if e == 0:   # nothing opened: the next signal bar (an exit bar is never 0: it follows a fill)
                next_signal = bisect_left(signal_bars, i + 1, next_signal)
                if next_signal == n_signal_bars or signal_bars[next_signal] > last:
                    return last + 1, next_signal
                i = signal_bars[next_signal]
                continue
            end = bisect_left(signal_bars, e, next_signal)
            start = bisect_left(signal_bars, i + 1, next_signal, end)
            if end > start:   # the signal bars between: refused by the book of one
                self._hold(f.first[start], f.first[end], self.book[0].direction == "buy")
            i, next_signal = e, end
            # its sync: the position exits there, as `_exits` closes it (`_Parts.exit_price`)
            p = self.book[0]
            p.sl, p.moves = p.exit_sl, p.exit_moves
            self._close(p, f.exit_price[p.part], f.exit_reason[p.part], exit_time(int(time[i]), p.entry_time))
            self.book = []
            self.loss_bound = self.held_bound = 0.0

    def _leaps_for_chain(self) -> _Leaps | None:
        """The chain's routine steps, precomputed (`_Leaps`), when every order has the one fixed size."""
        if not self.LEAP or self.setup.rules.risk_percent is not None:
            return None
        if self._leaps is None and self._fixed_size().ok:
            self._leaps = _Leaps(self, self._fixed_size().volume)
        return self._leaps

    def _leap(self, leaps: _Leaps, i: int, next_signal: int) -> tuple[int, int]:
        """The chain's steps from bar i (the book empty, nothing done there yet) while each is routine:
        the book stays empty through the bar, or one position opens at the first signal its parts
        approve (`_Leaps.opens`), fits the free margin, exits by its prices at a bar e of the replay,
        and no stop-out or kill-switch can act until then (the bounds of `_may_act`). Such a step
        decides as `_decide_empty`, holds as `_chain`, and closes as `_close`, with numbers worked out
        beforehand, and the decisions are marked, counted at the end. Returns the first step that is
        not routine (nothing done there yet), for `_chain` to take as it always did."""
        signal_bars, last, f, L = self.signal_bars, self.last, self.fast, leaps
        n_signal_bars = len(signal_bars)
        limits = self.limits
        capped = risk.has_daily_loss_cap(limits)
        kill = self.kill_switch_enabled
        realized_by_day, add_trade, report = self.realized_by_day, self._add_trade, self._progress is not None
        decided_starts, decided_ends = self.decided_spans
        held_starts, held_ends, held_sides = self.held_spans
        first = f.first
        balance, trailed = self.balance, self.trailed
        while True:
            if risk.no_balance(balance, limits):   # (after an exit) as _chain decides it, before anything else
                break
            if next_signal == n_signal_bars or signal_bars[next_signal] != i:   # bar i has no signal
                if not self.flat_idle or next_signal == n_signal_bars or signal_bars[next_signal] > last:
                    break
                if report:
                    self._report(i)
                i = signal_bars[next_signal]
            m = next_signal
            if capped and risk.daily_loss_hit(realized_by_day.get(L.today[m], 0.0) + 0,
                                              risk.daily_loss_cap(limits, balance)):
                break   # the parts' reasons need today's P&L: decided in full
            q = L.opens[m]
            if q < 0:   # nothing opens: the bar's signals decided, the empty book's upkeep idle
                if not self.flat_idle or m + 1 == n_signal_bars or signal_bars[m + 1] > last:
                    break
                decided_starts.append(first[m])
                decided_ends.append(first[m + 1])
                if report:
                    self._report(i)
                next_signal = m + 1
                i = signal_bars[next_signal]
                continue
            e = L.exit_bar[m]
            if e > last or L.needed[m] > balance:
                break
            if any(self._bound_acts(L.worst_pnl[m], balance, kill, L.today[m], L.last_day[m])):
                break   # _may_act's bound, bars i .. e-1
            # routine: decided up to the opening signal, the rest held until e, closed at e
            decided_starts.append(first[m])
            decided_ends.append(q + 1)
            end = L.next_signal[m]
            if first[end] > q + 1:
                held_starts.append(q + 1)
                held_ends.append(first[end])
                held_sides.append(L.buy[m])
            if report:
                self._report(i)
            pnl = L.pnl[m]
            balance += pnl
            realized_by_day[L.exit_day[m]] += pnl
            trailed += L.moves[m]
            add_trade((L.strategy[m], L.direction[m], L.signal_time[m], L.now[m], L.exit_time[m], L.volume,
                       L.entry[m], L.exit_price[m], L.sl[m], L.tp[m], L.exit_sl[m], L.exit_reason[m], pnl))
            i, next_signal = e, end
        self.balance, self.trailed = balance, trailed
        return i, next_signal

    def _chain_upkeep(self, i: int, now: int, today: float) -> int:
        """The chain's bar i after its decisions, stepped in full: its upkeep, then the check of the
        bars until its position's exit e. Returns e; 0 when the book is empty; -(the bar to step
        next) when the chain breaks there."""
        self._upkeep(i, now, today)
        if self.kill_engaged_day is not None:
            return -(i + 1)
        if not self.book:
            return 0
        e = self.book[0].exit_bar
        if len(self.book) > 1 or self.book[0].part < 0 or e > self.last or self._acts_between(i + 1, e) is not None:
            return -(i + 1)
        return e

    def _signal_bar(self, i: int) -> int:
        """Bar i's index in `signal_bars`, -1 when it has no signal."""
        m = bisect_left(self.signal_bars, i)
        return m if m < len(self.signal_bars) and self.signal_bars[m] == i else -1

    def _signals_of(self, m: int) -> list[tuple[int, Signal]]:
        """(k, signal) of each signal of the m-th signal bar in the replay's order (by strategy): its
        positions in `_Parts` (built on asking, not for every bar up front)."""
        f, signals = self.fast, self.signals
        return [(k, signals[k]) for k in f.k[f.first[m]:f.first[m + 1]]]

    def _now(self, i: int) -> int:
        return int(self.time[i]) + AFTER_CLOSE_S

    def _step(self, i: int) -> None:
        """Bar i as one run-once pass at its close: the broker's sync, the decisions, the upkeep."""
        now = int(self.time[i]) + AFTER_CLOSE_S
        today = day_start(now)
        self._exits(i)
        if self.book and self.balance <= self.loss_bound and stopped_out(self._equity(float(self.latest[i]))):
            self._stop_out(i, now)
        if self.kill_engaged_day is not None and today > self.kill_engaged_day:
            self.kill_engaged_day = None   # re-armed at UTC midnight (see the module's notes)
        m = self._signal_bar(i)
        if m >= 0:
            if not self.book and self.kill_engaged_day is None and not risk.no_balance(self.balance, self.limits):
                self._decide_empty(i, m, now, today)
            else:
                self._decide(i, now, today, self._signals_of(m))
        self._upkeep(i, now, today)

    # --- the book empty or of one: decisions from their precomputed parts (_Parts) ---------------
    def _full_book(self) -> bool:
        """Whether the book of one position refuses every signal by itself (`_Parts.held`)."""
        return (self.kill_engaged_day is None and not risk.no_balance(self.balance, self.limits)
                and self.fast.full[self.book[0].direction == "buy"])

    def _decide_empty(self, i: int, m: int, now: float, today: float) -> None:
        """`_decide` on an empty book, the kill-switch off and a balance to trade on: each reason
        from the signal's precomputed parts (`risk.reason_of`); bar i is the m-th signal bar."""
        f, limits = self.fast, self.limits
        # today's P&L as in _decide: realized today, the empty book's unrealized (0)
        pnl_today = self.realized_by_day.get(today, 0.0) + 0   # + _unrealized of the empty book, the int 0
        a, b = f.first[m], f.first[m + 1]
        for q in range(a, b):
            reason = risk.reason_of(f.empty[q], pnl_today, self.balance, f.quote_code[q], limits)
            self.decisions[f.strategy[q]][reason] += 1
            if reason is risk.APPROVED and self._open(i, now, self.signals[f.k[q]], f.k[q], f.sl[q], f.tp[q],
                                                      f.stops_ok[q], f.entry[q]):
                self.book[-1].part = q
                if q + 1 < b:   # the rest of the bar meet the book of one
                    if self._full_book():
                        self._hold(q + 1, b, self.book[0].direction == "buy")
                    else:
                        self._decide(i, now, today, self._signals_of(m)[q + 1 - a:], pnl_today)
                return

    def _hold(self, start: int, end: int, buy: bool) -> None:
        """Mark the signals at sequence positions start .. end-1 as refused by a book of one (a buy or not)."""
        starts, ends, sides = self.held_spans
        starts.append(start)
        ends.append(end)
        sides.append(buy)

    def _count_held(self) -> None:
        """Count the decisions of the signals marked: refused by a book of one (`held_spans`), and
        decided on an empty book by their parts alone (`decided_spans`, `_leap`)."""
        f = self.fast
        size = len(f.k)
        starts, ends, sides = (np.frombuffer(a, dtype=np.int64) for a in self.held_spans)
        codes, inside = [], []
        if len(starts):
            held = _inside(size, starts, ends)
            buy_held = _inside(size, starts[sides == 1], ends[sides == 1])
            codes.append(np.where(buy_held, f.held[True], f.held[False])[held])
            inside.append(held)
        starts, ends = (np.frombuffer(a, dtype=np.int64) for a in self.decided_spans)
        if len(starts):
            decided = _inside(size, starts, ends)
            codes.append(f.empty_reasons()[decided])
            inside.append(decided)
        reasons = (*risk.REASONS, risk.APPROVED)   # risk.APPROVED_CODE: the last
        names = self.setup.strategies
        for code, where in zip(codes, inside):
            pairs = f.strategy_index[where] * len(reasons) + code
            found, counts = np.unique(pairs, return_counts=True)
            for pair, count in zip(found.tolist(), counts.tolist()):
                self.decisions[names[pair // len(reasons)]][reasons[pair % len(reasons)]] += count

    # --- signal bars the book refuses by itself ------------------------------------------
    def _book_exposure(self) -> risk.Exposure:
        """The Exposure of a signal as far as `risk.book_refusal` reads it (the book, the balance,
        the kill-switch); the market's fields are not built."""
        return build_exposure(((ACCOUNT, self.setup.symbol, p.direction) for p in self.book),
                              symbol=self.setup.symbol, balance=self.balance, pnl_today=0.0, spread_points=None,
                              kill_switch_engaged=self.kill_engaged_day is not None)

    def _book_refusals(self, i: int, m: int, exposure: risk.Exposure) -> list[tuple[str, str]] | None:
        """(strategy, reason) of each signal of bar i (the m-th signal bar) when the book as it stands
        (`exposure`, unchanged until bar i) refuses them all by itself; else None."""
        now = self._now(i)
        engaged_day = self.kill_engaged_day
        if engaged_day is not None and day_start(now) > engaged_day:   # re-armed by then
            exposure = dataclasses.replace(exposure, kill_switch_engaged=False)
        out = []
        for _, s in self._signals_of(m):
            reason = risk.book_refusal(s, exposure, self.limits, now)
            if reason is None:
                return None
            out.append((s.strategy, reason))
        return out

    # --- between events: the stop-out and the kill-switch -----------------------------------
    def _acts_between(self, i: int, j: int) -> int | None:
        """The first bar of i .. j-1 where the broker's stop-out (at the sync) or the kill-switch
        (at the upkeep) acts, the book unchanged there (its step then acts as said); else None."""
        if j <= i:
            return None
        may_stop, may_kill = self._may_act(i, j)
        if not (may_stop or may_kill):
            return None
        r = self.setup.rules
        price = self.latest[i:j]
        cs = self.spec.contract_size
        unrealized = np.zeros(j - i)
        for p in self.book:   # the same sum, in the same order, as _equity and _unrealized
            unrealized = unrealized + profit(p.direction, p.entry, price, p.volume, cs)
        trips = stopped_out(self.balance + unrealized) if may_stop else np.zeros(j - i, dtype=bool)
        if may_kill:
            days = day_starts(self.time[i:j] + AFTER_CLOSE_S)
            realized_today = np.zeros(j - i)
            for d in np.unique(days).tolist():
                realized_today[days == d] = self.realized_by_day.get(float(d), 0.0)
            trips = trips | kill_switch_trips(unrealized=unrealized, realized_today=realized_today,
                                              balance=self.balance, rules=r)
        if not trips.any():
            return None
        return i + int(np.argmax(trips))

    def _may_act(self, i: int, j: int) -> tuple[bool, bool]:
        """Whether the stop-out, and the kill-switch, may act at bars i .. j-1 (j > i), the book
        unchanged: a bound with every position at its worst price before its exit, today's realized
        P&L at the worst of the days spanned (a cent of slack for the rounding of sums)."""
        book = self.book
        # a book of one: its P&L alone (the sum's 0 + x differs from x only in the sign of a zero,
        # which the cent taken off makes no matter)
        worst_pnl = book[0].worst_pnl if len(book) == 1 else sum(p.worst_pnl for p in book)
        kill = self.kill_switch_enabled and self.kill_engaged_day is None
        days = ((day_start(int(self.time[i]) + AFTER_CLOSE_S), day_start(int(self.time[j - 1]) + AFTER_CLOSE_S))
                if kill else (0.0, 0.0))
        return self._bound_acts(worst_pnl, self.balance, kill, *days)

    def _bound_acts(self, worst_pnl: float, balance: float, kill: bool, day: float,
                    last_day: float) -> tuple[bool, bool]:
        """Whether the stop-out, and the kill-switch (when `kill`: armed), may act while the book's P&L
        is no worse than `worst_pnl` (a cent of slack per position, LOSS_SLACK, for the rounding of
        sums) and today's realized P&L no worse than on any day from `day` to `last_day`."""
        worst = min(worst_pnl - LOSS_SLACK, 0.0)
        may_stop = bool(stopped_out(balance + worst))
        may_kill = kill and kill_switch_reason(unrealized=worst, realized_today=self._worst_realized(day, last_day),
                                               balance=balance, rules=self.setup.rules) is not None
        return may_stop, may_kill

    def _worst_realized(self, day: float, last_day: float) -> float:
        """The lowest P&L realized on a day from `day` to `last_day` (day starts), as it stands."""
        realized = self.realized_by_day.get(day, 0.0)
        while day < last_day:
            day += DAY_SECONDS
            realized = min(realized, self.realized_by_day.get(day, 0.0))
        return realized

    # --- 1. the broker's sync ---------------------------------------------------------
    def _exits(self, i: int) -> None:
        if not self.book:
            return
        o, h, lo = float(self.open_[i]), float(self.high[i]), float(self.low[i])
        t = int(self.time[i])
        still_open = []
        for p in self.book:
            hit = None
            if p.exit_bar == i:   # its stop as the trailing left it, then the exchange's exit
                p.sl, p.moves = p.exit_sl, p.exit_moves
                hit = bar_exit(p.direction, p.sl, p.tp, o, h, lo)
            if hit is None:
                still_open.append(p)
            else:
                self._close(p, hit[0], hit[1], exit_time(t, p.entry_time))
        self.book = still_open
        if not still_open:
            self.loss_bound = self.held_bound = 0.0

    def _stop_out(self, i: int, now: float) -> None:
        """The broker closes the book at the sync of bar i: the stops as bar i-1's upkeep left them."""
        for p in self.book:
            p.sl, p.moves = self.paths.stop_after(p, i - 1)
        self._close_all(i, now, STOP_OUT_EXIT)

    # --- 2. signals and risk decisions --------------------------------------------------
    def _decide(self, i: int, now: float, today: float, signals: list[tuple[int, Signal]],
                pnl_today: float | None = None) -> None:
        # Today's P&L as the ledger holds it during the pass: the positions open
        # before it valued at the latest price; those it opens count 0 until its upkeep.
        if pnl_today is None:
            pnl_today = self.realized_by_day.get(today, 0.0) + self._unrealized(float(self.latest[i]))
        quote = self._quote(i)   # what the paper broker quotes then: the stops are checked against it
        exposure = None
        for k, s in signals:
            if exposure is None:   # built again only once an order has changed the book
                exposure = build_exposure(((ACCOUNT, self.setup.symbol, p.direction) for p in self.book),
                                          symbol=self.setup.symbol, balance=self.balance, pnl_today=pnl_today,
                                          spread_points=float(self.spread[i]),
                                          kill_switch_engaged=self.kill_engaged_day is not None, quote=quote,
                                          price_digits=self.spec.digits, stops_min_distance=self.stop_distance)
            decision = risk.decide(s, exposure, self.limits, now)
            self.decisions[s.strategy][decision.reason] += 1
            if decision.approved:
                sl, tp = self.spec.round_price(s.sl), self.spec.round_price(s.tp)
                bid, ask = quote
                if self._open(i, now, s, k, sl, tp,
                              stops_valid(s.direction, sl, tp, bid=bid, ask=ask, min_distance=self.stop_distance),
                              fill_price(s.direction, bid, ask)):
                    exposure = None

    def _open(self, i: int, now: float, s: Signal, k: int, sl: float, tp: float, stops_ok: bool,
              price: float) -> bool:
        """Whether the approved signal opened a position (else the broker refused it): its rounded stops,
        whether bar i's quote takes them, and its fill price at that quote."""
        spec = self.spec
        sized = self._size(s)
        if not sized.ok:   # run-once records the order and refuses it, with this reason
            self.refused[sized.reason] += 1
            return False
        volume = sized.volume
        if not stops_ok:
            self.refused[INVALID_STOPS] += 1
            return False
        needed = margin(price, volume, spec.contract_size, self.setup.leverage)
        if (needed > self.balance - self.loss_bound - self.held_bound   # else the free margin holds it
                and no_money(needed, self._free_margin(float(self.latest[i])))):
            self.refused[NO_MONEY] += 1
            return False
        exit_bar, exit_sl, exit_moves, worst_price = self.paths.of(k)
        p = _Position(   # by position (quicker than by keyword): _Position's fields in order, up to margin
            s.strategy, s.direction, s.bar_time, now, price, volume, sl, sl, tp, i, exit_bar, exit_sl, exit_moves,
            profit(s.direction, price, worst_price, volume, spec.contract_size), needed)
        self.book.append(p)
        self.loss_bound += max(-p.worst_pnl, 0.0) + LOSS_SLACK
        self.held_bound += needed
        return True

    def _fixed_size(self) -> Sizing:
        """The sizing of every order when the qty is fixed (no risk_percent)."""
        if self.fixed_size is None:
            self.fixed_size = size_order(qty=self.setup.qty, spec=self.spec)
        return self.fixed_size

    def _size(self, s: Signal) -> Sizing:
        rules = self.setup.rules
        if rules.risk_percent is None:   # the fixed qty: one sizing for every order
            return self._fixed_size()
        return size_order(qty=self.setup.qty, spec=self.spec, risk_percent=rules.risk_percent,
                          balance=self.balance, risk_per_unit=s.risk)

    # --- 3. position upkeep --------------------------------------------------------------
    def _upkeep(self, i: int, now: float, today: float) -> None:
        # The trailing stops move as each position's path says (`_Paths`); read when it closes.
        if self.kill_switch_enabled and self.kill_engaged_day is None:
            found = kill_switch_reason(unrealized=self._unrealized(float(self.latest[i])),
                                       realized_today=self.realized_by_day.get(today, 0.0), balance=self.balance,
                                       rules=self.setup.rules)
            if found is not None:
                for p in self.book:   # the stops as the upkeep of bar i leaves them
                    p.sl, p.moves = self.paths.stop_after(p, i)
                closed = len(self.book)
                self._close_all(i, now, KILL_SWITCH_EXIT)
                self.kill_engaged_day = today
                self.kill_switches.append(KillSwitchEvent(now, found[0], found[1], closed))

    # --- the book ---------------------------------------------------------------------------
    def _quote(self, i: int) -> tuple[float, float]:
        return sim.quote(float(self.latest[i]), float(self.spread[i]), self.spec.point)

    def _unrealized(self, price: float) -> float:
        if not self.book:
            return 0   # the empty sum, as below
        cs = self.spec.contract_size
        return sum(profit(p.direction, p.entry, price, p.volume, cs) for p in self.book)

    def _equity(self, price: float) -> float:
        cs = self.spec.contract_size
        return sim.equity(self.balance, (profit(p.direction, p.entry, price, p.volume, cs) for p in self.book))

    def _free_margin(self, price: float) -> float:
        return sim.free_margin(self._equity(price), sum(p.margin for p in self.book))

    def _close_all(self, i: int, now: float, reason: str) -> None:
        bid, ask = self._quote(i)
        for p in self.book:
            if reason == END_EXIT:   # never exited: its stop after the last bar's upkeep
                p.sl, p.moves = p.exit_sl, p.exit_moves
            self._close(p, close_price(p.direction, bid, ask), reason, now)
        self.book = []
        self.loss_bound = self.held_bound = 0.0

    def _close(self, p: _Position, price: float, reason: str, when: float) -> None:
        self.trailed += p.moves
        pnl = profit(p.direction, p.entry, price, p.volume, self.spec.contract_size)
        self.balance += pnl
        self.realized_by_day[day_start(when)] += pnl
        self._add_trade((   # Trade's fields in order (TRADE_NAMES)
            p.strategy, p.direction, p.signal_time, p.entry_time, when, p.volume, p.entry, price, p.initial_sl, p.tp,
            p.sl, reason, pnl))


class _Parts:
    """Per signal, in the replay's order (by bar, then strategy; position q), the parts of its
    decision and order that do not depend on the book or the balance, in the vector forms of
    the rules: `risk.book_refusals` against an empty book and against a book of one position
    (`held`, by the side of that position), `risk.quote_refusals`, the order's rounded stops,
    whether the quote takes them (`stops.stops_valid`) and the fill price (`sim.fill_price`)."""

    def __init__(self, replay: _Replay, bar_index: np.ndarray, sequence: list[int], rank: np.ndarray,
                 bar_time: np.ndarray):
        """`rank`: each signal's strategy's place in the bot's order; `bar_time`: its bar's open time."""
        setup, signals, paths = replay.setup, replay.signals, replay.paths
        self.k = array("q", sequence)
        self.strategy = [signals[k].strategy for k in sequence]
        self.strategy_index = rank[sequence] if len(sequence) else np.zeros(0, dtype=np.int64)
        bars = bar_index[sequence] if len(sequence) else np.zeros(0, dtype=np.int64)
        # the first position of each signal bar, in order, then the end: the m-th's are first[m] .. first[m+1]-1
        firsts = np.flatnonzero(np.diff(bars, prepend=-1)) if len(bars) else np.zeros(0, dtype=np.int64)
        self.first = _compact("q", np.append(firsts, len(bars)))
        buy, sl, tp = (a[sequence] for a in (paths.buy, paths.order_sl, paths.order_tp))
        score = np.fromiter(map(attrgetter("score"), signals), dtype=np.float64, count=len(signals))[sequence]
        age = (replay.time[bars] + AFTER_CLOSE_S) - (BAR_SECONDS + bar_time[sequence])
        symbol, limits = setup.symbol, setup.rules.limits

        def book(items: tuple[tuple[int, str, str], ...]) -> np.ndarray:   # any balance to trade on
            exposure = build_exposure(items, symbol=symbol, balance=math.inf, pnl_today=0.0, spread_points=None)
            return risk.book_refusals(age, score, buy, exposure, limits)

        self.empty = _compact("q", book(()))
        self.held = {True: book(((ACCOUNT, symbol, "buy"),)), False: book(((ACCOUNT, symbol, "sell"),))}
        self.full = {side: bool((codes >= 0).all()) for side, codes in self.held.items()}
        spread, bid, ask, valid = (a[sequence] for a in (paths.spread, paths.bid, paths.ask, paths.stops_ok))
        self.quote_code = _compact("q", risk.quote_refusals(buy, sl, tp, spread_points=spread, bid=bid, ask=ask,
                                                             stops_min_distance=replay.stop_distance, limits=limits,
                                                             valid=valid))
        self.stops_ok = _compact("q", valid)
        self.entry = _compact("d", paths.entry[sequence])
        self.sl, self.tp = _compact("d", sl), _compact("d", tp)
        # how each would-be position exits at its exit bar (`_Paths`), when that is in the replay
        last = replay.last
        at = np.minimum(paths.exit_bar[sequence], last) if len(sequence) else np.zeros(0, dtype=np.int64)
        price, is_sl = sim.bar_exits(buy, paths.exit_sl[sequence], tp, replay.open_[at], replay.high[at],
                                     replay.low[at])
        self.exit_price = _compact("d", price)
        self.exit_reason = [("tp", "sl")[hit] for hit in is_sl.tolist()]   # two strings, shared
        self._empty_reasons: np.ndarray | None = None

    def empty_reasons(self) -> np.ndarray:
        """Each signal's reason code on an empty book below any daily loss cap
        (`risk.reasons_without_daily_loss`; APPROVED_CODE for an approval), made once."""
        if self._empty_reasons is None:
            self._empty_reasons = risk.reasons_without_daily_loss(
                *(np.frombuffer(a, dtype=np.int64) for a in (self.empty, self.quote_code)))
        return self._empty_reasons


class _Leaps:
    """Per signal bar m of the replay (`signal_bars[m]`), what a routine step of the chain from it
    needs (`_Replay._leap`), as Python lists: the sequence position q of the signal that opens on an
    empty book (the first whose parts approve it, `risk.reason_of` without a daily loss; -1 when
    none), and of that position, its exit bar e, the first signal bar from e on, its fill, its
    trade's numbers (`sim.profit` at its exit price, at its worst price before e) and the margin it
    holds (`sim.margin`), for the one fixed volume."""

    def __init__(self, replay: _Replay, volume: float):
        f, paths, spec = replay.fast, replay.paths, replay.spec
        self.volume = volume
        first = np.frombuffer(f.first, dtype=np.int64)
        n_bars = len(first) - 1
        # approved on an empty book (risk.reason_of below any daily loss cap), and taken by the broker: the
        # quote takes the stops (risk_stops_beyond_quote refuses the others first; _open would refuse them)
        approved = (f.empty_reasons() == risk.APPROVED_CODE) & (np.frombuffer(f.stops_ok, dtype=np.int64) != 0)
        q_approved = np.flatnonzero(approved)
        bar_of = np.searchsorted(first, q_approved, side="right") - 1
        bars_with, at = np.unique(bar_of, return_index=True)
        opens = np.full(n_bars, -1, dtype=np.int64)
        opens[bars_with] = q_approved[at]
        self.opens = opens.tolist()
        signal_bars = np.asarray(replay.signal_bars, dtype=np.int64)
        time, last = replay.time, replay.last
        now = time[signal_bars] + AFTER_CLOSE_S
        self.today = day_starts(now).tolist()
        # of the position each bar opens (zeros where none: never read)
        q = np.where(opens >= 0, opens, 0)
        k = np.frombuffer(f.k, dtype=np.int64)[q]
        buy = paths.buy[k]
        exit_bar = paths.exit_bar[k]
        self.exit_bar = exit_bar.tolist()
        self.next_signal = np.searchsorted(signal_bars, exit_bar).tolist()
        before_exit = time[np.clip(exit_bar - 1, 0, last)] + AFTER_CLOSE_S
        self.last_day = day_starts(before_exit).tolist()
        exit_time = sim.exit_times(time[np.minimum(exit_bar, last)], now)
        self.exit_day = day_starts(exit_time).tolist()
        entry = np.frombuffer(f.entry, dtype=np.float64)[q]
        exit_price = np.frombuffer(f.exit_price, dtype=np.float64)[q]
        cs = spec.contract_size

        def pnl(price: np.ndarray) -> np.ndarray:
            return np.where(buy, profit("buy", entry, price, volume, cs), profit("sell", entry, price, volume, cs))

        self.pnl = pnl(exit_price).tolist()
        self.worst_pnl = pnl(paths.worst[k]).tolist()
        self.needed = margin(entry, volume, cs, replay.setup.leverage).tolist()
        self.moves = paths.moves[k].tolist()
        self.exit_sl = paths.exit_sl[k].tolist()
        self.buy = buy.tolist()
        signals = replay.signals
        chosen = [signals[j] for j in k.tolist()]
        self.strategy = [s.strategy for s in chosen]
        self.direction = [s.direction for s in chosen]
        self.signal_time = [s.bar_time for s in chosen]
        self.now, self.exit_time = now.tolist(), exit_time.tolist()
        self.entry, self.exit_price = entry.tolist(), exit_price.tolist()
        self.sl = np.frombuffer(f.sl, dtype=np.float64)[q].tolist()
        self.tp = np.frombuffer(f.tp, dtype=np.float64)[q].tolist()
        self.exit_reason = [f.exit_reason[j] for j in q.tolist()]


def _inside(size: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which of positions 0 .. size-1 lie in one of the spans [start, end) (spans never overlap)."""
    marks = np.zeros(size + 1, dtype=np.int64)
    np.add.at(marks, starts, 1)
    np.add.at(marks, ends, -1)
    inside: np.ndarray = np.cumsum(marks[:-1]) > 0
    return inside


def _compact(code: str, values: np.ndarray) -> array:
    """A numpy array as a Python array: read one element at a time as quickly as a list, and as
    compact as numpy (a list of floats takes four times the memory)."""
    out = array(code)
    out.frombytes(np.ascontiguousarray(values, dtype=np.int64 if code == "q" else np.float64).tobytes())
    return out


class _Market:
    """What the paths read of the replay (a plain class: no dataclass to build at import)."""

    __slots__ = ("high", "last", "latest", "low", "open_", "setup", "spec", "spread", "stop_distance")

    def __init__(self, replay: _Replay):
        self.setup, self.spec, self.stop_distance, self.last = (replay.setup, replay.spec, replay.stop_distance,
                                                                replay.last)
        self.latest, self.spread = replay.latest, replay.spread
        self.open_, self.high, self.low = replay.open_, replay.high, replay.low


class _Paths:
    """Each in-range signal's would-be position, followed with numpy from its fill onward:
    where the fill model closes it, its trailing stop then and how often it moved, and its
    worst price before (for the kill-switch's bound). Positions are followed all together,
    bar after bar, while many are open; the last few each in doubling windows of bars.

    The rules are those of the live upkeep and the simulated exchange, in their vector forms:
    `upkeep.trailing_candidates`, the price grid of `SymbolSpec.round_price`, `stops.stops_valid`
    at each bar's `sim.quote`, `sim.exit_bars`. A stop moves to the rounded candidate when that is
    past it: levels on the price grid differ by a point or more, so the exchange's half-point
    "no change" (`sim.same_level`) and the 1e-12 tests of `upkeep.trailing_stop` reduce to "past"."""

    FEW = 16   # positions left: each then followed on its own

    def __init__(self, replay: _Replay, bar_index: np.ndarray):
        # what the paths read of the replay (not the replay itself: no cycle, so the replay's
        # arrays go as soon as it ends, not at a later garbage collection)
        self.r = _Market(replay)
        self._listed: tuple[list, list, list, list] | None = None
        n = len(replay.signals)
        self.exit_bar = np.full(n, replay.last + 1, dtype=np.int64)
        self.exit_sl = np.zeros(n)
        self.moves = np.zeros(n, dtype=np.int64)
        self.worst = np.zeros(n)
        # each order's stops as sent (rounded) and its side, per signal: read by _Parts too
        spec = replay.spec
        signals = replay.signals
        self.order_sl = sl = _round_prices(np.fromiter(map(attrgetter("sl"), signals), dtype=np.float64, count=n),
                                           spec.digits)
        self.order_tp = tp = _round_prices(np.fromiter(map(attrgetter("tp"), signals), dtype=np.float64, count=n),
                                           spec.digits)
        self.buy = buy = np.array(list(map("buy".__eq__, map(attrgetter("direction"), signals))), dtype=bool)
        # the spread and quote of its signal's pass, whether they take the order's stops (else it never
        # fills) and where it fills: read by _Parts too
        self.spread = replay.spread[bar_index]
        self.bid, self.ask = bid, ask = sim.quote(replay.latest[bar_index], self.spread, spec.point)
        self.stops_ok = risk.stops_valid_each(buy, sl, tp, bid=bid, ask=ask, min_distance=replay.stop_distance)
        self.entry = np.where(buy, fill_price("buy", bid, ask), fill_price("sell", bid, ask))
        if not n:
            return
        for mine in (buy, ~buy):
            rows = np.flatnonzero(mine & self.stops_ok)
            if len(rows):
                self._follow("buy" if mine is buy else "sell", rows, bar_index[rows], self.entry[rows], sl[rows],
                             tp[rows])

    def of(self, k: int) -> tuple[int, float, int, float]:
        """(exit bar, stop then, trailing moves until then, worst price before) of signal k."""
        if self._listed is None:   # read per opened position: as Python numbers, converted at once
            self._listed = (self.exit_bar.tolist(), self.exit_sl.tolist(), self.moves.tolist(), self.worst.tolist())
        exit_bar, exit_sl, moves, worst = self._listed
        return exit_bar[k], exit_sl[k], moves[k], worst[k]

    def stop_after(self, p: _Position, k: int) -> tuple[float, int]:
        """The stop of position p after the upkeep of bar k (k before its exit), and its moves."""
        trailing = self.r.setup.rules.trailing
        if not trailing.enabled:
            return p.initial_sl, 0
        path = self._window(p.direction, np.array([p.entry]), np.array([p.initial_sl]), np.array([p.tp]),
                            p.entry_bar, k + 1, p.initial_sl)
        return float(path[-1]), int(np.count_nonzero(path[1:] != path[:-1]))

    # -- following --
    def _trail(self, direction: Direction, entry, initial_sl, sl, tp, bars):
        """The stops after the upkeep of `bars` (one bar per position), and which moved."""
        t, r = self.r.setup.rules.trailing, self.r
        price = r.latest[bars]
        candidate = upkeep.trailing_candidates(direction, entry, initial_sl, price, activate_r=t.activate_r,
                                               distance_r=t.distance_r)
        level = _round_prices(candidate, r.spec.digits)
        bid, ask = sim.quote(price, r.spread[bars], r.spec.point)
        moved = stops_valid(direction, level, tp, bid=bid, ask=ask, min_distance=r.stop_distance)
        moved &= (level > sl) if direction == "buy" else (level < sl)   # NaN (not active) compares False
        return np.where(moved, level, sl), moved

    def _follow(self, direction: Direction, rows, bars, entry, initial_sl, tp) -> None:
        r = self.r
        trailing = r.setup.rules.trailing.enabled
        worse = np.minimum if direction == "buy" else np.maximum
        sl, moves = initial_sl.copy(), np.zeros(len(rows), dtype=np.int64)
        k = bars.copy()
        if trailing:   # the upkeep of the pass that opened it
            sl, moved = self._trail(direction, entry, initial_sl, sl, tp, k)
            moves += moved
        worst = r.latest[k]
        while len(rows):
            if len(rows) <= self.FEW:
                for m in range(len(rows)):
                    self._follow_one(direction, int(rows[m]), int(k[m]) + 1, float(entry[m]),
                                     float(initial_sl[m]), float(sl[m]), float(tp[m]), int(moves[m]),
                                     float(worst[m]))
                return
            k = k + 1
            past = k > r.last
            kk = np.minimum(k, r.last)
            closes = past | exit_bars(direction, sl, tp, r.open_[kk], r.high[kk], r.low[kk])
            if closes.any():
                done = rows[closes]
                self.exit_bar[done] = np.where(past[closes], r.last + 1, k[closes])
                self.exit_sl[done], self.moves[done], self.worst[done] = sl[closes], moves[closes], worst[closes]
                keep = ~closes
                rows, k, entry, initial_sl, sl, tp, moves, worst = (
                    a[keep] for a in (rows, k, entry, initial_sl, sl, tp, moves, worst))
            if trailing and len(rows):
                sl, moved = self._trail(direction, entry, initial_sl, sl, tp, k)
                moves += moved
            worst = worse(worst, r.latest[k])

    def _follow_one(self, direction: Direction, row: int, k: int, entry: float, initial_sl: float, sl: float, tp: float,
                    moves: int, worst: float) -> None:
        """One position from bar k on (its stop `sl` before k), in windows that double."""
        r = self.r
        trailing = r.setup.rules.trailing.enabled
        size = 64
        while k <= r.last:
            j = min(r.last + 1, k + size)
            path = (self._window(direction, np.array([entry]), np.array([initial_sl]), np.array([tp]), k, j, sl)
                    if trailing else np.full(j - k + 1, sl))
            closes = exit_bars(direction, path[:-1], tp, r.open_[k:j], r.high[k:j], r.low[k:j])
            x = int(np.argmax(closes)) if closes.any() else j - k   # bars before the exit
            held = path[:x + 1]
            moves += int(np.count_nonzero(held[1:] != held[:-1]))
            sl = float(held[-1])
            if x:
                seen = r.latest[k:k + x]
                worst = float(min(worst, seen.min()) if direction == "buy" else max(worst, seen.max()))
            if x < j - k:
                self.exit_bar[row] = k + x
                break
            k, size = j, size * 2
        self.exit_sl[row], self.moves[row], self.worst[row] = sl, moves, worst

    def _window(self, direction: Direction, entry, initial_sl, tp, k: int, j: int, sl: float) -> np.ndarray:
        """The stop before bar k, then after the upkeep of each bar k .. j-1: the running best
        of the accepted candidates."""
        n, none = j - k, -np.inf if direction == "buy" else np.inf
        accepted, _ = self._trail(direction, np.repeat(entry, n), np.repeat(initial_sl, n), np.full(n, none),
                                  np.repeat(tp, n), np.arange(k, j))
        best = np.maximum.accumulate if direction == "buy" else np.minimum.accumulate
        return best(np.concatenate(([sl], accepted)))
