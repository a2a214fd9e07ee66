"""The terminal bridge end to end: `scalper terminal-server` in a child process serving the fake
terminal, scalper in this process reaching it only over loopback TCP (tests/bridgekit.py)."""

from __future__ import annotations

import importlib
import json
import sqlite3
import subprocess
import time
from datetime import UTC
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from scalper import wiring
from scalper.bridge.client import BridgeAddress, RemoteTerminal
from scalper.brokers.base import OrderRequest
from scalper.brokers.mt5 import MT5Broker
from scalper.clock import FixedClock
from scalper.config import AccountConfig, load_config
from scalper.core.bars import BAR_SECONDS
from scalper.engine import Engine
from scalper.errors import BrokerUnavailable
from scalper.feeds.csvfile import read_bars
from scalper.feeds.mt5 import Mt5Feed
from tests.bridgekit import TOKEN, TOKEN_ENV, InProcess, TerminalChild, bridge_account, scalper_command
from tests.conftest import shared_file
from tests.enginekit import ts
from tests.fakes.mt5_fake import DEMO_LOGIN, DEMO_PASSWORD, DEMO_SERVER, demo_terminal, xauusd

pytestmark = pytest.mark.slow

PASSWORD_ENV = "MT5_PASSWORD_7"
START = ts("2025-05-15 09:19:05")          # just after a doji_breakout buy closed (shared golden signals)
MINUTES = 75
OFFSET_H = 3
SPREAD = 0.20
CID = "sc0123456789abcdef012345"


def test_the_test_process_cannot_import_metatrader5():
    """Everything below reaches the fake only through the bridge."""
    with pytest.raises(ImportError):
        importlib.import_module("MetaTrader5")


def scenario(now: float = START) -> dict:
    return {"now": now, "server_offset_h": OFFSET_H,
            "symbols": [{"kind": "xauusd", "name": "XAUUSDm", "select": True}],
            "bars": {"XAUUSDm": str(shared_file("XAUUSD_M1.csv"))}}


@pytest.fixture
def child(tmp_path, monkeypatch):
    with pytest.raises(ImportError):
        importlib.import_module("MetaTrader5")
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(PASSWORD_ENV, DEMO_PASSWORD)
    c = TerminalChild(tmp_path / "server", scenario()).start()
    yield c
    c.stop()


def remote(child, **changes) -> RemoteTerminal:
    return RemoteTerminal(BridgeAddress("127.0.0.1", child.port, changes.pop("token", TOKEN),
                                        timeout_s=changes.pop("timeout_s", 3.0),
                                        order_timeout_s=changes.pop("order_timeout_s", 3.0), **changes),
                          reconnect_delays=(0.0, 0.1, 0.2))


def account(child, **changes) -> AccountConfig:
    return AccountConfig(**bridge_account(child.port, login=DEMO_LOGIN, server=DEMO_SERVER,
                                          password_env=PASSWORD_ENV, **changes))


def order(**changes) -> OrderRequest:
    return OrderRequest(**{"client_order_id": CID, "symbol": "XAUUSD", "side": "buy", "volume": 0.01,
                           "sl": None, "tp": None, "magic": 424242, **changes})


# --- the engine through the bridge, against the same engine in process ------------------------------------------
def write_bots(folder, terminal: dict | None) -> object:
    acc = {"id": 7, "name": "mt5-demo", "broker": "mt5", "login": DEMO_LOGIN, "server": DEMO_SERVER,
           "password_env": PASSWORD_ENV}
    if terminal:
        acc["terminal"] = terminal
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bots.yaml"
    path.write_text(yaml.safe_dump({
        "ledger": "ledger.db",
        "feed": {"type": "mt5"},
        "accounts": [acc],
        "bots": [{"name": "gold", "symbol": "XAUUSD", "accounts": [7],
                  "risk": {"max_concurrent": 2, "max_per_symbol": 1,
                           "trailing": {"enabled": True, "activate_r": 0.2, "distance_r": 0.8}}}],
    }, sort_keys=False))
    return path


def drive(terminal, eng: Engine, bars, minutes: int) -> list:
    """Minute by minute from START: the closed bar's path as ticks (open, the far extreme first, close),
    then the engine 5 s into the next minute, with the terminal's clock and quotes in step."""
    summaries = []
    for k in range(minutes):
        t = START + 60 * k
        if k:
            i = bars.index_of(int(t) - 5 - BAR_SECONDS)
            o, h, low, c = (float(x[i]) for x in (bars.open, bars.high, bars.low, bars.close))
            path = (o, low, h, c) if c >= o else (o, h, low, c)
            for second, price in zip((10, 25, 40, 55), path):
                terminal.set_clock(t - 65 + second)
                terminal.set_quote("XAUUSDm", price, round(price + SPREAD, 2))
        terminal.set_clock(t)
        opening = float(bars.open[bars.index_of(int(t) - 5)])
        terminal.set_quote("XAUUSDm", opening, round(opening + SPREAD, 2))
        eng.clock.instant = t
        summaries.append(eng.run_once())
    return summaries


