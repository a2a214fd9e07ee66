"""The connection to a MetaTrader 5 terminal, shared by the mt5 broker and the mt5 feed.

The MetaTrader5 package is one module-level connection per process, with one
process-wide last error and no GIL release (docs: mt5-api.md §1). What follows
from that lives here, once:

- one lock around every call and the `last_error()` that follows it;
- one connection, opened by whichever user comes first and shut down when the
  last one leaves; one account per terminal, so two brokers of one process may
  not hold different accounts (run one process per account);
- broker symbol names (`XAUUSD` → `XAUUSDm`), resolved once and added to
  Market Watch;
- the trade server's clock: its offset from UTC, configured or estimated from
  the newest quote in Market Watch (§4), so every time can be made UTC.

The password never passes through here except on its way from the
environment into `initialize()`/`login()`; no message carries it.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scalper.errors import BadInput, Unavailable

if TYPE_CHECKING:   # pydantic stays unloaded when the config comes from its cache
    from scalper.config import AccountConfig
from scalper.symbols import root_symbol

# The package's own failures of the link to the terminal (last_error codes, docs §9).
IPC_ERRORS = frozenset({-10000, -10001, -10002, -10003, -10004, -10005})
NO_ERROR: tuple[int, str] = (1, "Success")        # last_error() after a call that worked (RES_S_OK)

OFFSET_STEP_S = 1800                           # server offsets are whole half hours
OFFSET_TTL_S = 600                             # re-estimate now and then: DST moves it twice a year
OFFSET_RANGE_S = (-12 * 3600, 14 * 3600)       # a time zone; anything else means stale quotes
FRESH_QUOTE_S = 90                             # a quote this close to the half-hour grid is taken as live
OFFSET_FIX = ("set server_utc_offset_s on the account in bots.yaml (the trade server's time minus UTC, "
              "e.g. 10800 for UTC+3)")


class UnknownSymbol(BadInput):
    """The broker offers no symbol by that name (nor one with its root and a suffix)."""


@dataclass(frozen=True)
class TerminalAccount:
    """Which terminal, and which account in it. The password stays in the environment
    variable `password_env` until the moment the terminal needs it."""

    login: int | None = None
    server: str | None = None
    password_env: str | None = None
    terminal_path: str | None = None

    @classmethod
    def of(cls, acc: AccountConfig | None) -> TerminalAccount:
        if acc is None:
            return cls()
        return cls(login=acc.login, server=acc.server, password_env=acc.password_env,
                   terminal_path=acc.terminal_path)


def missing_package(what: str) -> str:
    """What to do when the MetaTrader5 package is missing, for `what` (the mt5 broker, feed): it
    exists for Windows only, so elsewhere the way is the terminal bridge, not an install that fails."""
    if sys.platform == "win32":
        return (f"{what} needs the MetaTrader5 package beside the terminal: pip install MetaTrader5 "
                "(or, in the scalper checkout, pip install '.[mt5]')")
    return (f"{what} needs the MetaTrader5 package, which runs only on Windows (or under Wine) beside the "
            "terminal; from here, reach the terminal through `scalper terminal-server`: pip install "
            "'.[bridge]' in the scalper checkout and give the mt5 account a `terminal:` "
            "(README, \"Trading from Linux\")")


def load_package(error: type[Unavailable], message: str):
    """The real MetaTrader5 module, imported only when nothing was injected."""
    try:
        import MetaTrader5
    except ImportError:
        raise error(message) from None
    return MetaTrader5


@dataclass
class _SharedState:
    """What every user of one MetaTrader5 module shares."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    open: bool = False
    users: dict[int, int | None] = field(default_factory=dict)   # id(user) → login a broker holds
    names: dict[str, str] = field(default_factory=dict)          # name asked for → broker's name
    asked: dict[str, str] = field(default_factory=dict)          # broker's name → first name asked for
    offset: tuple[int, float] | None = None                      # (seconds, when estimated)
    accepted: int | None = None                                  # the first offset estimated here

    def forget_account(self) -> None:
        """Symbol names and the clock belong to one trade server."""
        self.names.clear()
        self.asked.clear()
        self.offset = None
        self.accepted = None


# One state per MetaTrader5 module object: in production the one package; in tests, each fake.
_STATES: weakref.WeakKeyDictionary[Any, _SharedState] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def _state_of(module) -> _SharedState:
    with _STATES_LOCK:
        return _STATES.setdefault(module, _SharedState())


