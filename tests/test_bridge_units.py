"""The terminal bridge's pieces without a server process: bots.yaml `terminal:`, the wire encoding,
the server's option checks, and the run-once path not importing rpyc."""

from __future__ import annotations

import subprocess
import sys
from collections import namedtuple
from datetime import UTC, datetime

import numpy as np
import pytest

from scalper.bridge import protocol as p
from scalper.bridge.server import Faults
from tests.clikit import cli
from tests.fakes.mt5_fake import RATES_DTYPE

ACCOUNT = """\
ledger: ledger.db
accounts:
  - id: 7
    broker: {broker}
    login: 123
    server: Demo
    password_env: PW
    terminal:
{terminal}
bots:
  - name: gold
    symbol: XAUUSD
    accounts: [7]
"""


@pytest.mark.parametrize("broker, terminal, where, fix", [
    ("paper", "      port: 18812", "accounts[0].terminal", "set `broker: mt5`"),
    ("mt5", "      port: 70000", "accounts[0].terminal.port", None),
    ("mt5", "      token_env: my secret token", "accounts[0].terminal.token_env", "token_env: SCALPER_BRIDGE_TOKEN"),
    ("mt5", "      token: abc", "accounts[0].terminal.token", "secrets never go in bots.yaml"),
    ("mt5", "      tls: {ca: ca.pem}", "accounts[0].terminal.tls.cert", None),
    ("mt5", "      timeout_s: 0", "accounts[0].terminal.timeout_s", None),
])
def test_a_bad_terminal_block_exits_2_naming_the_field_and_fix(tmp_path, capsys, broker, terminal, where, fix):
    config = tmp_path / "bots.yaml"
    config.write_text(ACCOUNT.format(broker=broker, terminal=terminal))
    r = cli(capsys, "check", "-c", str(config))
    text = " ".join((r.out + r.err).split())
    # rich wraps at 80 columns, and breaks a long temporary path (xdist's are longer) inside a word
    unwrapped = (r.out + r.err).replace("\n", "")
    assert r.code == 2, text
    assert where in unwrapped and "bots.yaml" in unwrapped, text
    if fix:
        assert fix in unwrapped, text
    assert "abc" not in text and "my secret token" not in text and "my secret token" not in unwrapped


def test_a_terminal_block_with_defaults_is_valid(tmp_path):
    from scalper.config import load_config

    config = tmp_path / "bots.yaml"
    config.write_text(ACCOUNT.format(broker="mt5", terminal="      host: 127.0.0.1"))
    t = load_config(config).accounts[0].terminal
    assert (t.port, t.token_env, t.timeout_s, t.order_timeout_s, t.tls) == (18812, "SCALPER_BRIDGE_TOKEN", 10.0,
                                                                             30.0, None)


def test_results_cross_as_plain_values_and_come_back_alike():
    Tick = namedtuple("Tick", "time bid ask")
    Result = namedtuple("OrderSendResult", "retcode request")
    Request = namedtuple("TradeRequest", "action symbol")
    rates = np.zeros(3, RATES_DTYPE)
    rates["time"] = [60, 120, 180]
    rates["close"] = [1.5, 2.5, 3.5]
    for value in (None, True, 3, 2.5, "x", (), (Tick(1, 2.0, 3.0),), Result(10009, Request(1, "XAUUSD")),
                  np.float64(1.25), np.int64(7)):
        wire = p.encode_result(value)
        assert _plain_only(wire)
        back = p.decode_result(wire)
        assert back == (value.item() if isinstance(value, np.generic) else value)
        if hasattr(value, "_asdict"):
            assert back._asdict() == value._asdict() and type(back).__name__ == type(value).__name__
    back = p.decode_result(p.encode_result(rates))
    assert back.dtype == RATES_DTYPE and back.tobytes() == rates.tobytes() and back.flags.writeable
    with pytest.raises(TypeError):
        p.encode_result(object())
    with pytest.raises(TypeError):
        p.decode_result(("array", (("a", "|O"),), b"\0" * 8))     # no object arrays
    with pytest.raises(TypeError):
        p.decode_result(["a list is a remote reference"])


def _plain_only(value) -> bool:
    if type(value) is tuple:
        return all(_plain_only(v) for v in value)
    return type(value) in p.PLAIN or type(value) is bytes


def test_arguments_are_taken_as_the_package_takes_them():
    assert p.encode_argument(np.float64(0.5)) == 0.5 and type(p.encode_argument(np.float64(0.5))) is float
    when = datetime(2025, 5, 15, 9, 0, tzinfo=UTC)
    assert p.encode_argument(when) == int(when.timestamp())
    for refused in (np.int64(1), np.int32(1), [1], {1, 2}, object()):
        with pytest.raises(p.RefusedValue, match="Invalid arguments"):
            p.encode_argument(refused)
    with pytest.raises(p.RefusedValue, match='Invalid "magic" argument'):
        p.encode_argument({"action": 1, "magic": np.uint64(3)})
    args, kwargs = p.decode_arguments((p.encode_argument({"volume": np.float64(0.1), "type": 0}),),
                                      (("ticket", 5),))
    assert args == ({"volume": 0.1, "type": 0},) and kwargs == {"ticket": 5}
    for bad in ([1], ("dict", (("k", [1]),)), ("other", ())):
        with pytest.raises(p.RefusedValue):
            p.decode_arguments((bad,), ())


