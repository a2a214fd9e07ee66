"""The client: a module-like stand-in for `MetaTrader5`, served by a terminal server.

The mt5 broker and feed take it exactly as they take the package: the same
function names and arguments, the package's constants, named tuples with
`_asdict()`, structured arrays from `copy_rates_*`, None/False on failure and
`last_error()` saying why. Failures of the bridge itself come back the way
the package reports a lost terminal link (docs §9), so the adapter needs no
second code path:

- server unreachable, token refused, or calls before `initialize()`:
  (-10004, 'No IPC connection (...)');
- no answer within the call's timeout: (-10005, 'IPC timeout (...)');
- the connection dropped before the answer: (-10002, 'IPC recv failed (...)').

A read whose connection dropped is asked again on a new connection (reads
change nothing); `order_send` never is: a timed-out or lost `order_send` may
have executed, and the adapter's lookup by client id decides. After a dropped
connection the client reconnects with backoff and replays its last successful
`initialize()` (a restarted server answers "No IPC connection" until then).
"""

from __future__ import annotations

import functools
import logging
import socket
import ssl
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

from scalper.bridge import protocol as p

log = logging.getLogger("scalper.bridge")

RECONNECT_DELAYS_S = (0.0, 0.2, 0.5, 1.0)            # backoff between reconnect attempts
IDLE_CHECK_S = 2.0                                  # ping an idle connection before an order


class BridgeDown(Exception):
    """The server cannot be reached or refused us; `code` is the last_error code to report."""

    def __init__(self, text: str, code: int = p.LINK_DOWN, *, retry: bool = True):
        super().__init__(text)
        self.code = code
        self.retry = retry          # False: trying again cannot help (token refused, TLS refused)


