"""A test oracle: the backtester's replay as it was before it became event-driven, stepping
through every bar while a position is open with the scalar rules of the core (sim.bar_exit,
sim.same_level, sim.no_money, sim.stopped_out, upkeep.trailing_stop, stops.stops_valid,
exposure.kill_switch_reason)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from scalper.backtest import (
    ACCOUNT,
    DECISION_DELAY_S,
    END_EXIT,
    INVALID_STOPS,
    KILL_SWITCH_EXIT,
    NO_MONEY,
    PROGRESS_STEPS,
    STOP_OUT_EXIT,
    BacktestResult,
    KillSwitchEvent,
    Progress,
    Setup,
    Trade,
)
from scalper.core import risk, sim, upkeep
from scalper.core.bars import BAR_SECONDS, Bars
from scalper.core.exposure import build_exposure, day_start, kill_switch_reason
from scalper.core.scan import scan_history
from scalper.core.signals import Signal
from scalper.core.sim import bar_exit, profit
from scalper.core.sizing import size_order
from scalper.core.stops import stops_valid


@dataclass
class _Position:
    strategy: str
    direction: str
    signal_time: int
    entry_time: float
    entry: float
    volume: float
    initial_sl: float
    sl: float
    tp: float


def per_bar_backtest(history: Bars, setup: Setup, *, start=None, end=None) -> BacktestResult:
    scanned = scan_history(history, list(setup.strategies), setup.params, setup.lookback)
    return PerBarReplay(history, setup, scanned.signals, start, end).run(None)


class PerBarReplay:
    """The replay stepped through every bar while a position is open, in Python, with the
    scalar rules: what the event-driven replay must equal."""

    def __init__(self, history: Bars, setup: Setup, signals: list[Signal], start: float | None,
                 end: float | None):
        self.setup = setup
        self.limits = setup.rules.limits
        self.spec = setup.spec
        self.stop_distance = setup.spec.stops_level * setup.spec.point
        n = len(history)
        # Plain lists: the loop reads one element at a time, and numpy scalars are slow for that.
        self.time = history.time.tolist()
        self.open_ = history.open.tolist()
        self.high = history.high.tolist()
        self.low = history.low.tolist()
        self.latest = sim.latest_after_close(history).tolist()
        self.spread = np.where(np.isnan(history.spread), setup.spec.spread_points, history.spread).tolist()

        self.first = max(setup.lookback - 1, 0 if start is None else int(np.searchsorted(history.time, start)))
        self.last = n - 1 if end is None else int(np.searchsorted(history.time, end, side="right")) - 1
        self.signals = [s for s in signals if self._in_range(s.bar_time)]
        # At one bar, the strategies speak in the bot's order.
        order = {name: k for k, name in enumerate(setup.strategies)}
        self.by_bar: dict[int, list[Signal]] = defaultdict(list)
        bar_index = np.searchsorted(history.time, [s.bar_time for s in self.signals]).tolist()
        for i, s in sorted(zip(bar_index, self.signals), key=lambda pair: (pair[0], order[pair[1].strategy])):
            self.by_bar[i].append(s)

        self.balance = setup.balance
        self.book: list[_Position] = []
        self.realized_by_day: dict[float, float] = defaultdict(float)
        self.kill_engaged_day: float | None = None
        self.decisions: dict[str, Counter] = {name: Counter() for name in setup.strategies}
        self.refused: Counter = Counter()
        self.trades: list[Trade] = []
        self.kill_switches: list[KillSwitchEvent] = []
        self.trailed = 0

    def _in_range(self, bar_time: int) -> bool:
        return self.first <= self.last and self.time[self.first] <= bar_time <= self.time[self.last]

    # --- the loop ---------------------------------------------------------------
    def run(self, progress: Progress | None) -> BacktestResult:
        first, last = self.first, self.last
        total = max(0, last - first + 1)
        signal_bars = sorted(self.by_bar)
        next_signal = 0
        report_every = max(1, total // PROGRESS_STEPS)
        reported = first
        i = first
        while i <= last:
            if not self.book:
                # Nothing open: nothing happens until the next signal bar.
                while next_signal < len(signal_bars) and signal_bars[next_signal] < i:
                    next_signal += 1
                if next_signal == len(signal_bars):
                    break
                i = signal_bars[next_signal]
            now = self.time[i] + BAR_SECONDS + DECISION_DELAY_S
            today = day_start(now)
            self._exits(i)
            if self.book and sim.stopped_out(self._equity(self.latest[i])):
                self._close_all(i, now, STOP_OUT_EXIT)
            if self.kill_engaged_day is not None and today > self.kill_engaged_day:
                self.kill_engaged_day = None   # re-armed at UTC midnight (see the module's notes)
            if i in self.by_bar:
                self._decide(i, now, today, self.by_bar[i])
            self._upkeep(i, now, today)
            if progress is not None and i - reported >= report_every:
                progress(i - first + 1, total)
                reported = i
            i += 1
        if total:
            self._close_all(last, self.time[last] + BAR_SECONDS + DECISION_DELAY_S, END_EXIT)
        if progress is not None:
            progress(total, total)
        return BacktestResult(
            setup=self.setup, bars=total, start=self.time[first] if total else None,
            end=self.time[last] if total else None, signals=self.signals, decisions=self.decisions,
            refused=self.refused, trades=self.trades, kill_switches=self.kill_switches, trailed=self.trailed,
            final_balance=self.balance)

    # --- 1. the broker's sync ---------------------------------------------------------
    def _exits(self, i: int) -> None:
        if not self.book:
            return
        o, h, lo, t = self.open_[i], self.high[i], self.low[i], self.time[i]
        still_open = []
        for p in self.book:
            hit = bar_exit(p.direction, p.sl, p.tp, o, h, lo)
            if hit is None:
                still_open.append(p)
            else:
                self._close(p, hit[0], hit[1], sim.exit_time(t, p.entry_time))
        self.book = still_open

    # --- 2. signals and risk decisions --------------------------------------------------
    def _decide(self, i: int, now: float, today: float, signals: list[Signal]) -> None:
        # Today's P&L as the ledger holds it during the pass: the positions open
        # before it valued at the latest price; those it opens count 0 until its upkeep.
        pnl_today = self.realized_by_day.get(today, 0.0) + self._unrealized(self.latest[i])
        for s in signals:
            exposure = build_exposure(((ACCOUNT, self.setup.symbol, p.direction) for p in self.book),
                                      symbol=self.setup.symbol, balance=self.balance, pnl_today=pnl_today,
                                      spread_points=self.spread[i],
                                      kill_switch_engaged=self.kill_engaged_day is not None,
                                      quote=self._quote(i), price_digits=self.spec.digits,
                                      stops_min_distance=self.stop_distance)
            decision = risk.decide(s, exposure, self.limits, now)
            self.decisions[s.strategy][decision.reason] += 1
            if decision.approved:
                self._open(i, now, s)

    def _open(self, i: int, now: float, s: Signal) -> None:
        spec = self.spec
        sized = size_order(qty=self.setup.qty, spec=spec, risk_percent=self.setup.rules.risk_percent,
                           balance=self.balance, risk_per_unit=s.risk)
        if not sized.ok:
            self.refused[sized.reason] += 1
            return
        volume = sized.volume
        sl, tp = spec.round_price(s.sl), spec.round_price(s.tp)
        bid, ask = self._quote(i)
        if not stops_valid(s.direction, sl, tp, bid=bid, ask=ask, min_distance=self.stop_distance):
            self.refused[INVALID_STOPS] += 1
            return
        price = sim.fill_price(s.direction, bid, ask)
        cs, leverage = spec.contract_size, self.setup.leverage
        free = sim.free_margin(self._equity(self.latest[i]),
                               sum(sim.margin(p.entry, p.volume, cs, leverage) for p in self.book))
        if sim.no_money(sim.margin(price, volume, cs, leverage), free):
            self.refused[NO_MONEY] += 1
            return
        self.book.append(_Position(
            strategy=s.strategy, direction=s.direction, signal_time=s.bar_time, entry_time=now,
            entry=price, volume=volume, initial_sl=sl, sl=sl, tp=tp))

    # --- 3. position upkeep --------------------------------------------------------------
    def _upkeep(self, i: int, now: float, today: float) -> None:
        price = self.latest[i]
        trailing = self.setup.rules.trailing
        if trailing.enabled and self.book:
            self._trail(i, price, trailing.activate_r, trailing.distance_r)
        if self.setup.rules.kill_switch.enabled and self.kill_engaged_day is None:
            found = kill_switch_reason(unrealized=self._unrealized(price),
                                       realized_today=self.realized_by_day.get(today, 0.0), balance=self.balance,
                                       rules=self.setup.rules)
            if found is not None:
                closed = len(self.book)
                self._close_all(i, now, KILL_SWITCH_EXIT)
                self.kill_engaged_day = today
                self.kill_switches.append(KillSwitchEvent(now, found[0], found[1], closed))

    def _trail(self, i: int, price: float, activate_r: float, distance_r: float) -> None:
        for p in self.book:
            new_sl = upkeep.trailing_stop(p.direction, p.entry, p.initial_sl, p.sl, price,
                                          activate_r=activate_r, distance_r=distance_r)
            if new_sl is None:
                continue
            new_sl = self.spec.round_price(new_sl)
            # The broker answers "no changes" within half a point, and refuses a stop past the price.
            if sim.same_level(p.sl, new_sl, self.spec.point):
                continue
            bid, ask = self._quote(i)
            if not stops_valid(p.direction, new_sl, p.tp, bid=bid, ask=ask, min_distance=self.stop_distance):
                continue
            p.sl = new_sl
            self.trailed += 1

    # --- the book ---------------------------------------------------------------------------
    def _quote(self, i: int) -> tuple[float, float]:
        return sim.quote(self.latest[i], self.spread[i], self.spec.point)

    def _unrealized(self, price: float) -> float:
        cs = self.spec.contract_size
        return sum(profit(p.direction, p.entry, price, p.volume, cs) for p in self.book)

    def _equity(self, price: float) -> float:
        cs = self.spec.contract_size
        return sim.equity(self.balance, (profit(p.direction, p.entry, price, p.volume, cs) for p in self.book))

    def _close_all(self, i: int, now: float, reason: str) -> None:
        bid, ask = self._quote(i)
        for p in self.book:
            self._close(p, sim.close_price(p.direction, bid, ask), reason, now)
        self.book = []

    def _close(self, p: _Position, price: float, reason: str, when: float) -> None:
        pnl = profit(p.direction, p.entry, price, p.volume, self.spec.contract_size)
        self.balance += pnl
        self.realized_by_day[day_start(when)] += pnl
        self.trades.append(Trade(
            strategy=p.strategy, direction=p.direction, signal_time=p.signal_time, entry_time=p.entry_time,
            exit_time=when, volume=p.volume, entry=p.entry, exit=price, sl=p.initial_sl, tp=p.tp,
            final_sl=p.sl, exit_reason=reason, pnl=pnl))