def test_bridge_faults_parse():
    assert Faults.parse("lost_answers=2").lost_answers == 2 and Faults.parse("").lost_answers == 0
    with pytest.raises(ValueError, match="lost_answers=N"):
        Faults.parse("explode=1")


def test_the_server_refuses_bad_options_before_touching_anything(capsys, monkeypatch):
    monkeypatch.delenv("SCALPER_BRIDGE_TOKEN", raising=False)
    r = cli(capsys, "terminal-server")
    assert r.code == 2 and "$SCALPER_BRIDGE_TOKEN" in r.err and "is not set" in r.err
    monkeypatch.setenv("SCALPER_BRIDGE_TOKEN", "short")
    assert "too short" in cli(capsys, "terminal-server").err
    monkeypatch.setenv("SCALPER_BRIDGE_TOKEN", "long-enough-token-0123456789")
    r = cli(capsys, "terminal-server", "--tls-cert", "a.pem")
    assert r.code == 2 and "give all three" in " ".join(r.err.split())
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)
    r = cli(capsys, "terminal-server")
    assert r.code == 3 and "needs the MetaTrader5 package" in " ".join(r.err.split())


def test_run_once_does_not_import_rpyc_without_a_terminal_bridge(tmp_path):
    code = ("import sys; from scalper.cli import main\n"
            "try: main(['run-once', '--dry-run'])\n"
            "except SystemExit: pass\n"
            "print('rpyc' in sys.modules, 'scalper.bridge.client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False False", out.stderr


# --- the token: one rule for both ends --------------------------------------------------------------
def _server_reads_hello(token: str) -> bool:
    """The real server authenticator on one end of a loopback connection: does it accept `token`?"""
    import socket
    import threading

    from rpyc.utils.authenticators import AuthenticationError

    from scalper.bridge.server import make_authenticator

    with socket.create_server(("127.0.0.1", 0)) as listener:
        client_end = socket.create_connection(listener.getsockname(), timeout=10)
        server_end, _ = listener.accept()
    verdict: list[bool] = []

    def serve() -> None:
        try:
            make_authenticator(token.encode(), None)(server_end)
            verdict.append(True)
        except AuthenticationError:
            verdict.append(False)

    worker = threading.Thread(target=serve)
    worker.start()
    try:
        client_end.sendall(p.HELLO + token.encode() + b"\n")
        worker.join(10)
    finally:
        client_end.close()
        server_end.close()
    return verdict == [True]


def test_the_token_rule_is_the_servers_own_limits():
    assert p.token_problem("") == "not set"
    assert "too short" in p.token_problem("x" * (p.MIN_TOKEN_CHARS - 1))
    assert p.token_problem("x" * p.MIN_TOKEN_CHARS) is None
    assert "line break" in p.token_problem("first-line-0123\nsecond")
    longest = "x" * p.MAX_TOKEN_BYTES
    assert p.token_problem(longest) is None and "too long" in p.token_problem(longest + "x")
    # multi-byte characters count as the bytes that travel
    assert "too long" in p.token_problem("é" * (p.MAX_TOKEN_BYTES // 2 + 1))
    # the longest token the rule allows is one the server's hello reader takes; one more byte it refuses
    assert _server_reads_hello(longest)
    assert not _server_reads_hello(longest + "x")


@pytest.mark.parametrize("token, problem", [("short-token", "too short"), ("", "not set"),
                                            ("x" * (p.MAX_TOKEN_BYTES + 1), "too long")])
def test_the_client_refuses_a_token_the_server_would_refuse(monkeypatch, token, problem):
    from scalper.bridge.client import remote_terminal
    from scalper.config import TerminalBridgeConfig
    from scalper.errors import BrokerUnavailable, FeedUnavailable

    cfg = TerminalBridgeConfig(token_env="SCALPER_TEST_TOKEN_RULE")
    monkeypatch.setenv("SCALPER_TEST_TOKEN_RULE", token)
    with pytest.raises(BrokerUnavailable, match=problem) as refused:
        remote_terminal(cfg, lambda path: path)
    assert "$SCALPER_TEST_TOKEN_RULE" in str(refused.value)
    assert not token or token not in str(refused.value)     # a secret is never echoed
    with pytest.raises(FeedUnavailable, match=problem):
        remote_terminal(cfg, lambda path: path, error=FeedUnavailable)
    monkeypatch.setenv("SCALPER_TEST_TOKEN_RULE", "x" * p.MIN_TOKEN_CHARS)
    assert remote_terminal(cfg, lambda path: path) is not None   # accepted: nothing is contacted yet


def test_the_server_refuses_a_token_no_client_could_send(capsys, monkeypatch):
    monkeypatch.setenv("SCALPER_BRIDGE_TOKEN", "x" * (p.MAX_TOKEN_BYTES + 1))
    r = cli(capsys, "terminal-server")
    assert r.code == 2 and "too long" in " ".join(r.err.split())