@dataclass(frozen=True)
class BridgeAddress:
    host: str
    port: int
    token: str
    timeout_s: float = 10.0                  # reads, connect and handshake
    order_timeout_s: float = 30.0            # order_send
    tls: ssl.SSLContext | None = None
    server_name: str | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class RemoteTerminal:
    """`MetaTrader5`, one terminal server away. Thread-safe; one connection at a time."""

    def __init__(self, address: BridgeAddress, *, reconnect_delays=RECONNECT_DELAYS_S):
        self.address = address
        self._delays = tuple(reconnect_delays)
        self._lock = threading.RLock()
        self._conn = None
        # rpyc's remote functions (netrefs: untyped); None while not connected
        self._remote_call: Any = None
        self._remote_ping: Any = None
        self._last_answer = 0.0
        self._error: tuple[int, str] = (1, "Success")
        self._init: tuple[tuple, tuple] | None = None    # the last successful initialize() (args, kwargs)
        self.reconnects = 0

    def __repr__(self) -> str:
        return f"<RemoteTerminal {self.address.where}>"

    # --- module surface --------------------------------------------------------------------------
    def __getattr__(self, name: str):
        if name in p.CONSTANTS:
            return p.CONSTANTS[name]
        if name in p.ALLOWED_CALLS:
            return functools.partial(self._call, name)
        raise AttributeError(f"the terminal bridge does not serve MetaTrader5.{name}")

    def last_error(self) -> tuple[int, str]:
        return self._error

    def close(self) -> None:
        """Drop the connection (the terminal stays as it is on the server)."""
        with self._lock:
            self._drop()

    # --- calls ---------------------------------------------------------------------------------------
    def _call(self, name: str, *args, **kwargs):
        failed = False if name in p.BOOLEAN_CALLS else None
        try:
            wire_args = tuple(p.encode_argument(a) for a in args)
            wire_kwargs = tuple((k, p.encode_argument(v, k)) for k, v in kwargs.items())
        except p.RefusedValue as exc:
            self._error = (p.INVALID_ARGS, str(exc))
            return failed
        with self._lock:
            if name == "shutdown":            # the package's shutdown: this link closes, the terminal stays
                self._init = None
                self._drop()
                self._error = (1, "Success")
                return None
            if name != "initialize" and self._init is None:
                self._error = (p.LINK_DOWN, "No IPC connection")
                return failed
            try:
                value, error = self._request(name, wire_args, wire_kwargs)
            except BridgeDown as exc:
                self._error = (exc.code, str(exc))
                return failed
            self._error = error
            if name == "initialize" and value is True:
                self._init = (wire_args, wire_kwargs)
            return value

    def _request(self, name: str, args: tuple, kwargs: tuple):
        """(decoded value, last_error) from the server; BridgeDown when no answer can be had."""
        timeout = self.address.order_timeout_s if name in p.UNSAFE_TO_REPEAT else self.address.timeout_s
        fresh = self._conn is None
        self._ensure_connected()
        if name in p.UNSAFE_TO_REPEAT and not fresh and time.monotonic() - self._last_answer > IDLE_CHECK_S:
            fresh = self._check_alive()
        try:
            return self._once(name, args, kwargs, timeout)
        except _Lost as lost:
            self._drop()
            if name in p.UNSAFE_TO_REPEAT:
                raise BridgeDown(f"{lost.text} before the answer to {name}, which may have executed "
                                 f"(bridge {self.address.where})", lost.code) from None
            if fresh or lost.code == p.TIMED_OUT:
                raise BridgeDown(f"{lost.text} (bridge {self.address.where}, {name})", lost.code) from None
        # A read on a connection that had died in between: once more on a new one.
        self._ensure_connected()
        try:
            return self._once(name, args, kwargs, timeout)
        except _Lost as lost:
            self._drop()
            raise BridgeDown(f"{lost.text} (bridge {self.address.where}, {name})", lost.code) from None

    def _check_alive(self) -> bool:
        """Before an order on a connection idle for a while: a ping, so that a connection that died in
        between (a restarted server) is replaced before the order goes out, not after. True when the
        connection is new."""
        try:
            import rpyc

            answer = rpyc.async_(self._remote_ping)()
            answer.set_expiry(self.address.timeout_s)
            _ = answer.value            # waits for the answer (or the expiry, which raises)
            self._last_answer = time.monotonic()
            return False
        except Exception:
            self._drop()
            self._ensure_connected()
            return True

    def _once(self, name, args, kwargs, timeout):
        import rpyc
        from rpyc.core.async_ import AsyncResultTimeout

        try:
            answer = rpyc.async_(self._remote_call)(name, args, kwargs)
            answer.set_expiry(timeout)
            raw = answer.value
        except AsyncResultTimeout:
            raise _Lost(p.TIMED_OUT, f"IPC timeout (no answer within {timeout:g} s)") from None
        except (EOFError, OSError, ConnectionError) as exc:
            raise _Lost(p.ANSWER_LOST, f"IPC recv failed (connection lost: {type(exc).__name__})") from None
        if type(raw) is not tuple or len(raw) != 2 or type(raw[1]) is not tuple or len(raw[1]) != 2:
            raise _Lost(p.ANSWER_LOST, "IPC recv failed (a malformed answer)")
        self._last_answer = time.monotonic()
        code, text = raw[1]
        if type(code) is not int or type(text) is not str:
            raise _Lost(p.ANSWER_LOST, "IPC recv failed (a malformed answer)")
        try:
            return p.decode_result(raw[0]), (code, text)
        except (TypeError, ValueError) as exc:
            raise _Lost(p.ANSWER_LOST, f"IPC recv failed ({exc})") from None

    # --- the connection ----------------------------------------------------------------------------
    def _ensure_connected(self) -> None:
        if self._conn is not None and not self._conn.closed:
            return
        replaced = self._conn is not None or self._init is not None
        self._drop()
        last: BridgeDown | None = None
        for delay in self._delays:
            if delay:
                time.sleep(delay)
            try:
                self._connect()
                break
            except BridgeDown as exc:
                last = exc
                if not exc.retry:
                    break
        else:
            assert last is not None   # RECONNECT_DELAYS_S is never empty
            raise last
        if self._conn is None:
            assert last is not None   # the loop stopped on a refusal
            raise last
        if replaced:
            self.reconnects += 1
            log.warning("terminal bridge %s: reconnected", self.address.where)
            if self._init is not None:
                self._reinitialize()

    def _reinitialize(self) -> None:
        """A restarted server's terminal is not initialized: replay ours before anything else."""
        assert self._init is not None   # called only when there is one to replay
        args, kwargs = self._init
        try:
            value, error = self._once("initialize", args, kwargs, self.address.timeout_s)
        except _Lost as lost:
            self._drop()
            raise BridgeDown(f"{lost.text} (bridge {self.address.where}, initialize after reconnecting)",
                             lost.code) from None
        if value is not True:
            self._drop()                   # so that the next call tries again from the start
            raise BridgeDown(f"re-initializing the terminal after reconnecting failed ({error[0]} {error[1]})")

    def _connect(self) -> None:
        import rpyc
        from rpyc.core.stream import SocketStream

        a = self.address
        try:
            sock = socket.create_connection((a.host, a.port), timeout=a.timeout_s)
        except OSError as exc:
            raise BridgeDown(f"No IPC connection (cannot reach the terminal server at {a.where}: "
                             f"{exc.strerror or exc})") from None
        try:
            p.nodelay(sock)
            if a.tls is not None:
                sock = a.tls.wrap_socket(sock, server_hostname=a.server_name or a.host)
            sock.sendall(p.HELLO + a.token.encode() + b"\n")
            reply = _read_reply(sock)
        except ssl.SSLError as exc:
            _close(sock)
            raise BridgeDown(f"No IPC connection (TLS with the terminal server at {a.where} failed: "
                             f"{exc.reason or exc})", retry=False) from None
        except TimeoutError:
            _close(sock)
            raise BridgeDown(f"No IPC connection (the terminal server at {a.where} did not answer within "
                             f"{a.timeout_s:g} s)", p.TIMED_OUT, retry=False) from None
        except OSError as exc:
            _close(sock)
            raise BridgeDown(f"No IPC connection (the terminal server at {a.where} closed the connection: "
                             f"{exc.strerror or exc})") from None
        if reply == b"":
            _close(sock)
            raise BridgeDown(f"No IPC connection (the terminal server at {a.where} closed the connection during "
                             "the handshake: a TLS client certificate it does not accept, TLS on one end only, "
                             "or not a terminal server)", retry=False)
        if reply != b"OK\n":
            _close(sock)
            raise BridgeDown(f"No IPC connection (the terminal server at {a.where} refused the token: "
                             "set the same token on both ends)", retry=False)
        sock.settimeout(None)
        config = dict(allow_public_attrs=False, allow_all_attrs=False, allow_pickle=False, allow_setattr=False,
                      allow_delattr=False, import_custom_exceptions=False, instantiate_custom_exceptions=False,
                      sync_request_timeout=a.timeout_s)
        try:
            conn = rpyc.connect_stream(SocketStream(sock), service=rpyc.VoidService, config=config)
            root = conn.root                       # the remote lookups, once per connection
            self._conn, self._remote_call, self._remote_ping = conn, root.call, root.ping
        except Exception as exc:
            _close(sock)
            raise BridgeDown(f"No IPC connection (the terminal server at {a.where} failed the start: "
                             f"{type(exc).__name__})") from None
        self._last_answer = time.monotonic()

    def _drop(self) -> None:
        conn, self._conn, self._remote_call, self._remote_ping = self._conn, None, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    # --- health -------------------------------------------------------------------------------------
    def probe(self, pings: int = 5) -> dict:
        """Reachable, token accepted, latency (median of `pings` round trips), and when this client has
        initialized the terminal: connected to the trade server, trading allowed."""
        out: dict[str, Any] = {"reachable": False, "token_accepted": False, "latency_ms": None,
                               "terminal_connected": None, "trade_allowed": None, "error": None}
        with self._lock:
            try:
                self._ensure_connected()
            except BridgeDown as exc:
                out["reachable"] = "cannot reach" not in str(exc)
                out["error"] = str(exc)
                return out
            out["reachable"] = out["token_accepted"] = True
            times = []
            try:
                for _ in range(pings):
                    start = time.perf_counter()
                    self._remote_ping()
                    times.append(time.perf_counter() - start)
            except Exception as exc:
                self._drop()
                out["error"] = f"ping failed: {type(exc).__name__}"
                return out
            out["latency_ms"] = round(statistics.median(times) * 1000, 2)
        if self._init is not None:
            info = self.terminal_info()
            if info is None:
                out["error"] = f"terminal_info() failed ({self._error[0]} {self._error[1]})"
            else:
                out["terminal_connected"], out["trade_allowed"] = bool(info.connected), bool(info.trade_allowed)
        return out


