"""bots.yaml: the schema, loading with precise errors, and defaults.

Everything a trader can set lives here, validated by pydantic before anything
runs. A bad file raises ConfigError (exit 2) naming the file, the line where
known, the field path and the fix; nothing is written.
"""

from __future__ import annotations

import functools
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from scalper import settings
from scalper.config_cache import _cache_key, _code_stamp, load_config  # noqa: F401  (its home)
from scalper.config_rules import AccountRules, BotRules, ConfigRules, NotifyRules
from scalper.core.rules import DEFAULT_BALANCE, DEFAULT_LOOKBACK, RiskRules
from scalper.fleet.hosts import LOCAL
from scalper.symbols import SymbolSpec

# Every default below that the core also reads is taken from the core's own value objects.
_RULES = RiskRules()
_LIMITS, _KILL, _TRAIL = _RULES.limits, _RULES.kill_switch, _RULES.trailing
_SPEC = SymbolSpec("", digits=0, contract_size=1.0)   # its defaults: what a `symbols:` entry leaves out

PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(gt=0, le=100)]
# Upper bounds that keep every money figure (price x lots x contract size, balances) finite:
# far above any real account, far below float overflow (prices are capped by feeds.plausible).
MAX_MONEY = 1e12
MAX_LOTS = 1e5
MAX_CONTRACT_SIZE = 1e9
Money = Annotated[float, Field(gt=0, le=MAX_MONEY)]
Lots = Annotated[float, Field(gt=0, le=MAX_LOTS)]