class Terminal:
    """One user's handle on the process-wide terminal connection. Failures raise `error`
    (BrokerUnavailable for the broker, FeedUnavailable for the feed)."""

    def __init__(self, module, *, error: type[Unavailable], server_offset_s: int | None = None,
                 uncertain_error: type[Unavailable] | None = None):
        self.mt5 = module
        self.error = error
        self.uncertain_error = uncertain_error or error
        self.server_offset_s = server_offset_s
        self._state = _state_of(module)

    # --- calls -------------------------------------------------------------------------------
    def call(self, function: str, *args, **kwargs) -> tuple[Any, tuple[int, str]]:
        """(value, error): `error` is last_error() when the call failed (None/False), else NO_ERROR."""
        with self._state.lock:
            value = getattr(self.mt5, function)(*args, **kwargs)
            if value is not None and value is not False:
                return value, NO_ERROR
            code, text = self.mt5.last_error()
            if code in IPC_ERRORS:
                self._state.open = False  # the link is gone: the next open() starts it again
            return value, (code, text)

    def need(self, function: str, *args, **kwargs) -> Any:
        """The call's value, or `error` saying what failed."""
        value, error = self.call(function, *args, **kwargs)
        if error is not NO_ERROR:
            raise self.error(describe_failure(function, error))
        return value

    # --- connection --------------------------------------------------------------------------
    def open(self, user: object, account: TerminalAccount, *, hold: bool) -> None:
        """Attach `user`, initializing the terminal if nobody has. `hold` (a broker): the
        terminal must be, and stay, logged in to `account`; it is switched to it when free."""
        s = self._state
        with s.lock:
            if s.open and id(user) in s.users and not hold:
                return
            others = {login for uid, login in s.users.items() if uid != id(user) and login is not None}
            if hold and account.login is not None and others - {account.login}:
                raise self.error(
                    f"this process already trades account {others.pop()} on this terminal, and a terminal "
                    f"holds one account at a time: run account {account.login} in its own process with its "
                    "own terminal installation")
            if not s.open:
                self._initialize(account)
            elif hold and account.login is not None and self.need("account_info").login != account.login:
                self._switch(account)
            s.users[id(user)] = (account.login or self.need("account_info").login) if hold else None

    def close(self, user: object) -> None:
        s = self._state
        with s.lock:
            s.users.pop(id(user), None)
            if not s.users and s.open:
                self.call("shutdown")
                s.open = False

    def _initialize(self, account: TerminalAccount) -> None:
        self._check_password(account)
        path = (account.terminal_path,) if account.terminal_path else ()
        ok, error = self.call("initialize", *path, **_credentials(account))
        if not ok:
            raise self.error(describe_connect_failure(error, account))
        self._state.open = True
        self._state.forget_account()

    def _switch(self, account: TerminalAccount) -> None:
        self._check_password(account)
        ok, error = self.call("login", account.login, **_credentials(account, with_login=False))
        if not ok:
            raise self.error(describe_connect_failure(error, account))
        self._state.forget_account()

    def _check_password(self, account: TerminalAccount) -> None:
        if account.password_env and not os.environ.get(account.password_env):
            raise self.error(f"the environment variable ${account.password_env} (password_env of login "
                             f"{account.login}) is not set: export the account's password in it")

    # --- symbols -------------------------------------------------------------------------------
    def resolve(self, symbol: str) -> str:
        """The broker's name for `symbol`, in Market Watch: the exact name when the broker knows it,
        else the one symbol with the same root (XAUUSD → XAUUSDm, XAUUSD.a)."""
        s = self._state
        with s.lock:
            if symbol in s.names:
                return s.names[symbol]
            info, error = self.call("symbol_info", symbol)
            if info is None:
                self._raise_if_unreachable("symbol_info", error)
                info = self._by_root(symbol)
            if not info.select:
                ok, error = self.call("symbol_select", info.name, True)
                if not ok:
                    self._raise_if_unreachable("symbol_select", error)
                    raise UnknownSymbol(f"{info.name} cannot be added to Market Watch ({error[0]} {error[1]})")
            s.names[symbol] = info.name
            s.asked.setdefault(info.name, symbol)
            return info.name

    def alias(self, broker_name: str) -> str:
        """The name this process asked for (XAUUSD) for a broker's name (XAUUSDm)."""
        return self._state.asked.get(broker_name, broker_name)

    def _by_root(self, symbol: str):
        root = root_symbol(symbol)
        found = [i for i in self.need("symbols_get", group=f"*{root}*") if root_symbol(i.name) == root]
        if len(found) > 1:
            found = [i for i in found if i.select] or found  # what the operator put in Market Watch
        if len(found) == 1:
            return found[0]
        fix = "write the broker's exact symbol name in bots.yaml (see the terminal's Market Watch)"
        if not found:
            raise UnknownSymbol(f"the broker offers no symbol {symbol} (nor one matching *{root}*)", fix=fix)
        names = ", ".join(sorted(i.name for i in found))
        raise UnknownSymbol(f"{symbol} could be any of {names} at this broker", fix=fix)

    def _raise_if_unreachable(self, function: str, error: tuple[int, str]) -> None:
        if error[0] in IPC_ERRORS:
            raise self.error(describe_failure(function, error))

    # --- the server's clock ------------------------------------------------------------------------
    def offset(self, now: float) -> int:
        """Seconds the server's clock is ahead of UTC: configured, or estimated from the newest quote
        in Market Watch. Only a live quote tells: its time minus `now` must sit within FRESH_QUOTE_S
        of a whole or half hour. A stale one (a market break: gold's daily hour, a weekend) would give
        a smaller offset and move every bar to another UTC time, so it is refused, as is an estimate
        that differs from the one this process made first (a DST change needs the offset configured).
        Refusals raise `uncertain_error`, saying to configure server_utc_offset_s."""
        if self.server_offset_s is not None:
            return self.server_offset_s
        s = self._state
        with s.lock:
            if s.offset is not None and abs(now - s.offset[1]) < OFFSET_TTL_S:
                return s.offset[0]
            quoted = [i.time for i in self.need("symbols_get") if i.select and i.time > 0]
            if not quoted:
                raise self.uncertain_error("cannot tell the trade server's time zone: no symbol in Market Watch "
                                           f"has a quote yet; {OFFSET_FIX}")
            raw = max(quoted) - now
            offset = round(raw / OFFSET_STEP_S) * OFFSET_STEP_S
            lag = offset - raw          # how old the newest quote is, if `offset` is right
            if not OFFSET_RANGE_S[0] <= offset <= OFFSET_RANGE_S[1] or not -5 <= lag <= FRESH_QUOTE_S:
                s.offset = None
                raise self.uncertain_error(
                    "cannot tell the trade server's time zone: the newest quote in Market Watch is not live "
                    f"(the markets look closed or in a break); {OFFSET_FIX}")
            if s.accepted is not None and offset != s.accepted:
                s.offset = None
                raise self.uncertain_error(
                    f"the trade server's time zone now looks like UTC{offset / 3600:+g} h, not "
                    f"UTC{s.accepted / 3600:+g} h as estimated before; {OFFSET_FIX}")
            s.accepted = offset
            s.offset = (offset, now)
            return offset


