"""Build the configured feed (bots.yaml `feed:`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scalper.errors import FeedUnavailable
from scalper.feeds.base import Feed
from scalper.feeds.builtin import BuiltinFeed

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import FeedConfig

MT5_MISSING = ("the mt5 feed needs the MetaTrader5 package (Windows): pip install MetaTrader5 (or, in the scalper "
               "checkout, pip install '.[mt5]')")


def build_feed(feed_cfg: FeedConfig, resolve_path: Callable[[str], Path], mt5_account=None, *,
               module=None) -> Feed:
    """`resolve_path` turns a path written in bots.yaml into a real one (relative to the file);
    `mt5_account` (an AccountConfig) is the terminal the mt5 feed reads from; `module` stands in for
    the MetaTrader5 package (a terminal bridge client)."""
    if feed_cfg.type == "builtin":
        return BuiltinFeed(seed=feed_cfg.seed)
    if feed_cfg.type == "csv":
        from scalper.feeds.csvfile import CsvFeed  # pandas takes a while to import; only CSV needs it

        files = {symbol: resolve_path(path) for symbol, path in feed_cfg.files.items()}
        pattern = resolve_path(feed_cfg.path) if feed_cfg.path else None
        return CsvFeed(files=files, pattern=pattern)
    # Imported only when configured: it needs the Windows-only MetaTrader5 package.
    try:
        mt5 = importlib.import_module("scalper.feeds.mt5")
    except ModuleNotFoundError as exc:
        if exc.name not in ("scalper.feeds.mt5", "MetaTrader5"):
            raise
        raise FeedUnavailable(MT5_MISSING) from None
    offset = mt5_account.server_utc_offset_s if mt5_account is not None else None
    return mt5.Mt5Feed(account=mt5_account, server_offset_s=offset, module=module)