class Problem(ValueError):
    """A validation problem located more precisely than the validator's own field.

    `loc` is appended to the location pydantic reports (the model or field the
    validator belongs to), so the message points at the exact key or list item;
    `fix` says what to do. config_errors turns it into file:line: field: message — fix.
    """

    def __init__(self, message: str, *, loc: tuple = (), fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = tuple(loc)
        self.fix = fix


def _is_number_type(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _is_number_type(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_number_type(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        return _is_number_type(typing.get_args(tp)[0])
    return tp is int or tp is float


class Strict(BaseModel):
    # defer_build: a config loaded from the validated-config cache (see load_config) never needs
    # pydantic's validators, so they are built on first validation only (~50 ms of start-up)
    model_config = ConfigDict(extra="forbid", strict=False, validate_default=True, allow_inf_nan=False,
                              defer_build=True)

    @classmethod
    @functools.cache
    def _number_fields(cls) -> frozenset[str]:
        return frozenset(n for n, f in cls.model_fields.items() if _is_number_type(f.annotation))

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, data: Any):
        """pydantic's lax mode reads true as 1; in a bots file that is always a slip."""
        if isinstance(data, dict):
            for name in cls._number_fields():
                value = data.get(name)
                items = value if isinstance(value, list) else [value]
                for i, item in enumerate(items):
                    if isinstance(item, bool):
                        word = "true" if item else "false"
                        at = (name, i) if isinstance(value, list) else (name,)
                        raise Problem(f"`{word}` is not a number (YAML also reads a bare yes/no/on/off as "
                                      f"true/false)", loc=at, fix="write a number")
        return data


class FaultConfig(Strict):
    """Faults the paper broker injects (tests and drills). See README."""

    retcodes: list[int] = Field(default_factory=list, description="return these codes for the next sends, in order")
    crash_at: Literal["before_fill", "after_fill"] | None = None
    unreachable: bool = False
    lost_answer: bool = False
    answer_delay_s: NonNegFloat = Field(default=0.0, description="every opening send executes, then answers this late")


class PaperConfig(Strict):
    state: str = "var/paper-broker.db"
    initial_balance: Money = DEFAULT_BALANCE
    currency: str = "USD"
    faults: FaultConfig = Field(default_factory=FaultConfig)


class FeedConfig(Strict):
    type: Literal["builtin", "csv", "mt5"] = "builtin"
    path: str | None = Field(default=None, description="csv: a file, or a pattern with {symbol}")
    files: dict[str, str] = Field(default_factory=dict, description="csv: symbol → file")
    max_bar_age_s: PosInt = Field(default=180, description="refuse to trade on bars older than this (live feeds)")
    seed: int = 7

    @model_validator(mode="after")
    def _csv_needs_files(self):
        if self.type == "csv" and not (self.path or self.files):
            raise Problem("a csv feed needs `path` or `files`",
                          fix="add `path: data/{symbol}.csv` (a file, or a pattern with {symbol}) or "
                              "`files: {XAUUSD: data/XAUUSD_M1.csv}`")
        return self


def _env_name_only(value: str, message: str, *, fix: str) -> str:
    """A secret's field holds the environment variable's name, never the secret itself."""
    from scalper.config_errors import is_env_name

    if not is_env_name(value):
        raise Problem(message, fix=fix)
    return value


class BridgeTlsConfig(Strict):
    """TLS to a terminal server: its CA (to check the server), and this client's certificate."""

    ca: str = Field(description="the CA certificate (PEM) that signed the terminal server's certificate")
    cert: str = Field(description="this client's certificate (PEM), which the server checks")
    key: str = Field(description="this client's private key (PEM)")
    server_name: str | None = Field(default=None, description="the name in the server's certificate; default: host")


class TerminalBridgeConfig(Strict):
    """An MT5 terminal reached through `scalper terminal-server` instead of the local MetaTrader5 package."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 18812
    token_env: str = Field(default="SCALPER_BRIDGE_TOKEN",
                           description="name of the environment variable holding the shared token")
    timeout_s: PosFloat = Field(default=10.0, description="answer time allowed for a read (quotes, bars, positions)")
    order_timeout_s: PosFloat = Field(default=30.0, description="answer time allowed for order_send; past it the order "
                                                        "is uncertain and looked up, never resent blindly")
    tls: BridgeTlsConfig | None = None

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        return _env_name_only(v, "must be the NAME of an environment variable, not the token itself",
                              fix="write e.g. `token_env: SCALPER_BRIDGE_TOKEN` and export "
                                  "SCALPER_BRIDGE_TOKEN=... on both ends")


# --- fleet (scalper/fleet): which machine trades an account, and the Celery broker ------------------
HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class FleetConfig(Strict):
    """`fleet:` — Celery passes per terminal host (`scalper worker`, `scalper beat`)."""

    broker_url: str | None = Field(default=None, description="redis://… or amqp://… without a password "
                                                             "(SCALPER_BROKER_URL wins, and carries credentials)")
    queue_prefix: HostName = Field(default="scalper", description="queues are <prefix>.<host>")

    @field_validator("broker_url")
    @classmethod
    def _no_password(cls, v: str | None) -> str | None:
        from urllib.parse import urlsplit

        if v is not None and urlsplit(v).password:
            raise Problem("the broker URL must not carry a password in bots.yaml",
                          fix="write it without the password and export the full URL as SCALPER_BROKER_URL")
        return v


class AccountConfig(Strict, AccountRules):
    id: int = Field(ge=0)
    name: str | None = None
    broker: Literal["paper", "mt5"] = "paper"
    balance: Money | None = Field(default=None, description="paper: starting balance")
    login: int | None = None
    server: str | None = None
    password_env: str | None = Field(default=None, description="name of the environment variable holding the password")
    terminal_path: str | None = None
    server_utc_offset_s: Annotated[int, Field(ge=-12 * 3600, le=14 * 3600)] | None = Field(
        default=None, description="mt5: broker server time minus UTC, in seconds (e.g. 10800 for UTC+3); "
                          "estimated from live quotes when left out")
    terminal: TerminalBridgeConfig | None = Field(
        default=None, description="mt5: reach the terminal through `scalper terminal-server` at host:port (e.g. from "
                          "Linux to a Windows VPS) instead of importing MetaTrader5 here")
    host: HostName = Field(default=LOCAL, description="the terminal host whose `scalper worker --host NAME` trades "
                                                "this account (a fleet; see README)")

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any):
        # The value is never echoed: the message names the key only.
        from scalper.config_errors import SECRET_FIX, looks_secret

        if isinstance(data, dict):
            for key in data:
                if looks_secret(key):
                    raise Problem(f"`{key}` must not be written in bots.yaml", loc=(str(key),), fix=SECRET_FIX)
        return data

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        from scalper.config_errors import is_env_name

        if v is not None and not is_env_name(v):
            # Someone may have pasted the password itself here: do not repeat it.
            raise Problem("must be the NAME of an environment variable (letters, digits and _, not starting "
                          "with a digit), not the password itself",
                          fix="write e.g. `password_env: MT5_PASSWORD_7` and export MT5_PASSWORD_7=... "
                              "in the environment that runs scalper")
        return v

    @model_validator(mode="after")
    def _terminal_is_for_mt5(self):
        if self.terminal is not None and self.broker != "mt5":
            raise Problem("`terminal` (a terminal server to trade through) is for mt5 accounts only",
                          loc=("terminal",), fix="set `broker: mt5` on this account, or remove `terminal`")
        return self


class TrailingConfig(Strict):
    enabled: bool = _TRAIL.enabled
    activate_r: NonNegFloat = Field(default=_TRAIL.activate_r,
                                    description="start trailing once profit reaches this many R")
    distance_r: PosFloat = Field(default=_TRAIL.distance_r,
                                 description="keep the stop this many R behind the best price")


class RiskConfig(Strict):
    max_concurrent: PosInt = _LIMITS.max_concurrent
    max_per_symbol: PosInt = _LIMITS.max_per_symbol
    decision_min_score: Annotated[float, Field(ge=0, le=1)] = _LIMITS.decision_min_score
    signal_max_age_s: PosInt = Field(default=_LIMITS.signal_max_age_s,
                                     description="a signal older than this (from its bar's close) is stale")
    min_balance: NonNegFloat = _LIMITS.min_balance
    daily_loss_limit: PosFloat | None = Field(default=_LIMITS.daily_loss_limit,
                                              description="account currency; realized + unrealized today")
    daily_loss_limit_pct: Percent | None = _LIMITS.daily_loss_limit_pct
    max_spread_points: PosFloat | None = _LIMITS.max_spread_points
    kill_switch: bool = Field(default=_KILL.enabled,
                              description="close positions past the unrealized-loss limit and halt")
    kill_switch_loss: PosFloat | None = Field(default=_KILL.loss,
                                              description="unrealized loss (account currency) that trips it")
    kill_switch_loss_pct: Percent | None = Field(default=_KILL.loss_pct, description="…or this percent of the balance")
    risk_percent: Annotated[float, Field(gt=0, le=10)] | None = Field(
        default=_RULES.risk_percent, description="size each order to lose this percent of the balance at its SL (never "
                                         "more: an order below the symbol's minimum volume is not sent)")
    trailing: TrailingConfig = Field(default_factory=TrailingConfig)


class BotConfig(Strict, BotRules):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    symbol: Annotated[str, Field(min_length=1, max_length=29, pattern=r"^[^\s/\\]+$")]
    enabled: bool = True
    engine_mode: Literal["scalper", "legacy", "off"] = "scalper"
    timeframe: Literal["1m"] = "1m"
    lookback: Annotated[int, Field(ge=15, le=5000)] = DEFAULT_LOOKBACK
    user_id: int | None = None
    accounts: list[int] = Field(min_length=1)
    auto_trade: bool = True
    qty: Lots | None = None
    magic: Annotated[int, Field(gt=0, lt=2**63)] | None = None
    strategies: list[str] = Field(default_factory=lambda: list(_strategy_names()), min_length=1)
    strategy_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    correlation_group: str | None = None

    @field_validator("engine_mode", mode="before")
    @classmethod
    def _bare_off(cls, v: Any) -> Any:
        # `engine_mode: off` unquoted is YAML 1.1 for false; the trader meant "off".
        return "off" if v is False else v

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, v: list[str]) -> list[str]:
        names = _strategy_names()
        for i, s in enumerate(v):
            if s not in names:
                raise Problem(f"unknown strategy {s!r}", loc=(i,), fix=_pick(s, names))
        for i, s in enumerate(v):
            if s in v[:i]:
                raise Problem(f"{s!r} is listed twice", loc=(i,), fix="list each strategy once")
        return v

    @model_validator(mode="after")
    def _params(self):
        from scalper.core import strategies as registry

        names = _strategy_names()
        for name in self.strategy_params:
            if name not in names:
                raise Problem(f"unknown strategy {name!r}", loc=("strategy_params", name), fix=_pick(name, names))
        # Every strategy's parameters are checked, also those of a strategy not enabled yet:
        # a typo must not wait for the day someone adds it to `strategies`.
        for name in dict.fromkeys([*self.strategies, *self.strategy_params]):
            overrides = self.strategy_params.get(name) or {}
            try:
                registry.resolve_params(name, overrides, lookback=self.lookback)
            except ValueError as exc:
                raise _param_problem(name, overrides, exc, self.strategy_params) from None
        return self


class SymbolOverride(Strict):
    """A symbol's trading rules (`symbols:`), for symbols the built-in table lacks or a broker that differs."""

    digits: Annotated[int, Field(ge=0, le=8)]
    contract_size: Annotated[float, Field(gt=0, le=MAX_CONTRACT_SIZE)]
    volume_min: Lots = _SPEC.volume_min
    volume_max: Lots = _SPEC.volume_max
    volume_step: Lots = _SPEC.volume_step
    spread_points: NonNegFloat = _SPEC.spread_points
    stops_level: Annotated[int, Field(ge=0)] = _SPEC.stops_level
    currency: str = _SPEC.currency


class EngineConfig(Strict):
    interval_s: Annotated[float, Field(ge=5, le=3600)] = 45.0
    metrics_file: str | None = None
    log_file: str | None = "var/scalper.log"
    retry_budget_s: Annotated[float, Field(gt=0, le=60)] = 8.0
    retry_attempts: Annotated[int, Field(ge=1, le=20)] = 5


NOTIFY_EVENTS = ("fills", "closes", "kill_switch", "errors", "stale", "daily_summary")


class NotifyTarget(Strict, NotifyRules):
    """Where alerts go (`notify:`). The URL carries a token: it lives only in the environment."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")] | None = Field(
        default=None, description="how output and the ledger name this target; default: the url_env name")
    url_env: str = Field(description="name of the environment variable holding the apprise URL")
    events: list[str] = Field(default_factory=lambda: list(NOTIFY_EVENTS), min_length=1)
    bots: list[str] | None = Field(default=None, description="only these bots' events (default: every bot)")
    daily_summary_at: str = Field(default="21:00", description="UTC time of day after which the daily summary goes out")
    timeout_s: Annotated[float, Field(gt=0, le=15)] = Field(default=5.0, description="per delivery (connect, and read)")
    max_tries: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=40, description="an alert that failed this many deliveries is dropped (with an audit row)")

    @model_validator(mode="before")
    @classmethod
    def _no_url_in_file(cls, data: Any):
        # The value is never echoed: it carries the token.
        from scalper.config_errors import looks_secret

        if isinstance(data, dict):
            for key in data:
                if str(key).lower() in ("url", "urls", "uri", "webhook") or looks_secret(key):
                    raise Problem(f"`{key}` must not be written in bots.yaml: a notification URL carries a token",
                                  loc=(str(key),), fix="export the URL in an environment variable and name "
                                  "it here, e.g. `url_env: SCALPER_TELEGRAM_URL`")
        return data

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        return _env_name_only(v, "must be the NAME of an environment variable (letters, digits and _), not the "
                                 "URL itself", fix="write e.g. `url_env: SCALPER_TELEGRAM_URL` and export "
                                                   "SCALPER_TELEGRAM_URL=... in the environment that runs scalper")

    @field_validator("events")
    @classmethod
    def _known_events(cls, v: list[str]) -> list[str]:
        for i, e in enumerate(v):
            if e not in NOTIFY_EVENTS:
                import difflib

                near = difflib.get_close_matches(str(e), NOTIFY_EVENTS, n=1, cutoff=0.5)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise Problem(f"unknown event {e!r}", loc=(i,),
                              fix=f"{hint}valid events: {', '.join(NOTIFY_EVENTS)}")
            if e in v[:i]:
                raise Problem(f"{e!r} is listed twice", loc=(i,), fix="list each event once")
        return v

    @field_validator("daily_summary_at", mode="before")
    @classmethod
    def _time_of_day(cls, v: Any) -> str:
        import re

        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 24 * 60:
            v = f"{v // 60}:{v % 60:02d}"   # YAML 1.1 reads an unquoted 21:00 as 1260 (base 60)
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(v).strip())
        if not m:
            raise Problem(f"{v!r} is not a time of day", fix='write HH:MM in UTC, quoted, e.g. "21:00"')
        return f"{int(m[1]):02d}:{m[2]}"


class Config(Strict, ConfigRules):
    version: Literal[1] = 1
    ledger: str = "var/ledger.db"
    engine: EngineConfig = Field(default_factory=EngineConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    accounts: list[AccountConfig] = Field(min_length=1)
    symbols: dict[str, SymbolOverride] = Field(default_factory=dict)
    correlation_groups: dict[str, list[str]] = Field(default_factory=dict)
    bots: list[BotConfig] = Field(default_factory=list)
    notify: list[NotifyTarget] = Field(default_factory=list, description="alert targets (see README, Alerts)")
    fleet: FleetConfig = Field(default_factory=FleetConfig)

    # set by the loader, not by the file
    source: str | None = Field(default=None, exclude=True)

    @field_validator("ledger")
    @classmethod
    def _no_password_in_ledger_url(cls, v: str) -> str:
        if v.startswith(("postgresql://", "postgres://")):   # a PostgreSQL ledger: credentials stay out of the file
            from scalper.errors import ConfigError
            from scalper.ledger.postgres import LedgerUrl

            try:
                LedgerUrl.parse(v)
            except ConfigError as exc:
                raise Problem(exc.message, fix=exc.fix) from None
        return v

    @field_validator("bots", mode="before")
    @classmethod
    def _no_bots_yet(cls, v: Any) -> Any:
        return [] if v is None else v   # `bots:` with nothing under it: no bots yet

    @model_validator(mode="after")
    def _cross_checks(self):
        first: dict[int, int] = {}
        for j, a in enumerate(self.accounts):
            if a.id in first:
                raise Problem(f"id {a.id} is already used by accounts[{first[a.id]}]", loc=("accounts", j, "id"),
                              fix="give each account its own id")
            first[a.id] = j
        seen: dict[str, int] = {}
        for j, b in enumerate(self.bots):
            if b.name in seen:
                raise Problem(f"the name {b.name!r} is already used by bots[{seen[b.name]}]; bot names are unique",
                              loc=("bots", j, "name"), fix="rename one of the two bots")
            seen[b.name] = j
        known = sorted(first)
        for i, bot in enumerate(self.bots):
            for k, acc in enumerate(bot.accounts):
                if acc not in first:
                    raise Problem(f"account {acc} is not defined under `accounts:` (defined: "
                                  f"{', '.join(map(str, known))})", loc=("bots", i, "accounts", k),
                                  fix=f"use one of the defined ids, or add an account with `id: {acc}`")
            for k, acc in enumerate(bot.accounts):
                if acc in bot.accounts[:k]:
                    raise Problem(f"account {acc} is listed twice", loc=("bots", i, "accounts", k),
                                  fix="list each account once (one order per account)")
            if bot.correlation_group and bot.correlation_group not in self.correlation_groups:
                groups = ", ".join(self.correlation_groups) or "none defined"
                raise Problem(f"correlation group {bot.correlation_group!r} is not defined under "
                              f"`correlation_groups:` ({groups})", loc=("bots", i, "correlation_group"),
                              fix="define it under `correlation_groups:` or remove the line")
        return self

    @model_validator(mode="after")
    def _fixed_qty_tradable(self):
        """A fixed order size below the symbol's minimum volume could never be sent as set, and is
        never raised to the minimum (that would risk more than the bot is set to): refused here
        when the symbol's rules are known (`symbols:` or the built-in table), else at order time."""
        from scalper.core.sizing import size_order
        from scalper.symbols import known_spec, root_symbol

        specs = settings.symbol_specs(self)
        for i, bot in enumerate(self.bots):
            if bot.risk.risk_percent is not None:
                continue   # sized per order; refused then with risk_volume_below_minimum if too small
            spec = known_spec(bot.symbol, specs)
            qty = self.qty_of(bot, specs)
            if spec is None or size_order(qty=qty, spec=spec).ok:
                continue
            least = spec.volume_min
            listed = bot.symbol in specs or root_symbol(bot.symbol) in specs
            source = "`symbols:`" if listed else "the built-in symbol table"
            what = f"qty {qty:g}" if bot.qty is not None else f"the default qty {qty:g}"
            raise Problem(f"bot {bot.name!r}: {what} is below {bot.symbol}'s minimum volume {least:g} (from "
                          f"{source}, volume step {spec.volume_step:g}); such an order is never sent, nor "
                          "raised to the minimum", loc=("bots", i, "qty") if bot.qty is not None else ("bots", i),
                          fix=f"set `qty: {least:g}` or more, or size by `risk.risk_percent`; if your broker's "
                              f"minimum differs, describe the symbol under `symbols: {bot.symbol}:` (digits, "
                              "contract_size, volume_min, volume_step)")
        return self

    @model_validator(mode="after")
    def _builtin_knows_the_symbols(self) -> Config:
        """The built-in feed makes up a market for a symbol it does not know: a misspelt symbol
        would trade a price series nothing resembles. Refused, unless `symbols:` describes it."""
        if self.feed.type != "builtin":
            return self
        from scalper.feeds.builtin import unknown_symbol

        specs = settings.symbol_specs(self)
        for i, bot in enumerate(self.bots):
            problem = unknown_symbol(bot.symbol, specs)
            if problem is not None:
                raise Problem(f"bot {bot.name!r}: {problem}", loc=("bots", i, "symbol"),
                              fix="correct the symbol, or describe it under `symbols:` (digits, contract_size) "
                                  "to trade a made-up market for it on purpose")
        return self

    @model_validator(mode="after")
    def _notify_checks(self):
        names = {b.name for b in self.bots}
        first: dict[str, int] = {}
        for j, t in enumerate(self.notify):
            if t.label in first:
                raise Problem(f"the target name {t.label!r} is already used by notify[{first[t.label]}]",
                              loc=("notify", j, "name"), fix="give each target its own `name:`")
            first[t.label] = j
            for k, b in enumerate(t.bots or []):
                if b not in names:
                    raise Problem(f"no bot named {b!r}", loc=("notify", j, "bots", k),
                                  fix=f"use one of: {', '.join(sorted(names)) or '(no bots defined)'}")
        return self


def _strategy_names() -> tuple[str, ...]:
    from scalper.core import strategies as registry

    return tuple(registry.STRATEGY_NAMES)


def _pick(name: object, names: tuple[str, ...]) -> str:
    import difflib

    near = [n for n in names if str(name).lower() in n] or difflib.get_close_matches(str(name), names, n=1,
                                                                                     cutoff=0.5)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"{hint}valid strategies: {', '.join(names)}"


def _param_problem(name: str, overrides: dict, exc: ValueError, given: dict) -> Problem:
    """Point a strategy-parameter problem at the key to change, and split its message from its fix."""
    text = str(exc)
    message, _, fix_text = text.rpartition("; ")
    fix: str | None = fix_text
    if not message:
        message, fix = text, None
    param = getattr(exc, "param", None)
    loc: tuple[str, ...]
    if param and param in overrides:
        loc = ("strategy_params", name, param)
    elif "lookback=" in text:  # the default min_bars against the bot's lookback
        loc = ("lookback",)
    elif "min_bars" in overrides and "min_bars" in text:
        loc = ("strategy_params", name, "min_bars")
    elif name in given:
        loc = ("strategy_params", name)
    else:  # defaults are consistent; only the bot's lookback can make them fail
        loc = ("lookback",)
    if loc == ("lookback",):
        message = f"strategy {name}: {message}"
    if fix and fix.startswith("valid parameters are: "):
        fix = f"use one of: {fix[len('valid parameters are: '):]}"
    return Problem(message, loc=loc, fix=fix)


# --- loading (scalper.config_cache.load_config reads a file: the cache, else this) ----------------
def _validate_file(p: Path) -> Config:
    from scalper.config_errors import validation_to_config_error
    from scalper.config_yaml import load_yaml_document

    data, lines = load_yaml_document(p)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(exc, p, lines) from None


def model_shape(annotation: Any) -> dict | None:
    """Where a validated dump holds models (for scalper.settings.rebuild, without pydantic):
    {"model": name, "fields": {field: shape}}, {"list": shape}, {"dict": shape}; None for plain
    values. An optional or union field takes its first non-None type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return model_shape(args[0])
    if origin in (typing.Union, types.UnionType):
        return next((model_shape(a) for a in args if a is not type(None)), None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = {name: model_shape(f.annotation) for name, f in annotation.model_fields.items()}
        return {"model": annotation.__name__, "fields": {n: f for n, f in fields.items() if f is not None}}
    if origin is list:
        inner = model_shape(args[0])
        return None if inner is None else {"list": inner}
    if origin is dict:
        inner = model_shape(args[1])
        return None if inner is None else {"dict": inner}
    return None
