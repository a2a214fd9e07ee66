"""Which accounts and bots a terminal host serves, and the pass slots of the fleet's cadence.

Every account names its host (`host:` in bots.yaml, default `local`). A pass on host H runs
the bots that have an account on H, and each bot's orders go to H's accounts only: the bot
as H sees it is the bot with its other accounts left out. The signal itself is recorded and
decided once for the fleet (the ledger's dedupe key); each host fans it out to its own accounts.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache (run-once)
    from scalper.config import Config

LOCAL = "local"
SLOT_TOLERANCE_S = 2.0   # a pass sent this much before its grid instant (clocks apart) still counts for it


def hosts_of(cfg: Config) -> list[str]:
    """Every host that has an account, in order of first appearance."""
    return list(dict.fromkeys(a.host for a in cfg.accounts))


def is_fleet(cfg: Config) -> bool:
    """Does any account live on a host other than this machine (`local`)?"""
    return any(a.host != LOCAL for a in cfg.accounts)


def for_host(cfg: Config, host: str) -> Config:
    """The config as host `host` runs it: its accounts only, and the bots that have one of them,
    each with its other accounts left out. The config itself when every account is on `host`
    (a single machine: nothing changes)."""
    mine = [a for a in cfg.accounts if a.host == host]
    if len(mine) == len(cfg.accounts):
        return cfg
    ids = {a.id for a in mine}
    bots = [b.model_copy(update={"accounts": [a for a in b.accounts if a in ids]})
            for b in cfg.bots if any(a in ids for a in b.accounts)]
    return cfg.model_copy(update={"accounts": mine, "bots": bots})


def account_hosts(cfg: Config) -> dict[int, str]:
    return {a.id: a.host for a in cfg.accounts}


def queue_name(cfg: Config, host: str) -> str:
    return f"{cfg.fleet.queue_prefix}.{host}"


def slot_of(instant: float, interval_s: float) -> int:
    """The interval slot a pass sent at `instant` belongs to: slot k starts at k * interval_s (UTC
    epoch grid). Two beats, or a beat and a clock a little apart, land in the same slot."""
    return math.floor((instant + SLOT_TOLERANCE_S) / interval_s)


def slot_start(slot: int, interval_s: float) -> float:
    return slot * interval_s


def check_host(cfg: Config, host: str, fix: str) -> None:
    """BadInput (exit 2) when no account of the config has `host`; `fix` says what to do, with
    `{hosts}` for the config's hosts (listed only then)."""
    from scalper.errors import BadInput

    hosts = hosts_of(cfg)
    if host not in hosts:
        raise BadInput(f"no account has host {host!r}", where="--host", fix=fix.format(hosts=", ".join(hosts)))