class _Lost(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code, self.text = code, text


def _read_reply(sock) -> bytes:
    data = b""
    while len(data) < 3:
        chunk = sock.recv(3 - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _close(sock) -> None:
    try:
        sock.close()
    except OSError:
        pass


def client_tls(ca: str, cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


_SHARED: dict[tuple, RemoteTerminal] = {}
_SHARED_LOCK = threading.Lock()


def remote_terminal(cfg, resolve_path, *, error=None) -> RemoteTerminal:
    """The one client of this process for a `terminal:` block (a TerminalBridgeConfig): the mt5 broker
    and feed of one terminal share it, as they share the package. `error` (an Unavailable class) is
    raised when the token's environment variable is not set."""
    import os

    from scalper.errors import BrokerUnavailable

    token = os.environ.get(cfg.token_env, "")
    problem = p.token_problem(token)
    if problem:
        # the server's own rule: it never starts with such a token, so it could never accept this one
        raise (error or BrokerUnavailable)(
            f"the environment variable ${cfg.token_env} (token_env of the terminal server {cfg.host}:{cfg.port}) "
            f"is {problem}: export the same token that the terminal server was started with")
    tls = None
    if cfg.tls is not None:
        paths = [str(resolve_path(x)) for x in (cfg.tls.ca, cfg.tls.cert, cfg.tls.key)]
        try:
            tls = client_tls(*paths)
        except (OSError, ssl.SSLError) as exc:
            raise (error or BrokerUnavailable)(f"cannot load the TLS files of the terminal server "
                                               f"{cfg.host}:{cfg.port} ({exc})") from None
    key = (cfg.host, cfg.port, token, cfg.timeout_s, cfg.order_timeout_s,
           None if cfg.tls is None else (tuple(paths), cfg.tls.server_name))
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _SHARED[key] = RemoteTerminal(BridgeAddress(
                cfg.host, cfg.port, token, timeout_s=cfg.timeout_s, order_timeout_s=cfg.order_timeout_s, tls=tls,
                server_name=cfg.tls.server_name if cfg.tls else None))
        return found