def ledger_dump(db) -> dict:
    """Every table a trader reads, without what differs between two runs by nature (run ids, wall time)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    out = {}
    for table in ("signals", "decisions", "orders", "fills", "positions", "pnl_daily", "audit"):
        rows = [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY rowid")]
        out[table] = [{k: v for k, v in r.items() if "run" not in k} for r in rows]
    con.close()
    return out


def _bridged_engine(tmp_path, child, *, timeout_s: float, order_timeout_s: float):
    """(config, clock, feed, engine) of a bots file whose mt5 account trades through the child's terminal server."""
    terminal = {"host": "127.0.0.1", "port": child.port, "token_env": TOKEN_ENV, "timeout_s": timeout_s,
                "order_timeout_s": order_timeout_s}
    cfg = load_config(write_bots(tmp_path / "bridge", terminal))
    clock = FixedClock(START)
    feed = wiring.make_feed(cfg)
    engine = Engine(cfg, ledger_path=wiring.ledger_path(cfg, None), clock=clock, feed=feed,
                    broker_factory=wiring.make_broker_factory(cfg, feed, clock), sleep=lambda s: None)
    return cfg, clock, feed, engine


def test_the_engine_trades_through_the_bridge_exactly_as_in_process(tmp_path, child):
    bars, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    cfg, clock, feed, bridged = _bridged_engine(tmp_path, child, timeout_s=5, order_timeout_s=5)
    assert type(feed._t.mt5) is RemoteTerminal
    over_bridge = drive(child, bridged, bars, MINUTES)

    # the reference: the same fake, in this process, handed to the adapter as its module
    fake = demo_terminal(FixedClock(START), server_offset_h=OFFSET_H, symbols=[xauusd("XAUUSDm", select=True)])
    fake.load_bars("XAUUSDm", bars)
    ref_cfg = load_config(write_bots(tmp_path / "local", None))
    ref_clock = FixedClock(START)
    acc = ref_cfg.accounts[0]
    ref_feed = Mt5Feed(account=acc, module=fake)
    local = Engine(ref_cfg, ledger_path=wiring.ledger_path(ref_cfg, None), clock=ref_clock, feed=ref_feed,
                   broker_factory=lambda a: MT5Broker.from_account(a, clock=ref_clock, module=fake),
                   sleep=lambda s: None)
    in_process = drive(InProcess(fake), local, bars, MINUTES)

    assert [s.exit_code for s in over_bridge] == [0] * MINUTES, [s.errors for s in over_bridge if s.errors]
    got, want = ledger_dump(tmp_path / "bridge" / "ledger.db"), ledger_dump(tmp_path / "local" / "ledger.db")
    assert got == want
    # …and the run covered what it should: orders, fills, SL/TP closes, trailing moves
    assert len(got["orders"]) >= 2 and got["fills"]
    assert any(p["status"] == "closed" and p["close_reason"] in ("sl", "tp") for p in got["positions"])
    assert any(a["kind"] == "trailing_stop" for a in got["audit"])
    assert child.order_requests() == [dict(r) for r in fake.requests]
    assert [(s.signals, s.orders) for s in over_bridge] == [(s.signals, s.orders) for s in in_process]


# --- access -------------------------------------------------------------------------------------------------------
def test_a_wrong_token_is_refused_and_the_connection_closed_at_once(child):
    r = remote(child, token="not-the-token-at-all-000")
    assert r.initialize() is False
    code, text = r.last_error()
    assert code == -10004 and "refused the token" in text
    # at the socket: the server says NO and closes; nothing else is read
    import socket
    s = socket.create_connection(("127.0.0.1", child.port), timeout=3)
    s.sendall(b"SCALPER-BRIDGE/1 wrong\n")
    from scalper.bridge.server import HANDSHAKE_TIMEOUT_S

    start = time.monotonic()
    assert s.recv(16) == b"NO\n" and s.recv(16) == b""
    assert time.monotonic() - start < HANDSHAKE_TIMEOUT_S   # closed at once, not after a timeout
    s.close()
    assert "refused a connection from 127.0.0.1" in child.log.read_text()
    # a client that says nothing is dropped after the handshake timeout, not kept forever

    s = socket.create_connection(("127.0.0.1", child.port), timeout=HANDSHAKE_TIMEOUT_S + 5)
    start = time.monotonic()
    assert s.recv(16) == b"" and time.monotonic() - start < HANDSHAKE_TIMEOUT_S + 2
    s.close()
    good = remote(child)
    assert good.initialize(login=DEMO_LOGIN, password=DEMO_PASSWORD, server=DEMO_SERVER) is True


