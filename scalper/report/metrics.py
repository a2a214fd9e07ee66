"""Prometheus text-format metrics derived from the ledger (replaces the old
engine's live counters: a file a node_exporter textfile collector can scrape)."""

from __future__ import annotations

import os
from pathlib import Path

from scalper.clock import parse_instant
from scalper.ledger import Ledger


def build_registry(ledger: Ledger):
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()):
        return Gauge(name, doc, labels, registry=reg)

    signals = gauge("scalper_signals_total", "Signals recorded, by bot and strategy", ("bot", "strategy"))
    for r in ledger.query("SELECT bot, strategy, COUNT(*) AS n FROM signals GROUP BY bot, strategy"):
        signals.labels(r["bot"], r["strategy"]).set(r["n"])
    decisions = gauge("scalper_decisions_total", "Risk decisions, by bot and reason", ("bot", "reason"))
    for r in ledger.query("SELECT bot, reason, COUNT(*) AS n FROM decisions GROUP BY bot, reason"):
        decisions.labels(r["bot"], r["reason"]).set(r["n"])
    orders = gauge("scalper_orders_total", "Orders, by bot and status", ("bot", "status"))
    for r in ledger.query("SELECT bot, status, COUNT(*) AS n FROM orders GROUP BY bot, status"):
        orders.labels(r["bot"], r["status"]).set(r["n"])
    open_pos = gauge("scalper_open_positions", "Open positions, by bot", ("bot",))
    unreal = gauge("scalper_unrealized_pnl", "Floating P&L of open positions (account currency)", ("bot",))
    for r in ledger.query("SELECT COALESCE(bot, '(adopted)') AS bot, COUNT(*) AS n, "
                          "COALESCE(SUM(unrealized), 0) AS u FROM positions WHERE status = 'open' GROUP BY 1"):
        open_pos.labels(r["bot"]).set(r["n"])
        unreal.labels(r["bot"]).set(r["u"])
    realized = gauge("scalper_realized_pnl_total", "Realized P&L of closed positions (account currency)", ("bot",))
    for r in ledger.query("SELECT COALESCE(bot, '(adopted)') AS bot, COALESCE(SUM(profit), 0) AS p "
                          "FROM positions WHERE status = 'closed' GROUP BY 1"):
        realized.labels(r["bot"]).set(r["p"])
    kill = gauge("scalper_kill_switch_engaged", "1 when the bot's kill-switch is engaged", ("bot",))
    for r in ledger.query("SELECT bot, engaged FROM kill_switches"):
        kill.labels(r["bot"]).set(r["engaged"])
    paused, _ = ledger.paused()
    gauge("scalper_engine_paused", "1 while rollback has paused the engine").set(1 if paused else 0)
    runs = gauge("scalper_runs_total", "run-once passes, by outcome", ("status",))
    for r in ledger.query("SELECT status, COUNT(*) AS n FROM runs WHERE dry_run = 0 GROUP BY status"):
        runs.labels(r["status"]).set(r["n"])
    last = ledger.one("SELECT started_at, duration_s FROM runs WHERE dry_run = 0 AND finished_at IS NOT NULL "
                      "ORDER BY started_at DESC, rowid DESC LIMIT 1")
    if last:
        gauge("scalper_last_run_timestamp_seconds", "When the last run-once started").set(
            parse_instant(last["started_at"]))
        gauge("scalper_last_run_duration_seconds", "How long the last run-once took").set(last["duration_s"] or 0)
    return reg


def render(ledger: Ledger) -> str:
    from prometheus_client import generate_latest

    return generate_latest(build_registry(ledger)).decode()


def write(ledger: Ledger, path: Path) -> None:
    """Atomically (write then rename), so a scraper never reads half a file."""
    text = render(ledger)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
