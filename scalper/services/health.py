"""`scalper check`: is everything in place for the next run-once?"""

from __future__ import annotations

from pathlib import Path

from scalper import wiring
from scalper.clock import SystemClock, human_age
from scalper.core.bars import BAR_SECONDS
from scalper.errors import ScalperError


def check(config: str | None, ledger_option: str | None) -> dict:
    """A list of {what, ok, detail}. Never raises for a failed item: it reports it.

    exit_code: 0 all good; 2 config invalid; 3 broker or feed unreachable; 1 anything else."""
    items: list[dict] = []
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

    ledger_path = wiring.ledger_path(cfg, ledger_option)
    items.append(_ledger_item(ledger_path))
    if not items[-1]["ok"] and exit_code == 0:
        exit_code = 1
    elif ledger_path.exists():
        _engine_state_items(ledger_path, add)

    clock = SystemClock()
    now = clock.now()
    try:
        feed = wiring.make_feed(cfg)
    except ScalperError as exc:
        add("feed", False, str(exc), exc.exit_code)
        feed = None
    if feed is not None:
        for symbol in sorted({b.symbol for b in runnable}):
            try:
                bars = feed.closed_bars(symbol, 101, now)
            except ScalperError as exc:
                add(f"feed {symbol}", False, str(exc), exc.exit_code)
                continue
            if len(bars) == 0:
                add(f"feed {symbol}", False, "no closed bars", 3)
                continue
            age = now - (int(bars.time[-1]) + BAR_SECONDS)
            fresh = age <= cfg.feed.max_bar_age_s
            add(f"feed {symbol}", fresh, f"{len(bars)} bars, newest closed {human_age(age)} ago"
                + ("" if fresh else f" (older than max_bar_age_s={cfg.feed.max_bar_age_s}: run-once won't trade)"),
                3)

        factory = wiring.make_broker_factory(cfg, feed, clock)
        used = sorted({a for b in runnable for a in b.accounts})
        # Held open together, as run-once holds them: what one process cannot do together
        # (two mt5 accounts on one terminal) fails here as it would there.
        held = []
        try:
            for acc_id in used:
                acc = cfg.account(acc_id)
                try:
                    broker = factory(acc)
                    broker.connect()
                    held.append(broker)
                    info = broker.account_info()
                    add(f"account {acc.label} ({acc.broker})", True,
                        f"balance {info.balance:,.2f} {info.currency}, equity {info.equity:,.2f}")
                except ScalperError as exc:
                    add(f"account {acc.label} ({acc.broker})", False, str(exc), exc.exit_code)
        finally:
            from scalper.engine import close_brokers

            close_brokers(dict(enumerate(held)))
    return {"ok": exit_code == 0, "exit_code": exit_code, "items": items}


def _engine_state_items(path: Path, add) -> None:
    """A paused engine or an engaged kill-switch is deliberate, but run-once will not trade: say so."""
    from scalper.ledger import Ledger

    with Ledger(path, readonly=True) as ledger:
        paused, why = ledger.paused()
        engaged = ledger.query("SELECT bot, source, reason FROM kill_switches WHERE engaged = 1")
    if paused:
        add("engine", False, f"paused ({why}); run-once does nothing until `scalper resume`")
    for k in engaged:
        add(f"kill-switch {k['bot']}", False, f"engaged ({k['source']}: {k['reason']}); "
                                             f"`scalper kill-switch release --bot {k['bot']}` lifts it")


def _ledger_item(path: Path) -> dict:
    from scalper.ledger import Ledger
    from scalper.ledger.schema import SCHEMA_VERSION

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
    import os

    while not d.exists():
        d = d.parent
    return os.access(d, os.W_OK)