def test_a_broker_with_a_wrong_token_is_unavailable_with_the_fix(child, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "some-other-token-0123456789")
    with pytest.raises(BrokerUnavailable, match="refused the token"):
        connected_broker(child, FixedClock(START))


def test_only_the_allowed_calls_with_plain_values_cross(child):
    r = remote(child)
    assert r.initialize(login=DEMO_LOGIN, password=DEMO_PASSWORD, server=DEMO_SERVER) is True
    with pytest.raises(AttributeError):
        r.order_calc_margin                                  # not a call the adapter makes
    r._ensure_connected()
    assert r._remote_call("eval", (), ())[1][0] == -7        # the server refuses it too
    assert r._remote_call("order_calc_margin", (), ())[1][0] == -7
    # a list would travel as a remote reference: refused before the terminal sees it
    assert r._remote_call("symbol_info", (["XAUUSDm"],), ()) == (None, (-2, "Invalid arguments"))
    assert r._remote_call("order_send", (("dict", (("volume", [1]),)),), ()) == (None, (-2, "Invalid arguments"))
    with pytest.raises(Exception):
        r._conn.root.exposed_call.__globals__                # no attribute walking on the server
    # numpy integers are refused as the package refuses them; numpy floats are floats
    assert r.copy_rates_from_pos("XAUUSDm", 1, np.int64(0), 5) is None and r.last_error()[0] == -2
    request = {"action": 1, "symbol": "XAUUSDm", "volume": np.float64(0.01), "type": 0, "price": 1.0,
               "magic": np.uint64(5)}
    assert r.order_send(request) is None and r.last_error() == (-2, 'Invalid "magic" argument')
    assert child.order_requests() == []
    # results are plain: named tuples with _asdict, structured arrays of the package's dtype
    rates = r.copy_rates_from_pos("XAUUSDm", 1, 0, 10)
    assert isinstance(rates, np.ndarray) and rates.dtype.names == ("time", "open", "high", "low", "close",
                                                                    "tick_volume", "spread", "real_volume")
    assert rates.dtype["time"] == np.dtype("<i8") and len(rates) == 10 and rates.flags.writeable
    tick = r.symbol_info_tick("XAUUSDm")
    assert type(tick).__name__ == "Tick" and set(tick._asdict()) >= {"bid", "ask", "time_msc"}
    assert type(tick.time) is int and type(tick.bid) is float
    assert r.positions_get() == () and r.symbol_info("NOPE") is None and r.last_error()[0] == -4


def test_a_datetime_crosses_as_epoch_seconds(child):
    from datetime import datetime

    r = remote(child)
    r.initialize()
    server_now = int(START) + OFFSET_H * 3600
    a = r.copy_rates_range("XAUUSDm", 1, server_now - 600, server_now)
    b = r.copy_rates_range("XAUUSDm", 1, datetime.fromtimestamp(server_now - 600, UTC),
                           datetime.fromtimestamp(server_now, UTC))
    assert len(a) >= 5 and a.tobytes() == b.tobytes()


