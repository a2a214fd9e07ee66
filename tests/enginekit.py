"""Helpers for engine tests: a bots.yaml on the real XAUUSD data, and runs at a chosen instant."""

from __future__ import annotations

import csv
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import yaml

from scalper import wiring
from scalper.clock import FixedClock
from scalper.config import load_config
from scalper.engine import Engine

STRATEGIES = ["price_action_pinbar", "trend_pullback", "doji_breakout", "range_reversion"]


def write_config(tmp: Path, data_csv: Path, *, symbol: str = "XAUUSDm", strategies=None, accounts=(1,),
                 auto_trade: bool = True, risk: dict | None = None, extra_bots: list | None = None,
                 paper: dict | None = None) -> Path:
    cfg = {
        "ledger": "ledger.db",
        "feed": {"type": "csv", "files": {symbol: str(data_csv)}, "max_bar_age_s": 180},
        "paper": {"state": "paper.db", "initial_balance": 10000, **(paper or {})},
        "accounts": [{"id": a, "name": f"paper-{a}", "broker": "paper"} for a in accounts],
        "bots": [{
            "name": "gold", "symbol": symbol, "accounts": list(accounts), "auto_trade": auto_trade,
            "strategies": list(strategies or STRATEGIES),
            "risk": {"max_concurrent": 2, "max_per_symbol": 1, **(risk or {})},
        }] + list(extra_bots or []),
    }
    path = tmp / "bots.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def engine_at(config: Path, instant: float, *, dry_run: bool = False, sleep=lambda s: None) -> Engine:
    cfg = load_config(config)
    clock = FixedClock(instant)
    feed = wiring.make_feed(cfg)
    return Engine(cfg, ledger_path=wiring.ledger_path(cfg, None), clock=clock, feed=feed,
                  broker_factory=wiring.make_broker_factory(cfg, feed, clock), dry_run=dry_run, sleep=sleep)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def golden(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def just_after_close(bar_time: str, seconds: int = 5) -> float:
    """An instant a few seconds after the bar that opened at `bar_time` closed."""
    return ts(bar_time) + 60 + seconds


def replay(eng: Engine, instants) -> list:
    """Run the same engine at each instant in turn (one process, like `scalper loop` with --now)."""
    out = []
    for t in instants:
        eng.clock.instant = t
        out.append(eng.run_once())
    return out


def rows(db: Path, sql: str, params=()) -> list[dict]:
    """Query a SQLite file read-only (ledger or paper broker state) as a list of dicts."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def replay_minutes(config: Path, bars_csv: Path, first_bar: str, minutes: int) -> None:
    """Run the engine once after each of `minutes` bars of `bars_csv` from `first_bar` on,
    a few seconds after each closes, as `scalper loop` would have; every pass must succeed."""
    from scalper.core.bars import BAR_SECONDS
    from scalper.feeds.csvfile import read_bars

    bars, _ = read_bars(bars_csv)
    start = bars.index_of(int(ts(first_bar)))
    engine = engine_at(config, 0.0)
    for i in range(start, start + minutes):
        engine.clock.instant = float(bars.time[i]) + BAR_SECONDS + 5
        assert engine.run_once().exit_code == 0
