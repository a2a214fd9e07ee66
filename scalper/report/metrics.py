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
import sys
from pathlib import Path

from scalper.clock import parse_instant
from scalper.ledger import Ledger


class LedgerCollector:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        q = self.ledger.query

        def family(kind, name, doc, labels, rows, value_key="n"):
            metric = kind(name, doc, labels=labels)
            for r in rows:
                metric.add_metric([str(r[label]) for label in labels], _finite(r[value_key]))
            return metric

        yield family(CounterMetricFamily, "scalper_signals", "Signals recorded, by bot and strategy",
                     ["bot", "strategy"], q("SELECT bot, strategy, COUNT(*) AS n FROM signals GROUP BY 1, 2"))
        yield family(CounterMetricFamily, "scalper_decisions", "Risk decisions, by bot and reason",
                     ["bot", "reason"], q("SELECT bot, reason, COUNT(*) AS n FROM decisions GROUP BY 1, 2"))
        yield family(GaugeMetricFamily, "scalper_orders", "Orders, by bot and current status",
                     ["bot", "status"], q("SELECT bot, status, COUNT(*) AS n FROM orders GROUP BY 1, 2"))
        yield family(CounterMetricFamily, "scalper_runs", "run-once passes, by outcome", ["status"],
                     q("SELECT status, COUNT(*) AS n FROM runs WHERE dry_run = 0 GROUP BY 1"))
        opened = q(f"SELECT COALESCE(bot, '(adopted)') AS bot, COUNT(*) AS n, {_finite_sum('unrealized')} AS u "
                   "FROM positions WHERE status = 'open' GROUP BY 1")
        yield family(GaugeMetricFamily, "scalper_open_positions", "Open positions, by bot", ["bot"], opened)
        yield family(GaugeMetricFamily, "scalper_unrealized_pnl", "Floating P&L of open positions (account currency)",
                     ["bot"], opened, "u")
        yield family(GaugeMetricFamily, "scalper_realized_pnl", "Realized P&L of closed positions (account currency)",
                     ["bot"], q(f"SELECT COALESCE(bot, '(adopted)') AS bot, {_finite_sum('profit')} AS n "
                                "FROM positions WHERE status = 'closed' GROUP BY 1"))
        yield family(GaugeMetricFamily, "scalper_kill_switch_engaged", "1 when the bot's kill-switch is engaged",
                     ["bot"], q("SELECT bot, engaged AS n FROM kill_switches"))
        paused, _ = self.ledger.paused()
        yield GaugeMetricFamily("scalper_engine_paused", "1 while rollback has paused the engine",
                                value=1 if paused else 0)
        last = self.ledger.one("SELECT started_at, duration_s FROM runs WHERE dry_run = 0 AND finished_at IS NOT NULL "
                               "ORDER BY started_at DESC, rowid DESC LIMIT 1")
        if last:
            yield GaugeMetricFamily("scalper_last_run_timestamp_seconds", "When the last run-once started",
                                    value=parse_instant(last["started_at"]))
            yield GaugeMetricFamily("scalper_last_run_duration_seconds", "How long the last run-once took",
                                    value=last["duration_s"] or 0)


def _finite_sum(column: str) -> str:
    """SQL summing `column`'s finite values only: SQLite keeps an infinite REAL (a ledger written
    before prices were checked), and one would make the whole sum +Inf."""
    return f"COALESCE(SUM(CASE WHEN ABS({column}) <= {sys.float_info.max!r} THEN {column} END), 0)"


def _finite(value) -> float:
    """A sample value: 0 when absent, and never ±Inf/NaN."""
    x = float(value or 0)
    return x if math.isfinite(x) else 0.0


def render(ledger: Ledger) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(LedgerCollector(ledger))
    return generate_latest(registry).decode()


def write(ledger: Ledger, path: Path) -> None:
    """Atomically (write then rename), so a scraper never reads half a file."""
    text = render(ledger)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
