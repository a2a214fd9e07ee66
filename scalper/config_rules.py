"""What a loaded bots file answers, without pydantic (config_rules; scalper.settings turns it into the core's values).

scalper.config validates a bots file with pydantic; its models take their helpers (a bot's
volume and magic number, an account's label, `Config.bot(name)`, …) from the `*Rules` classes
here. A file whose validated form is in the cache (scalper.config_cache) is rebuilt as `Plain`
objects with the same attributes and the same helpers, and pydantic is not imported: run-once
starts every 45 s and pydantic costs ~50 ms of that start-up.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scalper.symbols import SymbolSpec


class AccountRules:
    if TYPE_CHECKING:   # the fields, declared by the pydantic model or the cache
        name: str | None
        id: int

    @property
    def label(self) -> str:
        return self.name or f"account-{self.id}"


class BotRules:
    if TYPE_CHECKING:   # the fields, declared by the pydantic model or the cache
        name: str
        symbol: str
        qty: float | None
        magic: int | None
        lookback: int
        strategy_params: dict[str, dict[str, Any]]

    @property
    def magic_number(self) -> int:
        """Stable per bot: the broker tags our positions with it."""
        if self.magic is not None:
            return self.magic
        return 100_000 + zlib.crc32(self.name.encode()) % 900_000_000

    def params_for(self, strategy: str) -> dict:
        from scalper.core import strategies as registry

        return registry.resolve_params(strategy, self.strategy_params.get(strategy), lookback=self.lookback)


class NotifyRules:
    if TYPE_CHECKING:   # the fields, declared by the pydantic model or the cache
        name: str | None
        url_env: str
        events: list[str]
        bots: list[str] | None

    @property
    def label(self) -> str:
        return self.name or self.url_env

    def wants(self, event: str, bot: str | None) -> bool:
        return event in self.events and (bot is None or self.bots is None or bot in self.bots)


class ConfigRules:
    if TYPE_CHECKING:   # the fields, declared by the pydantic model or the cache
        accounts: list
        bots: list
        symbols: dict
        correlation_groups: dict[str, list[str]]
        source: str | None

    def account(self, account_id: int):
        for a in self.accounts:
            if a.id == account_id:
                return a
        raise KeyError(account_id)

    def bot(self, name: str):
        for b in self.bots:
            if b.name == name:
                return b
        raise KeyError(name)

    def qty_of(self, bot, specs: dict[str, SymbolSpec] | None = None) -> float:
        """A bot's lots per order: its `qty`, else the symbol's default, never below the minimum
        volume of the symbol as this config's `symbols:` (or the built-in table) describes it.
        `specs`: symbol_overrides() when the caller holds it already (a pass, the validator)."""
        from scalper.symbols import default_qty

        if bot.qty is not None:
            return bot.qty
        return default_qty(bot.symbol, self.symbol_overrides() if specs is None else specs)

    def symbol_overrides(self) -> dict[str, SymbolSpec]:
        from scalper import settings

        return settings.symbol_specs(self)  # type: ignore[arg-type]

    def groups_of(self, symbol: str) -> list[str]:
        from scalper.symbols import root_symbol

        r = root_symbol(symbol)
        return [g for g, members in self.correlation_groups.items()
                if symbol in members or r in {root_symbol(m) for m in members}]

    def resolve_path(self, p: str) -> Path:
        """Relative paths in bots.yaml are relative to the file's folder."""
        path = Path(os.path.expanduser(p))
        if not path.is_absolute() and self.source:
            path = Path(self.source).resolve().parent / path
        return path


# --- plain objects rebuilt from the cache ------------------------------------------------------
class Plain:
    """A validated settings object rebuilt from the cache: its fields as attributes, and the
    two pydantic methods scalper calls on settings (`model_dump`, `model_copy`)."""

    _fields: tuple[str, ...]

    def __init__(self, **fields: Any):
        self.__dict__.update(fields)
        self.__dict__["_fields"] = tuple(fields)

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return {name: _dump(getattr(self, name)) for name in self._fields}

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        """Validation by the pydantic model of the same name (which this one stands in for)."""
        from scalper import config

        return getattr(config, cls.__name__).model_validate(data)

    def model_copy(self, update: dict[str, Any] | None = None) -> Plain:
        fields = {name: getattr(self, name) for name in self._fields}
        copy = type(self)(**{**fields, **(update or {})})
        for name, value in self.__dict__.items():   # set after loading (Config.source)
            if name not in copy.__dict__:
                copy.__dict__[name] = value
        return copy

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.model_dump() == self.model_dump()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:   # as pydantic writes a model
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self._fields)})"

    def __str__(self) -> str:
        return " ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)


def _dump(value: Any) -> Any:
    if isinstance(value, Plain):
        return value.model_dump()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


class Config(Plain, ConfigRules):
    source: str | None = None


class BotConfig(Plain, BotRules):
    pass


class AccountConfig(Plain, AccountRules):
    pass


class NotifyTarget(Plain, NotifyRules):
    pass


_PLAIN: dict[str, type[Plain]] = {c.__name__: c for c in (Config, BotConfig, AccountConfig, NotifyTarget)}


def plain_class(model: str) -> type[Plain]:
    """The plain class standing in for the pydantic model named `model` (one without helpers
    gets a bare Plain subclass of its name)."""
    if model not in _PLAIN:
        _PLAIN[model] = type(model, (Plain,), {"__module__": __name__})
    return _PLAIN[model]


def rebuild(shape: Any, value: Any) -> Any:
    """Plain objects from a validated dump and its shape (scalper.config.model_shape): a model
    is {"model": name, "fields": {field: shape}}, a list {"list": shape}, a dict {"dict": shape},
    anything else null."""
    if value is None or shape is None:
        return value
    if "model" in shape:
        fields = shape["fields"]
        return plain_class(shape["model"])(**{k: rebuild(fields.get(k), v) for k, v in value.items()})
    if "list" in shape:
        return [rebuild(shape["list"], v) for v in value]
    return {k: rebuild(shape["dict"], v) for k, v in value.items()}
