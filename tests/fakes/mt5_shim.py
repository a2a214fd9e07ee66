"""The fake terminal (mt5_fake.py) as an importable `MetaTrader5` package, for a child process only.

Tests that run `scalper terminal-server` as a child process put a folder on the
CHILD's PYTHONPATH holding a `MetaTrader5.py` that replaces itself with this
module (see tests/bridgekit.py). The test process itself never can import
`MetaTrader5`, so a serialisation bug cannot hide behind a client-side fake.

The fake is built from the JSON scenario in $SCALPER_FAKE_MT5:

    {"now": 1747300745.0, "server_offset_h": 3,
     "symbols": [{"kind": "xauusd", "name": "XAUUSDm", "select": true}],
     "bars": {"XAUUSDm": "/path/XAUUSD_M1.csv"},      # M1 history (UTC) loaded into the terminal
     "quotes": {"XAUUSDm": [2345.1, 2345.3]},
     "control_file": "/tmp/.../control.port"}          # where the control port is written

Tests drive it through a control socket (JSON lines on loopback, test-only and
apart from the bridge): move the clock, set quotes, inject faults, read what the
terminal holds. Module-level functions are the package's, each under one lock
shared with the control thread.
"""

from __future__ import annotations

import json
import os
import signal
import socketserver
import threading
import time

import numpy as np

from tests.fakes import mt5_fake as _f

SCENARIO_ENV = "SCALPER_FAKE_MT5"

_API = ("initialize", "login", "shutdown", "last_error", "version", "terminal_info", "account_info",
        "symbols_total", "symbols_get", "symbol_info", "symbol_info_tick", "symbol_select",
        "copy_rates_from", "copy_rates_from_pos", "copy_rates_range", "positions_total", "positions_get",
        "orders_total", "orders_get", "history_orders_total", "history_orders_get", "history_deals_total",
        "history_deals_get", "order_calc_margin", "order_calc_profit", "order_check")


class _Clock:
    def __init__(self, instant: float):
        self.instant = float(instant)

    def now(self) -> float:
        return self.instant


_scenario = json.loads(os.environ[SCENARIO_ENV])
_clock = _Clock(_scenario["now"])
_makers = {"xauusd": _f.xauusd, "eurusd": _f.eurusd, "btcusd": _f.btcusd}
_fake = _f.demo_terminal(_clock, server_offset_h=_scenario.get("server_offset_h", 0.0), symbols=[
    _makers[s.pop("kind")](**s) for s in (dict(x) for x in _scenario.get("symbols", [{"kind": "xauusd"}]))])
_lock = threading.RLock()
_stop_in_next_send = False

if _scenario.get("bars"):
    from scalper.feeds.csvfile import read_bars

    for _name, _path in _scenario["bars"].items():
        _fake.load_bars(_name, read_bars(_path)[0])
for _name, (_bid, _ask) in (_scenario.get("quotes") or {}).items():
    _fake.set_quote(_name, _bid, _ask)

for _k in dir(_f.FakeMT5):
    if _k.isupper():
        globals()[_k] = getattr(_f.FakeMT5, _k)


def _serialised(name):
    method = getattr(_fake, name)

    def call(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    call.__name__ = name
    return call


for _k in _API:
    globals()[_k] = _serialised(_k)


def order_send(request):
    """The package's order_send; a drill may freeze this whole process (SIGSTOP) on the way in."""
    global _stop_in_next_send
    if _stop_in_next_send:
        _stop_in_next_send = False
        os.kill(os.getpid(), signal.SIGSTOP)      # the test sends SIGCONT; then the order executes
        time.sleep(0.3)                           # the stop may land a moment after kill() returns
    with _lock:
        return _fake.order_send(request)


# --- the test's control channel ------------------------------------------------------------------------
def _plain(value):
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _target(name: str):
    if name == "fake":
        return _fake
    if name == "account":
        return _fake.account
    if name.startswith("symbol:"):
        return _fake.symbols[name[len("symbol:"):]]
    raise KeyError(name)


def _control(msg: dict):
    global _stop_in_next_send
    op = msg["op"]
    with _lock:
        if op == "clock":
            _clock.instant = float(msg["value"])
            return _clock.instant
        if op == "quote":
            _fake.set_quote(msg["symbol"], msg["bid"], msg["ask"])
            return None
        if op == "call":                                   # a test control of the fake, e.g. lose_next_answer
            return _plain(getattr(_target(msg.get("target", "fake")), msg["name"])(*msg.get("args", [])))
        if op == "set":
            setattr(_target(msg["target"]), msg["attr"], msg["value"])
            return None
        if op == "get":
            return _plain(getattr(_target(msg["target"]), msg["attr"]))
        if op == "requests":
            return _plain(_fake.requests)
        if op == "stop_in_next_order_send":
            _stop_in_next_send = True
            return None
    raise KeyError(op)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            try:
                answer = {"ok": True, "value": _control(json.loads(line))}
            except Exception as exc:            # the test sees what went wrong
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write((json.dumps(answer) + "\n").encode())
            self.wfile.flush()


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True


_control_server = _Server(("127.0.0.1", 0), _Handler)
threading.Thread(target=_control_server.serve_forever, daemon=True, name="fake-mt5-control").start()
if _scenario.get("control_file"):
    _tmp = _scenario["control_file"] + ".tmp"
    with open(_tmp, "w") as _fh:
        _fh.write(str(_control_server.server_address[1]))
    os.replace(_tmp, _scenario["control_file"])
