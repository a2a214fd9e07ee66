"""Command-line values several commands read the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalper.errors import BadInput, quote

if TYPE_CHECKING:
    from scalper.config import BotConfig, Config


def strategy_list(text: str, option: str = "--strategies") -> list[str]:
    """'a,b' → ['a', 'b'], every name known; a misspelt one gets a "did you mean"."""
    from scalper.core.strategies import STRATEGY_NAMES, did_you_mean

    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise BadInput("no strategy given", where=option, fix=f"use some of: {', '.join(STRATEGY_NAMES)}")
    for n in names:
        if n not in STRATEGY_NAMES:
            guess = did_you_mean(n)
            raise BadInput(f"unknown strategy {quote(n)}" + (f"; did you mean {guess!r}?" if guess else ""),
                           where=option, fix=f"use some of: {', '.join(STRATEGY_NAMES)}")
    return names


def bot_named(cfg: Config, name: str, config: str | None) -> BotConfig:
    """The bot `--bot NAME` names; BadInput listing the bots when there is none of that name."""
    from scalper import wiring

    try:
        return cfg.bot(name)
    except KeyError:
        raise BadInput(f"no bot named {quote(name)} in {wiring.config_path(config)}", where="--bot",
                       fix=f"use one of: {', '.join(b.name for b in cfg.bots) or '(no bots defined)'}") from None


def strategy_selection(bot: BotConfig | None, strategies: str | None,
                       lookback: int | None) -> tuple[list[str], dict[str, dict], int]:
    """What scan and backtest run: the strategies (--strategies, else the bot's, else all), the
    lookback (--lookback, else the bot's, else the schema's default) and each strategy's
    parameters (the bot's strategy_params over the defaults), checked against that lookback."""
    from scalper.core import strategies as registry
    from scalper.core.rules import DEFAULT_LOOKBACK

    lookback = lookback or (bot.lookback if bot else DEFAULT_LOOKBACK)
    names = strategy_list(strategies) if strategies else list(bot.strategies if bot else registry.STRATEGY_NAMES)
    overrides = bot.strategy_params if bot else {}
    params = {}
    for n in names:
        try:
            params[n] = registry.resolve_params(n, overrides.get(n), lookback=lookback)
        except ValueError as exc:
            raise BadInput(str(exc), where=f"strategy_params.{n}") from None
    return names, params, lookback


def symbol_fit(symbol: str, bars) -> list[str]:
    """`scan` and `backtest`: a warning when the file's prices are not the symbol's (another
    instrument's file, replayed with this symbol's contract size, digits and spread)."""
    from scalper.feeds.builtin import far_from_usual

    found = far_from_usual(symbol, bars.close)
    return [found] if found else []
