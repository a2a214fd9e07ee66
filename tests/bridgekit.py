"""`scalper terminal-server` as a child process serving the fake terminal (tests/fakes/mt5_shim.py).

Only the child can import `MetaTrader5`: its PYTHONPATH starts with a folder
holding a `MetaTrader5.py` that becomes the shim. The test process reaches the
fake only through the bridge (as scalper does) and through the shim's own
control socket (to move the clock, set quotes and inject faults).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOKEN_ENV = "SCALPER_TEST_BRIDGE_TOKEN"
TOKEN = "test-token-0123456789abcdef"
SHIM = "import sys\nfrom tests.fakes import mt5_shim\nsys.modules[__name__] = mt5_shim\n"


def scalper_command() -> list[str]:
    script = Path(sys.executable).parent / "scalper"
    return [str(script)] if script.exists() else [sys.executable, "-m", "scalper"]


class TerminalChild:
    """One terminal-server child process; `restart()` starts a new one on the same port."""

    def __init__(self, folder: Path, scenario: dict, *, token: str = TOKEN, port: int = 0, args=(),
                 env: dict | None = None):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        shim_dir = folder / "shim"
        shim_dir.mkdir(exist_ok=True)
        (shim_dir / "MetaTrader5.py").write_text(SHIM)
        self.control_file = folder / "control.port"
        self.scenario = {**scenario, "control_file": str(self.control_file)}
        self.token, self.port, self.args, self.extra_env = token, port, list(args), dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.log = folder / "server.log"
        self._control: socket.socket | None = None
        self._reader = None

    # --- process ---------------------------------------------------------------------------------
    def start(self) -> TerminalChild:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_")}
        env.update({"PYTHONPATH": os.pathsep.join([str(self.folder / "shim"), str(REPO)]),
                    "SCALPER_FAKE_MT5": json.dumps(self.scenario), TOKEN_ENV: self.token,
                    "COLUMNS": "200", **self.extra_env})
        if self.control_file.exists():
            self.control_file.unlink()
        self.proc = subprocess.Popen(
            scalper_command() + ["terminal-server", "--port", str(self.port), "--token-env", TOKEN_ENV] + self.args,
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if "listening on" in text and self.control_file.exists():
                self.port = int(text.split("listening on ", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"terminal-server exited {self.proc.returncode}: {text}")
            time.sleep(0.05)
        raise RuntimeError(f"terminal-server did not start: {self.log.read_text()}")

    def stop(self) -> None:
        self._close_control()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    # --- the fake's control channel ---------------------------------------------------------------------
    def control(self, op: str, **fields):
        if self._control is None:
            port = int(self.control_file.read_text())
            self._control = socket.create_connection(("127.0.0.1", port), timeout=20)
            self._reader = self._control.makefile("rb")
        self._control.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
        answer = json.loads(self._reader.readline())
        if not answer["ok"]:
            raise RuntimeError(answer["error"])
        return answer["value"]

    def _close_control(self) -> None:
        if self._control is not None:
            self._reader.close()
            self._control.close()
            self._control = self._reader = None

    # the driver interface shared with the in-process fake (see InProcess)
    def set_clock(self, t: float) -> None:
        self.control("clock", value=t)

    def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        self.control("quote", symbol=symbol, bid=bid, ask=ask)

    def order_requests(self) -> list[dict]:
        return self.control("requests")


class InProcess:
    """The same driver interface over an in-process fake (the reference run)."""

    def __init__(self, fake):
        self.fake = fake

    def set_clock(self, t: float) -> None:
        self.fake.clock.instant = t

    def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        self.fake.set_quote(symbol, bid, ask)

    def order_requests(self) -> list[dict]:
        return list(self.fake.requests)


def bridge_account(port: int, *, account_id: int = 7, login: int, server: str, password_env: str,
                   timeout_s: float = 5.0, order_timeout_s: float = 5.0, tls: dict | None = None) -> dict:
    terminal = {"host": "127.0.0.1", "port": port, "token_env": TOKEN_ENV, "timeout_s": timeout_s,
                "order_timeout_s": order_timeout_s}
    if tls:
        terminal["tls"] = tls
    return {"id": account_id, "name": "mt5-bridge", "broker": "mt5", "login": login, "server": server,
            "password_env": password_env, "terminal": terminal}
