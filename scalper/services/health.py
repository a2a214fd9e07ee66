"""`scalper check`: is everything in place for the next run-once?"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scalper import wiring
from scalper.clock import SystemClock, human_age
from scalper.config import AccountConfig, BotConfig, Config
from scalper.engine.market import bar_freshness
from scalper.errors import ScalperError
from scalper.feeds.base import Feed

Item = dict[str, Any]          # {what, ok, detail} (and `bridge` for a terminal server)
Add = Callable[..., None]      # add(what, ok, detail="", code=1): one item, and the exit code it sets


def check(config: str | None, ledger_option: str | None, *, max_age: str | None = None,
          notify: bool = False) -> dict[str, Any]:
    """A list of {what, ok, detail}. Never raises for a failed item: it reports it.

    With max_age (e.g. "3m"), the stall watch: is the last successful pass older? Brokers and
    feeds are then left alone (a cron line runs it every minute beside the engine); with
    notify, a `stale` alert goes out once per stall, and a recovery message after it.

    exit_code: 0 all good; 2 config invalid; 3 broker or feed unreachable; 1 anything else."""
    max_age_s = _max_age(max_age, notify)
    items: list[Item] = []
    exit_code = 0

    def add(what: str, ok: bool, detail: str = "", code: int = 1) -> None:
        nonlocal exit_code
        items.append({"what": what, "ok": ok, "detail": detail})
        if not ok and exit_code == 0:
            exit_code = code

    try:
        cfg = wiring.load(config)
    except ScalperError as exc:
        add("config", False, str(exc), exc.exit_code)
        return {"ok": False, "exit_code": exit_code, "items": items}
    runnable = [b for b in cfg.bots if b.enabled and b.engine_mode == "scalper"]
    add("config", True, f"{cfg.source}: {len(cfg.bots)} bot(s), {len(runnable)} to run, "
                        f"{len(cfg.accounts)} account(s)")

    ledger_path: Path | None = None
    try:
        path = wiring.ledger_path(cfg, ledger_option)
    except ScalperError as exc:   # a path under a file, a file that is not a ledger
        add("ledger", False, str(exc), exc.exit_code)
    else:
        ledger_path = path
        items.append(_ledger_item(path))
        if not items[-1]["ok"] and exit_code == 0:
            exit_code = 1
        elif path.exists():
            _engine_state_items(path, add)
    for t in cfg.notify:
        present = bool(os.environ.get(t.url_env))
        add(f"alerts {t.label}", present, f"${t.url_env} is set; events: {', '.join(t.events)}" if present else
            f"${t.url_env} is not set in this environment: alerts wait in the ledger, unsent")
    if max_age_s is not None:
        if ledger_path is None:     # the stall watch leaves brokers and feeds alone, ledger or not
            return {"ok": False, "exit_code": exit_code, "items": items}
        from scalper.services.notify import stall_watch

        if notify and not cfg.notify:
            add("alerts", False, "--notify, but bots.yaml has no `notify:` targets: nobody would be told")
        item = stall_watch(cfg, ledger_path, max_age_s, notify=notify)
        add(item["what"], item["ok"], item["detail"])
        for note in item["notes"]:
            add("alert delivery", False, note.removeprefix("alerts: "))
        return {"ok": exit_code == 0, "exit_code": exit_code, "items": items}

    clock = SystemClock()
    now = clock.now()
    try:
        feed = wiring.make_feed(cfg)
    except ScalperError as exc:
        add("feed", False, str(exc), exc.exit_code)
        feed = None
    if feed is not None:
        for symbol in sorted({b.symbol for b in runnable}):
            add(*_feed_item(feed, symbol, now, cfg.feed.max_bar_age_s))
    _account_items(cfg, runnable, feed, clock, items, add)
    return {"ok": exit_code == 0, "exit_code": exit_code, "items": items}


def _feed_item(feed: Feed, symbol: str, now: float, max_age_s: float) -> tuple[str, bool, str, int]:
    """(what, ok, detail, exit code) of one symbol's bars, judged as run-once judges them."""
    what = f"feed {symbol}"
    try:
        bars = feed.closed_bars(symbol, 101, now)
    except ScalperError as exc:
        return what, False, str(exc), exc.exit_code
    except Exception as exc:  # reported as this symbol's item; the next ones are still checked
        return what, False, f"{type(exc).__name__}: {exc}", 1
    fresh = bar_freshness(bars, now, max_age_s)
    if fresh.age_s is None:
        return what, False, "no closed bars", 3
    return what, fresh.fresh, f"{fresh.bars} bars, newest closed {human_age(fresh.age_s)} ago" + (
        "" if fresh.fresh else f" (older than max_bar_age_s={max_age_s:g}: run-once won't trade)"), 3


