"""`scalper terminal-server`: the MetaTrader5 package served to scalper on other hosts.

Run it where MetaTrader5 imports (the terminal's Windows host, or Wine
Python). One server serves one terminal; every call and the `last_error()`
that follows it run under one lock, so clients never see each other's errors.

Access: a connection first proves it knows the token (compared in constant
time); anything else is closed at once. TLS with a client certificate when
asked for. Past that, the only thing a client can do is `call(name, args,
kwargs)` with a name from `protocol.ALLOWED_CALLS` and plain arguments: no
attribute access, no remote objects, no pickle, no classic mode.

`shutdown()` from a client is acknowledged and not passed on: the server
owns the terminal link, which other clients may be using.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from scalper.bridge import protocol as p

log = logging.getLogger("scalper.bridge")

HANDSHAKE_TIMEOUT_S = 5.0
FAULTS_ENV = "SCALPER_BRIDGE_FAULTS"

# rpyc: only `exposed_` names of the service, nothing by value but brine's plain types.
PROTOCOL_CONFIG = {
    "allow_public_attrs": False, "allow_all_attrs": False, "allow_setattr": False, "allow_delattr": False,
    "allow_pickle": False, "allow_getattr": True, "allow_exposed_attrs": True,
    "import_custom_exceptions": False, "instantiate_custom_exceptions": False,
    "instantiate_oldstyle_exceptions": False, "include_local_traceback": False,
    "include_local_version": False, "propagate_SystemExit_locally": False,
    "propagate_KeyboardInterrupt_locally": False,
}


@dataclass
class Faults:
    """Drills: `lost_answers=N` executes the first N order_send calls, then drops the connection
    instead of answering (the client must look the order up, never resend it)."""

    lost_answers: int = 0

    @classmethod
    def parse(cls, text: str | None) -> Faults:
        faults = cls()
        for part in filter(None, (text or "").replace(",", ";").split(";")):
            key, _, value = part.partition("=")
            if key.strip() != "lost_answers" or not value.strip().isdigit():
                raise ValueError(f"unknown bridge fault {part!r}: use lost_answers=N")
            faults.lost_answers = int(value)
        return faults


def make_service(module, faults: Faults | None = None):
    """The rpyc service class over `module` (the MetaTrader5 package)."""
    import rpyc

    lock = threading.Lock()
    faults = faults or Faults()

    class TerminalService(rpyc.Service):
        def on_connect(self, conn):
            self._conn = conn

        def exposed_ping(self):
            """The bridge alone, without the terminal: for latency and reachability probes."""
            return time.time()

        def exposed_call(self, name, args, kwargs):
            """(value, (code, text)): the call's encoded value and the terminal's last_error()."""
            if type(name) is not str or name not in p.ALLOWED_CALLS:
                return None, (p.UNSUPPORTED, f"Terminal: Unsupported function (the terminal server does not "
                                             f"serve {str(name)[:40]!r})")
            try:
                args, kwargs = p.decode_arguments(args, kwargs)
            except p.RefusedValue as exc:
                return (False if name in p.BOOLEAN_CALLS else None), (p.INVALID_ARGS, str(exc))
            if name == "shutdown":
                return None, (1, "Success")
            with lock:
                try:
                    value = getattr(module, name)(*args, **kwargs)
                    error = module.last_error()
                except Exception as exc:   # the package raised (it should not): a failed call
                    log.exception("%s raised", name)
                    value, error = None, (-1, f"Terminal: Call failed ({type(exc).__name__} in {name})")
                if name == "order_send" and faults.lost_answers > 0:
                    faults.lost_answers -= 1
                    log.warning("drill: order_send executed, answer dropped")
                    self._conn.close()
                    return None
            return p.encode_result(value), (int(error[0]), str(error[1]))

    return TerminalService


def make_authenticator(token: bytes, tls: ssl.SSLContext | None):
    """rpyc authenticator: TLS (when configured), then the token line; refusals closed at once."""
    from rpyc.utils.authenticators import AuthenticationError

    def authenticate(sock: socket.socket):
        p.nodelay(sock)
        sock.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            if tls is not None:
                sock = tls.wrap_socket(sock, server_side=True)
            hello = _read_line(sock)
            offered = hello[len(p.HELLO):] if hello.startswith(p.HELLO) else b""
            if not p.token_ok(offered, token):
                _say(sock, b"NO\n")
                log.warning("refused a connection from %s: wrong token", _peer(sock))
                raise AuthenticationError("wrong token")
            sock.sendall(b"OK\n")
        except (OSError, ValueError) as exc:   # ssl.SSLError is an OSError
            log.warning("refused a connection from %s: %s", _peer(sock), exc)
            _close(sock)
            raise AuthenticationError(str(exc)) from None
        except AuthenticationError:
            _close(sock)
            raise
        sock.settimeout(None)
        return sock, None

    return authenticate


def _peer(sock) -> str:
    try:
        host, port = sock.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "?"


def _read_line(sock) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(p.MAX_HELLO_BYTES - len(data))
        if not chunk:
            raise ValueError("closed before the token")
        data += chunk
        if len(data) >= p.MAX_HELLO_BYTES:
            raise ValueError("hello too long")
    return data[:-1]


def _say(sock, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


def _close(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def server_tls(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


def build_server(module, *, host: str, port: int, token: str, tls: ssl.SSLContext | None = None,
                 faults: Faults | None = None):
    """A ThreadedServer (not started) on host:port."""
    from rpyc.utils.server import ThreadedServer

    server = ThreadedServer(make_service(module, faults), hostname=host, port=port,
                            authenticator=make_authenticator(token.encode(), tls),
                            protocol_config=dict(PROTOCOL_CONFIG), logger=logging.getLogger("scalper.bridge.rpyc"))
    return server


def load_terminal_package():
    import MetaTrader5

    return MetaTrader5


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    import ipaddress

    return all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def _log_to_stderr() -> None:
    """Refused connections and failed calls, one line each, for the operator watching the console."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    logging.getLogger("scalper.bridge.rpyc").setLevel(logging.ERROR)   # not one line per connection


