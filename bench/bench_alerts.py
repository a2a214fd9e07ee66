"""What alerts add to a whole-process `scalper run-once` (one bot on two paper accounts).

Series of fresh processes stepping --now minute by minute over the shared gold export
from 2025-05-15 09:10 (a trend_pullback sell at 09:16, closes and new trades after it):
  off     — no `notify:` (the baseline)
  quiet   — a json:// target, passes that record nothing to tell (apprise must not be imported)
  alerts  — a json:// target, passes that deliver (apprise imported, one post to a loopback server)
and a target that hangs: the pass must still end about 2 × timeout_s later at most.

usage: python bench/bench_alerts.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_run_once import run

GOLD = Path(__file__).resolve().parents[2] / "shared" / "data" / "XAUUSD_M1.csv"
START = datetime(2025, 5, 15, 9, 10, 5, tzinfo=UTC)


def write_config(folder: Path) -> Path:
    cfg = {"ledger": "ledger.db", "feed": {"type": "csv", "files": {"XAUUSD": str(GOLD)}},
           "paper": {"state": "paper.db"}, "accounts": [{"id": 1, "broker": "paper"}, {"id": 2, "broker": "paper"}],
           "bots": [{"name": "gold", "symbol": "XAUUSD", "accounts": [1, 2]}]}
    path = folder / "bots.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path

POSTS: list[float] = []
HANG = {"s": 0.0}


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        POSTS.append(time.time())
        time.sleep(HANG["s"])
        try:
            self.send_response(200)
            self.end_headers()
        except OSError:
            pass

    def log_message(self, *args):
        pass


def series(name: str, runs: int, port: int | None, timeout_s: float = 5.0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp))
        if port is not None:
            doc = yaml.safe_load(config.read_text())
            doc["notify"] = [{"name": "bench", "url_env": "BENCH_ALERTS_URL", "timeout_s": timeout_s}]
            config.write_text(yaml.safe_dump(doc, sort_keys=False))
            os.environ["BENCH_ALERTS_URL"] = f"json://127.0.0.1:{port}/hook"
        start = START
        quiet, loud = [], []
        for k in range(runs + 1):
            before = len(POSTS)
            wall, _, doc = run(config, (start + timedelta(minutes=k)).isoformat())
            if k == 0:
                continue
            (loud if len(POSTS) > before or doc["errors"] else quiet).append(wall)
        med = lambda xs: round(statistics.median(xs), 3) if xs else None  # noqa: E731
        return {"series": name, "runs": runs, "passes_without_alerts": len(quiet), "median_s": med(quiet),
                "passes_with_alerts": len(loud), "median_with_alerts_s": med(loud),
                "max_with_alerts_s": round(max(loud), 3) if loud else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    print(json.dumps(series("off", a.runs, None)))
    print(json.dumps(series("notify", a.runs, port)))
    HANG["s"] = 30.0
    print(json.dumps(series("hanging target, timeout_s 1", max(3, a.runs // 3), port, timeout_s=1.0)))
    server.shutdown()


if __name__ == "__main__":
    main()