def _account_items(cfg: Config, runnable: list[BotConfig], feed: Feed | None, clock: SystemClock,
                   items: list[Item], add: Add) -> None:
    """One item per account the runnable bots use (and one per terminal server), each whatever
    the others gave. Held open together, as run-once holds them: what one process cannot do
    together (two mt5 accounts on one local terminal) fails here as it would there."""
    from scalper.engine import close_brokers

    used = sorted({a for b in runnable for a in b.accounts})
    try:
        factory = wiring.make_broker_factory(cfg, feed, clock)
    except ScalperError as exc:     # e.g. paper faults that name no known symbol
        add("accounts", False, str(exc), exc.exit_code)
        return
    held = []
    try:
        for acc_id in used:
            acc = cfg.account(acc_id)
            what = f"account {acc.label} ({acc.broker})"
            if acc.broker == "paper" and feed is None:
                add(what, False, "not checked: the paper broker prices with the feed, which could not be opened", 3)
                continue
            bridged = acc.broker == "mt5" and acc.terminal is not None
            probe = None
            try:
                broker = factory(acc)
                broker.connect()
                held.append(broker)
                info = broker.account_info()
                probe = _bridge_probe(cfg, acc) if bridged else None   # while the terminal is initialized
                add(what, True, f"balance {info.balance:,.2f} {info.currency}, equity {info.equity:,.2f}")
            except ScalperError as exc:
                add(what, False, str(exc), exc.exit_code)
            except Exception as exc:  # reported as this account's item; the next ones are still checked
                add(what, False, f"{type(exc).__name__}: {exc}", 1)
            if bridged:
                _bridge_item(acc, probe or _bridge_probe(cfg, acc), items, add)
    finally:
        close_brokers(dict(enumerate(held)))


def _bridge_probe(cfg: Config, acc: AccountConfig) -> dict[str, Any]:
    """The terminal server of an account: reachable, token accepted, terminal connected, trading
    allowed, latency (see RemoteTerminal.probe)."""
    try:
        probe: dict[str, Any] = wiring.terminal_module(cfg, acc).probe()
        return probe
    except ScalperError as exc:
        return {"reachable": None, "token_accepted": None, "latency_ms": None, "terminal_connected": None,
                "trade_allowed": None, "error": str(exc)}


def _bridge_item(acc: AccountConfig, probe: dict[str, Any], items: list[Item], add: Add) -> None:
    t = acc.terminal
    assert t is not None   # called for bridged accounts only
    facts = []
    if probe["reachable"]:
        facts.append("reachable")
    if probe["token_accepted"]:
        facts.append("token accepted")
    if probe["terminal_connected"] is not None:
        facts.append("terminal connected to the trade server" if probe["terminal_connected"]
                     else "terminal NOT connected to the trade server")
    if probe["trade_allowed"] is not None:
        facts.append("trading allowed" if probe["trade_allowed"] else "trading NOT allowed (Algo Trading off)")
    if probe["latency_ms"] is not None:
        facts.append(f"{probe['latency_ms']:.2f} ms per call")
    if probe["error"]:
        facts.append(probe["error"])
    ok = bool(probe["token_accepted"]) and probe["terminal_connected"] is not False \
        and probe["trade_allowed"] is not False and not probe["error"]
    add(f"terminal server {t.host}:{t.port} ({acc.label})", ok, ", ".join(facts), 3)
    items[-1]["bridge"] = probe


def _engine_state_items(path: Path, add: Add) -> None:
    """A paused engine or an engaged kill-switch is deliberate, but run-once will not trade: say so."""
    from scalper.ledger import Ledger

    with Ledger(path, readonly=True) as ledger:
        paused, why = ledger.paused()
        engaged = ledger.kill_switches.engaged()
    if paused:
        add("engine", False, f"paused ({why}); run-once does nothing until `scalper resume`")
    for k in engaged.values():
        add(f"kill-switch {k.bot}", False, f"engaged ({k.source}: {k.reason}); "
                                          f"`scalper kill-switch release --bot {k.bot}` lifts it")


def _ledger_item(path: Path) -> Item:
    from scalper.ledger import Ledger
    from scalper.ledger.postgres import LedgerUrl
    from scalper.ledger.schema import SCHEMA_VERSION

    if isinstance(path, LedgerUrl):
        from scalper.ledger.postgres import check_database

        ok, detail = check_database(path)
        return {"what": "ledger", "ok": ok, "detail": detail}
    if not path.exists():
        writable = _writable_dir(path.parent)
        return {"what": "ledger", "ok": writable,
                "detail": f"{path} does not exist yet; the first run-once creates it"
                          + ("" if writable else f" — but {path.parent} is not writable")}
    try:
        with Ledger(path, readonly=True) as ledger:
            version = ledger.schema_version()
            integrity = ledger.integrity_check()
    except ScalperError as exc:
        return {"what": "ledger", "ok": False, "detail": str(exc)}
    ok = integrity == "ok" and version <= SCHEMA_VERSION
    detail = f"{path}: schema v{version}"
    if version < SCHEMA_VERSION:
        detail += f" (will be migrated to v{SCHEMA_VERSION} on the next run, with a backup first)"
    if version > SCHEMA_VERSION:
        detail += f" is newer than this scalper (v{SCHEMA_VERSION}): upgrade scalper"
    detail += f", integrity {integrity}"
    return {"what": "ledger", "ok": ok, "detail": detail}


def _writable_dir(d: Path) -> bool:
    while not d.exists():
        d = d.parent
    return os.access(d, os.W_OK)


def _max_age(text: str | None, notify: bool) -> float | None:
    from scalper.errors import BadInput

    if text is None:
        if notify:
            raise BadInput("--notify goes with --max-age", where="--notify",
                           fix="e.g. `scalper check --max-age 3m --notify` (the stall watch)")
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip()
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except (ValueError, KeyError):
        value = -1.0
    if not value > 0:
        raise BadInput(f"cannot read {text!r} as an age", where="--max-age",
                       fix="write e.g. 3m, 90s or 1h (about 4 × the loop interval)")
    return value