def faults_from_env() -> Faults:
    return Faults.parse(os.environ.get(FAULTS_ENV))


def serve(*, host: str, port: int, token_env: str, tls_cert: str | None = None, tls_key: str | None = None,
          tls_client_ca: str | None = None, announce=print) -> None:
    """Run the terminal server in the foreground until interrupted. Raises BadInput (exit 2) for bad
    options and Unavailable (exit 3) when the MetaTrader5 package is not importable here."""
    from scalper.errors import BadInput, Unavailable

    token = os.environ.get(token_env, "")
    problem = p.token_problem(token)
    if problem:
        raise BadInput(f"${token_env}, the environment variable that holds the bridge's shared secret, is "
                       f"{problem}",
                       fix=f"export {token_env} with a random token of at least {p.MIN_TOKEN_CHARS} characters "
                           "(e.g. python -c \"import secrets; print(secrets.token_urlsafe(32))\"), the same on "
                           "the scalper side")
    tls_given = [x for x in (tls_cert, tls_key, tls_client_ca) if x]
    if tls_given and len(tls_given) != 3:
        raise BadInput("TLS needs the server's certificate, its key and the CA of the client certificates",
                       where="--tls-cert/--tls-key/--tls-client-ca", fix="give all three, or none")
    try:
        faults = faults_from_env()
    except ValueError as exc:
        raise BadInput(str(exc), where=FAULTS_ENV) from None
    tls = None
    if tls_cert and tls_key and tls_client_ca:   # all three or none (checked above)
        try:
            tls = server_tls(tls_cert, tls_key, tls_client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise BadInput(f"cannot load the TLS files ({exc})", where="--tls-cert/--tls-key/--tls-client-ca",
                           fix="PEM files: the server's certificate and key, and the CA that signed the "
                               "clients' certificates") from None
    try:
        module = load_terminal_package()
    except ImportError:
        raise Unavailable("the terminal server needs the MetaTrader5 package: run it on the terminal's Windows "
                          "host (or under Wine Python) after pip install '.[mt5,bridge]' in the scalper checkout"
                          ) from None
    try:
        server = build_server(module, host=host, port=port, token=token, tls=tls, faults=faults)
    except ImportError:
        raise Unavailable("the terminal server needs rpyc: pip install rpyc "
                          "(or, in the scalper checkout, pip install '.[bridge]')") from None
    except OSError as exc:
        raise BadInput(f"cannot listen on {host}:{port} ({exc.strerror or exc})", where="--host/--port",
                       fix="pick a free port with --port, or stop what holds it") from None
    if not is_loopback(host) and tls is None:
        announce(f"warning: listening on {host} without TLS: keep this port inside a VPN or SSH/WireGuard "
                 "tunnel, or give --tls-cert/--tls-key/--tls-client-ca")
    _log_to_stderr()
    announce(f"terminal-server listening on {host}:{server.port} (token from ${token_env}; "
             f"TLS {'on, client certificates required' if tls else 'off'}; pid {os.getpid()})")
    server.start()