def _credentials(account: TerminalAccount, *, with_login: bool = True) -> dict:
    """Keyword arguments for initialize()/login(): only what is set (None is not a valid value)."""
    args: dict = {}
    if with_login and account.login is not None:
        args["login"] = int(account.login)
    if account.password_env:
        args["password"] = os.environ[account.password_env]
    if account.server:
        args["server"] = account.server
    return args


def describe_failure(function: str, error: tuple[int, str]) -> str:
    code, text = error
    if code in IPC_ERRORS:
        return f"the MetaTrader 5 terminal did not answer {function}() ({code} {text}): is it still running?"
    return f"MetaTrader 5 {function}() failed ({code} {text})"


def describe_connect_failure(error: tuple[int, str], account: TerminalAccount) -> str:
    """What went wrong connecting, and what to do — without the password."""
    code, text = error
    if code == -6:
        who = f"login {account.login} on server {account.server!r}" if account.login else "the saved login"
        password = f"the password in ${account.password_env}" if account.password_env else \
            "the password saved in the terminal (or set password_env)"
        return f"authorization failed for {who} ({code} {text}): check login/server and {password}"
    if code == -10003:
        return (f"no MetaTrader 5 terminal could be found or started ({code} {text}): install it, or set "
                f"terminal_path to its terminal64.exe (now: {account.terminal_path or 'not set'})")
    if code == -10005:
        return (f"the MetaTrader 5 terminal did not answer in time ({code} {text}): close any login or update "
                "dialog in it and try again")
    if code == -10004:
        return f"lost the link to the MetaTrader 5 terminal ({code} {text}): is it still running?"
    return f"the MetaTrader 5 terminal refused the connection ({code} {text})"
