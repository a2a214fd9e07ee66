"""Latency of the terminal bridge per MetaTrader5 call, on loopback.

Starts `scalper terminal-server` as a child process serving the fake terminal
(tests/fakes/mt5_shim.py; the same harness as tests/test_bridge.py) and times
each call the mt5 broker and feed make, through the real client
(scalper.bridge.client.RemoteTerminal), against the same call on the fake in
process. Also times the broker's whole `send_order` (account check, symbol,
tick, order_send) both ways.

usage: python bench/bench_bridge.py [--calls 300] [--passes 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scalper.bridge.client import BridgeAddress, RemoteTerminal  # noqa: E402
from scalper.brokers.base import OrderRequest  # noqa: E402
from scalper.brokers.mt5 import MT5Broker  # noqa: E402
from scalper.clock import FixedClock  # noqa: E402
from scalper.config import AccountConfig  # noqa: E402
from tests.bridgekit import TOKEN, TOKEN_ENV, TerminalChild  # noqa: E402
from tests.fakes.mt5_fake import DEMO_LOGIN, DEMO_PASSWORD, DEMO_SERVER, demo_terminal, xauusd  # noqa: E402

NOW = 1_747_300_745.0          # 2025-05-15 09:19:05 UTC
DATA = REPO.parent / "shared" / "data" / "XAUUSD_M1.csv"


def timed(fn, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.95) - 1] * 1000


def calls(m) -> dict:
    server_now = int(NOW) + 3 * 3600
    return {
        "account_info()": lambda: m.account_info(),
        "terminal_info()": lambda: m.terminal_info(),
        "symbol_info('XAUUSDm')": lambda: m.symbol_info("XAUUSDm"),
        "symbol_info_tick('XAUUSDm')": lambda: m.symbol_info_tick("XAUUSDm"),
        "copy_rates_from_pos(…, 0, 101)": lambda: m.copy_rates_from_pos("XAUUSDm", 1, 0, 101),
        "copy_rates_range(… 1 day)": lambda: m.copy_rates_range("XAUUSDm", 1, server_now - 86400, server_now),
        "positions_get()": lambda: m.positions_get(),
        "history_deals_get(from, to)": lambda: m.history_deals_get(server_now - 86400, server_now + 86400),
    }


def order_pair(m):
    """A market buy, then its close: two order_send calls."""
    def run():
        r = m.order_send({"action": 1, "symbol": "XAUUSDm", "volume": 0.01, "type": 0, "price": 3129.2,
                          "type_filling": 0, "magic": 7, "comment": "bench"})
        m.order_send({"action": 1, "symbol": "XAUUSDm", "volume": 0.01, "type": 1, "price": 3129.0,
                      "type_filling": 0, "magic": 7, "comment": "bench", "position": r.order})
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--passes", type=int, default=30)
    a = ap.parse_args()
    os.environ[TOKEN_ENV] = TOKEN
    os.environ["MT5_PASSWORD_7"] = DEMO_PASSWORD
    folder = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    child = TerminalChild(folder / "server", {
        "now": NOW, "server_offset_h": 3, "symbols": [{"kind": "xauusd", "name": "XAUUSDm", "select": True}],
        "bars": {"XAUUSDm": str(DATA)}, "quotes": {"XAUUSDm": [3129.0, 3129.2]}}).start()
    try:
        from scalper.feeds.csvfile import read_bars

        local = demo_terminal(FixedClock(NOW), server_offset_h=3, symbols=[xauusd("XAUUSDm", select=True)])
        local.load_bars("XAUUSDm", read_bars(DATA)[0])
        local.set_quote("XAUUSDm", 3129.0, 3129.2)
        local.initialize(login=DEMO_LOGIN, password=DEMO_PASSWORD, server=DEMO_SERVER)
        remote = RemoteTerminal(BridgeAddress("127.0.0.1", child.port, TOKEN))
        remote.initialize(login=DEMO_LOGIN, password=DEMO_PASSWORD, server=DEMO_SERVER)

        print(f"{'call':34} {'bridge median':>14} {'p95':>8} {'in process':>11}   ({a.calls} calls each, ms)")
        remote._ensure_connected()
        ping = timed(lambda: remote._remote_ping(), a.calls)
        print(f"{'bridge ping (no terminal)':34} {ping[0]:14.3f} {ping[1]:8.3f} {'':>11}")
        for name, fn in calls(remote).items():
            over, local_ms = timed(fn, a.calls), timed(calls(local)[name], a.calls)
            print(f"{name:34} {over[0]:14.3f} {over[1]:8.3f} {local_ms[0]:11.3f}")
        over, local_ms = timed(order_pair(remote), a.calls // 2), timed(order_pair(local), a.calls // 2)
        print(f"{'order_send ×2 (open + close)':34} {over[0]:14.3f} {over[1]:8.3f} {local_ms[0]:11.3f}")

        acc = AccountConfig(id=7, broker="mt5", login=DEMO_LOGIN, server=DEMO_SERVER, password_env="MT5_PASSWORD_7")
        timings = {}
        for label, module in (("bridge", remote), ("in process", local)):
            broker = MT5Broker.from_account(acc, clock=FixedClock(NOW), module=module)
            broker.connect()
            n = [0]

            def send(broker=broker, n=n):
                n[0] += 1
                broker.send_order(OrderRequest(client_order_id=f"bench-{n[0]}", symbol="XAUUSD", side="buy",
                                               volume=0.01, sl=None, tp=None, magic=7))
            timings[label] = timed(send, a.calls // 3)
            broker.close()
        print(f"{'MT5Broker.send_order (tick+send)':34} {timings['bridge'][0]:14.3f} {timings['bridge'][1]:8.3f} "
              f"{timings['in process'][0]:11.3f}")
        print(f"reconnects during the run: {remote.reconnects}")
    finally:
        child.stop()


if __name__ == "__main__":
    main()
