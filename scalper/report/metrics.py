"""Prometheus text-format metrics derived from the ledger (the old engine's live
counters, as a file a node_exporter textfile collector can scrape).

Counts that only grow (signals, decisions, orders, runs, realized P&L) are
exposed as counters; states (open positions, floating P&L, switches, the
pause, the last run) as gauges. Everything is read from the ledger when the
metrics are rendered, so they survive restarts and never drift from it.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from scalper.clock import parse_instant
from scalper.ledger import Ledger
from scalper.ledger.positions import ADOPTED_BOT

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


class LedgerCollector:
    def __init__(self, ledger: Ledger, bots: Sequence[str] = ()):
        self.ledger = ledger
        self.bots = list(bots)   # the configured bots: each gets its kill-switch gauge, engaged or not

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        ledger = self.ledger

        def family(kind: type[Metric], name: str, doc: str, labels: list[str],
                   samples: Mapping[tuple[str, ...], float]) -> Metric:
            metric = kind(name, doc, labels=labels)
            for key, value in samples.items():
                metric.add_metric([str(k) for k in key], _finite(value))
            return metric

        tallies = ledger.reports.tallies()
        yield family(CounterMetricFamily, "scalper_signals", "Signals recorded, by bot and strategy",
                     ["bot", "strategy"], tallies.signals)
        yield family(CounterMetricFamily, "scalper_decisions", "Risk decisions, by bot and reason",
                     ["bot", "reason"], tallies.decisions)
        yield family(GaugeMetricFamily, "scalper_orders", "Orders, by bot and current status",
                     ["bot", "status"], tallies.orders)
        yield family(CounterMetricFamily, "scalper_runs", "run-once passes, by outcome", ["status"],
                     {(status,): n for status, n in tallies.runs.items()})
        opened: dict[tuple[str, ...], float] = defaultdict(float)
        unrealized: dict[tuple[str, ...], float] = defaultdict(float)
        for p in ledger.positions.open():
            key = (p.bot or ADOPTED_BOT,)
            opened[key] += 1
            unrealized[key] += _finite(p.unrealized)
        yield family(GaugeMetricFamily, "scalper_open_positions", "Open positions, by bot", ["bot"], opened)
        yield family(GaugeMetricFamily, "scalper_unrealized_pnl", "Floating P&L of open positions (account currency)",
                     ["bot"], _cents(unrealized))
        realized: dict[tuple[str, ...], float] = defaultdict(float)
        for bot, _, profit in ledger.reports.closed_profits():
            realized[(bot or ADOPTED_BOT,)] += _finite(profit)
        yield family(GaugeMetricFamily, "scalper_realized_pnl", "Realized P&L of closed positions (account currency)",
                     ["bot"], _cents(realized))
        switches = {bot: 0.0 for bot in self.bots}
        switches.update({bot: float(bool(k.engaged)) for bot, k in ledger.kill_switches.all().items()})
        yield family(GaugeMetricFamily, "scalper_kill_switch_engaged", "1 when the bot's kill-switch is engaged",
                     ["bot"], {(bot,): v for bot, v in switches.items()})
        paused, _ = ledger.paused()
        yield GaugeMetricFamily("scalper_engine_paused", "1 while rollback has paused the engine",
                                value=1 if paused else 0)
        last = ledger.runs.last(finished=True)
        if last:
            yield GaugeMetricFamily("scalper_last_run_timestamp_seconds", "When the last run-once started",
                                    value=parse_instant(last.started_at))
            yield GaugeMetricFamily("scalper_last_run_duration_seconds", "How long the last run-once took",
                                    value=last.duration_s or 0)


def _cents(sums: Mapping[tuple[str, ...], float]) -> dict[tuple[str, ...], float]:
    """Money to the cent: a sum of many float P&Ls carries noise in its last digits."""
    return {k: round(v, 2) for k, v in sums.items()}


def _finite(value: float | None) -> float:
    """A sample value: 0 when absent, and never ±Inf/NaN (a ledger written before prices were
    checked may hold an infinite P&L; one would make a whole sum +Inf)."""
    x = float(value or 0)
    return x if math.isfinite(x) else 0.0


def render(ledger: Ledger, bots: Sequence[str] = ()) -> str:
    """The metrics text; `bots`: the configured bots (each gets a kill-switch gauge)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(LedgerCollector(ledger, bots))
    return generate_latest(registry).decode()


def write(ledger: Ledger, path: Path, bots: Sequence[str] = ()) -> None:
    """Atomically (write then rename), so a scraper never reads half a file."""
    text = render(ledger, bots)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