def test_tls_with_a_client_certificate(tmp_path, monkeypatch):
    import shutil

    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make test certificates")
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    pki = tmp_path / "pki"
    pki.mkdir()

    def run(*args):
        subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=test-ca")
    for name in ("server", "client", "stranger"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")
        (pki / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        if name == "stranger":                                  # self-signed: not from our CA
            run("x509", "-req", "-in", f"{name}.csr", "-signkey", f"{name}.key", "-out", f"{name}.pem",
                "-days", "2", "-extfile", f"{name}.ext")
        else:
            run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    c = TerminalChild(tmp_path / "server", scenario(), args=[
        "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
        "--tls-client-ca", str(pki / "ca.pem")]).start()
    try:
        from scalper.bridge.client import client_tls

        good = remote(c, tls=client_tls(str(pki / "ca.pem"), str(pki / "client.pem"), str(pki / "client.key")))
        assert good.initialize() is True and good.account_info().login == DEMO_LOGIN
        stranger = remote(c, tls=client_tls(str(pki / "ca.pem"), str(pki / "stranger.pem"),
                                            str(pki / "stranger.key")))
        assert stranger.initialize() is False and stranger.last_error()[0] == -10004
        plain = remote(c)                                        # no TLS at all
        assert plain.initialize() is False and plain.last_error()[0] in (-10004, -10005)
        assert "TLS on" in c.log.read_text()
    finally:
        c.stop()


def test_clients_are_served_one_call_at_a_time_each_with_its_own_last_error(child):
    """Two processes' worth of clients at once (a loop and a `scalper check`): every answer carries the
    last_error() of its own call, never the other client's."""
    import threading

    a, b = remote(child), remote(child)
    assert a.initialize() and b.initialize()
    seen = {"a": [], "b": []}

    def hammer(r, key, call):
        for _ in range(150):
            value = call(r)
            seen[key].append((value is None, r.last_error()))

    threads = [threading.Thread(target=hammer, args=(a, "a", lambda r: r.symbol_info("NOPE"))),
               threading.Thread(target=hammer, args=(b, "b", lambda r: r.account_info()))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(seen["a"]) == {(True, (-4, "Terminal: Not found"))}
    assert set(seen["b"]) == {(False, (1, "Success"))}


# --- timeouts, lost answers, restarts ------------------------------------------------------------------------------
def connected_broker(child, clock, **changes):
    """An mt5 broker wired as bots.yaml's `terminal:` wires it."""
    acc = account(child, **changes)
    paths = SimpleNamespace(resolve_path=Path)                 # what terminal_module needs of a Config
    broker = MT5Broker.from_account(acc, clock=clock, module=wiring.terminal_module(paths, acc))
    broker.connect()
    return broker


def test_a_server_frozen_mid_order_send_is_uncertain_then_found_and_not_resent(child):
    clock = FixedClock(START)
    child.set_quote("XAUUSDm", 3129.00, 3129.20)
    broker = connected_broker(child, clock, order_timeout_s=1.5, timeout_s=1.0)
    child.control("stop_in_next_order_send")
    started = time.monotonic()
    result = broker.send_order(order(sl=3120.0))
    assert 1.4 < time.monotonic() - started < 4
    assert (result.code, result.kind) == (10031, "uncertain") and "may have gone through" in result.message
    assert child.proc.poll() is None                            # stopped, not dead
    with pytest.raises(BrokerUnavailable):                       # still frozen: reads time out too
        broker.find_order(CID, 424242, since=START - 3600)
    child.resume()
    found = broker.find_order(CID, 424242, since=START - 3600)
    assert found is not None and found.state == "filled" and found.price == 3129.20
    sends = [r for r in child.order_requests() if r.get("comment") == CID]
    assert len(sends) == 1                                       # executed once, never resent


def test_the_order_desk_reconciles_an_order_sent_into_a_frozen_server(tmp_path, child):
    """The whole path: run-once sends into a frozen server (exit 3, the order stays `sent`), the server
    wakes, the next run finds the order at the broker and records it filled, with one send in all."""
    bars, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    cfg, clock, feed, eng = _bridged_engine(tmp_path, child, timeout_s=1, order_timeout_s=1.5)
    child.control("stop_in_next_order_send")
    first = drive(child, eng, bars, 1)[0]
    assert first.exit_code == 3
    db = tmp_path / "bridge" / "ledger.db"
    assert [r["status"] for r in ledger_dump(db)["orders"]] == ["sent"]
    child.resume()
    eng.clock.instant = START + 20
    second = eng.run_once()
    assert second.exit_code == 0, second.errors
    [row] = ledger_dump(db)["orders"]
    assert row["status"] == "filled"
    assert len(child.order_requests()) == 1


@pytest.mark.parametrize("lost", [10012, 10031, None])
def test_answers_the_fake_terminal_loses_are_found_through_the_bridge(child, lost):
    clock = FixedClock(START)
    child.set_quote("XAUUSDm", 3129.00, 3129.20)
    broker = connected_broker(child, clock)
    child.control("call", name="lose_next_answer", args=[lost])
    result = broker.send_order(order())
    assert result.kind == "uncertain"
    found = broker.find_order(CID, 424242, since=START - 3600)
    assert found.state == "filled" and len(child.order_requests()) == 1


def test_an_answer_the_bridge_loses_is_uncertain_and_found(tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(PASSWORD_ENV, DEMO_PASSWORD)
    c = TerminalChild(tmp_path / "server", scenario(), env={"SCALPER_BRIDGE_FAULTS": "lost_answers=1"}).start()
    try:
        c.set_quote("XAUUSDm", 3129.00, 3129.20)
        broker = connected_broker(c, FixedClock(START))
        result = broker.send_order(order())
        assert (result.code, result.kind) == (10031, "uncertain")
        found = broker.find_order(CID, 424242, since=START - 3600)  # a new connection
        assert found.state == "filled" and len(c.order_requests()) == 1
        assert broker.send_order(order(client_order_id="sc-second-0000000000000")).code == 10009
    finally:
        c.stop()


def test_a_restarted_server_is_reconnected_and_the_terminal_reinitialized(child):
    clock = FixedClock(START)
    child.set_quote("XAUUSDm", 3129.00, 3129.20)
    broker = connected_broker(child, clock)
    module = broker._mt5
    assert broker.account_info().balance == 10_000.0
    child.restart()                                      # same port; a new process whose terminal is not initialized
    child.set_quote("XAUUSDm", 3129.00, 3129.20)
    assert broker.account_info().balance == 10_000.0     # reconnected and initialize() replayed
    assert module.reconnects == 1
    assert broker.send_order(order()).code == 10009
    child.stop()
    with pytest.raises(BrokerUnavailable, match="cannot reach the terminal server"):
        broker.positions()
    child.start()
    assert broker.positions() == []                      # a new fake terminal: nothing open


def test_an_order_on_a_connection_that_died_while_idle_goes_out_once_on_a_new_one(child):
    """The server restarted between two passes of `scalper loop`: the order must not be written into the dead
    connection (an uncertain answer for nothing); an idle connection is checked before an order."""
    from scalper.bridge.client import IDLE_CHECK_S

    r = remote(child)
    assert r.initialize(login=DEMO_LOGIN, password=DEMO_PASSWORD, server=DEMO_SERVER)
    child.restart()
    child.set_quote("XAUUSDm", 3129.00, 3129.20)
    time.sleep(IDLE_CHECK_S + 0.1)
    result = r.order_send({"action": 1, "symbol": "XAUUSDm", "volume": 0.01, "type": 0, "price": 3129.2,
                           "type_filling": 0, "magic": 5, "comment": "after-restart"})
    assert result is not None and result.retcode == 10009, r.last_error()
    assert r.reconnects == 1 and len(child.order_requests()) == 1


def test_an_unreachable_server_makes_run_once_exit_3(tmp_path, monkeypatch):
    import socket

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(PASSWORD_ENV, DEMO_PASSWORD)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    config = write_bots(tmp_path, {"host": "127.0.0.1", "port": port, "token_env": TOKEN_ENV, "timeout_s": 1})
    out = subprocess.run(scalper_command() + ["run-once", "--json", "-c", str(config)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 3, out.stderr
    errors = json.loads(out.stdout)["errors"]
    assert any(f"cannot reach the terminal server at 127.0.0.1:{port}" in e for e in errors), errors
    monkeypatch.delenv(TOKEN_ENV)
    out = subprocess.run(scalper_command() + ["run-once", "-c", str(config)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 3 and f"${TOKEN_ENV}" in out.stderr and "is not set" in out.stderr


def test_check_reports_the_bridge(tmp_path, child, monkeypatch):
    child.set_clock(time.time())
    config = write_bots(tmp_path, {"host": "127.0.0.1", "port": child.port, "token_env": TOKEN_ENV})

    def check() -> dict:
        out = subprocess.run(scalper_command() + ["check", "--json", "-c", str(config)], capture_output=True,
                             text=True, timeout=60)
        doc = json.loads(out.stdout)
        assert out.returncode == doc["exit_code"]
        return {i["what"]: i for i in doc["items"]}

    items = check()
    bridge = items[f"terminal server 127.0.0.1:{child.port} (mt5-demo)"]
    assert bridge["ok"] and items["account mt5-demo (mt5)"]["ok"]
    assert bridge["detail"].startswith("reachable, token accepted, terminal connected to the trade server, "
                                       "trading allowed, ")
    assert 0 < bridge["bridge"]["latency_ms"] < 100

    child.control("set", target="fake", attr="algo_trading", value=False)
    items = check()
    assert not items["account mt5-demo (mt5)"]["ok"] and "Algo Trading is off" in items["account mt5-demo (mt5)"][
        "detail"]

    monkeypatch.setenv(TOKEN_ENV, "a-wrong-token-000000000000")
    items = check()
    bridge = items[f"terminal server 127.0.0.1:{child.port} (mt5-demo)"]
    assert not bridge["ok"] and "reachable" in bridge["detail"] and "refused the token" in bridge["detail"]
    assert "token accepted" not in bridge["detail"]
