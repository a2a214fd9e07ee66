"""Builds the edges a command needs from the config: clock, feed, brokers, engine."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalper.clock import Clock, FixedClock, SystemClock, parse_instant_option
from scalper.config_cache import load_config
from scalper.errors import BadInput, BrokerUnavailable, quote
from scalper.symbols import spec_for

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import AccountConfig, Config

CONFIG_ENV = "SCALPER_CONFIG"
LEDGER_ENV = "SCALPER_LEDGER"


def config_path(option: str | None) -> Path:
    return Path(option or os.environ.get(CONFIG_ENV) or "bots.yaml")


def load(option: str | None) -> Config:
    return load_config(config_path(option))


def ledger_path(cfg: Config, option: str | None) -> Any:
    """The ledger's path (or its PostgreSQL database: a postgres.LedgerUrl); NotALedger (exit 2)
    when it lies under a file or names a file that is not an SQLite database, before any command
    creates anything beside it. A password inside a URL is refused wherever the URL comes from."""
    from scalper.ledger.paths import check_ledger_path
    from scalper.ledger.postgres import LedgerUrl, is_url

    chosen = option or os.environ.get(LEDGER_ENV)
    if is_url(chosen or cfg.ledger):
        return LedgerUrl.parse(chosen or cfg.ledger, where="--ledger" if chosen else "ledger")
    return check_ledger_path(Path(chosen) if chosen else cfg.resolve_path(cfg.ledger))


def make_clock(now: str | None) -> Clock:
    if now is None:   # an empty --now "" is refused by parse_instant_option, not read as "live"
        return SystemClock()
    instant = parse_instant_option(now, "--now")
    assert instant is not None   # None only for None, handled above
    if instant > time.time() + 60:
        # a replay records what it does in the ledger: trades stamped in the future would
        # corrupt today's P&L, limits and reports
        raise BadInput(f"{quote(now)} is in the future", where="--now",
                       fix="replay history only: pass an instant up to now (UTC unless an offset is given)")
    return FixedClock(instant)


def make_feed(cfg: Config):
    from scalper.feeds.factory import build_feed

    mt5_account = next((a for a in cfg.accounts if a.broker == "mt5"), None)
    if cfg.feed.type == "mt5" and mt5_account is not None and mt5_account.terminal is not None:
        from scalper.errors import FeedUnavailable

        module = terminal_module(cfg, mt5_account, FeedUnavailable)
        return build_feed(cfg.feed, cfg.resolve_path, mt5_account, module=module)
    return build_feed(cfg.feed, cfg.resolve_path, mt5_account)


def terminal_module(cfg: Config, acc: AccountConfig, error=BrokerUnavailable):
    """The `MetaTrader5` stand-in for an account with `terminal:` (a terminal server); rpyc is
    imported only here, for accounts that use one."""
    from scalper.bridge.client import remote_terminal

    return remote_terminal(acc.terminal, cfg.resolve_path, error=error)


def make_broker_factory(cfg: Config, feed, clock: Clock, *, dry_run: bool = False):
    if any(a.broker == "paper" for a in cfg.accounts):
        _check_paper_faults(cfg)   # before any broker exists, so nothing is recorded on a bad spec
    overrides = cfg.symbol_overrides()
    paper_state = cfg.resolve_path(cfg.paper.state)
    if dry_run and any(a.broker == "paper" for a in cfg.accounts):
        paper_state = _throwaway_copy(paper_state)

    @functools.cache   # asked per position on every valuation; the table is fixed
    def specs(symbol: str):
        return spec_for(symbol, overrides)

    def factory(acc: AccountConfig):
        if acc.broker == "paper":
            from scalper.brokers.paper import PaperBroker

            return PaperBroker(paper_state, account=str(acc.id), feed=feed,
                               clock=clock, specs=specs, initial_balance=acc.balance or cfg.paper.initial_balance,
                               currency=cfg.paper.currency, faults=cfg.paper.faults)
        if acc.broker == "mt5":
            try:
                from scalper.brokers.mt5 import MT5Broker
            except ImportError as exc:
                from scalper.mt5_terminal import missing_package

                raise BrokerUnavailable(f"{missing_package('the mt5 broker')} ({exc})") from None
            module = terminal_module(cfg, acc) if acc.terminal is not None else None
            return MT5Broker.from_account(acc, clock=clock, module=module)  # the terminal's own symbol specs win
        raise BadInput(f"unknown broker {acc.broker!r}", where=f"accounts[{acc.id}].broker")

    return factory


def build_engine(cfg: Config, *, ledger: str | None, now: str | None, dry_run: bool):
    from scalper.engine import Engine

    if now and (cfg.feed.type == "mt5" or any(a.broker == "mt5" for a in cfg.accounts)):
        raise BadInput("--now replays history; it works with the csv/builtin feeds and the paper broker only",
                       where="--now", fix="drop --now, or point the config at a csv feed and paper accounts")
    clock = make_clock(now)
    feed = make_feed(cfg)
    return Engine(cfg, ledger_path=ledger_path(cfg, ledger), clock=clock, feed=feed,
                  broker_factory=make_broker_factory(cfg, feed, clock, dry_run=dry_run), dry_run=dry_run)


def _throwaway_copy(state: Path) -> Path:
    """A dry run's paper books: a copy of the state file in a temporary folder (removed at
    exit), so that the run creates and changes nothing beside the config."""
    import atexit
    import shutil
    import sqlite3
    import tempfile

    folder = tempfile.mkdtemp(prefix="scalper-dry-run-")
    atexit.register(shutil.rmtree, folder, True)
    copy = Path(folder) / state.name
    if state.exists():
        src = sqlite3.connect(f"file:{state.resolve()}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
    return copy


def _check_paper_faults(cfg: Config) -> None:
    """Refuse a malformed SCALPER_PAPER_FAULTS before anything is recorded."""
    from scalper.brokers.paper import faults_from_env

    try:
        faults_from_env(cfg.paper.faults)
    except ValueError as exc:
        raise BadInput(str(exc), fix="e.g. retcodes=10004,10004;lost_answer=1 (see README, Drills)") from None
