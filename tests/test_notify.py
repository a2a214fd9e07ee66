"""Alerts with real delivery: apprise posting json:// and form:// to an HTTP server on loopback.

The engine runs on the real gold export (2025-05-15T09:16:05 holds a trend_pullback sell,
filled on two paper accounts, stopped out by 09:30, when a doji_breakout buy opens that
reaches its TP by 10:30), several bots sharing accounts, through the run service exactly
as `scalper run-once` calls it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml

from tests.clikit import cli
from tests.enginekit import rows, write_config

pytest.importorskip("apprise", reason="alerts need the notify extra: pip install -e '.[notify]'")

from scalper.services.run import run_once

DAY = "2025-05-15"
PASSES = [f"{DAY}T{t}" for t in ("09:16:05", "09:17:05", "09:22:05", "09:30:05", "09:31:05", "09:45:05",
                                  "10:00:05", "10:30:05", "10:31:05", "10:45:05")]


# --- a webhook receiver on loopback ---------------------------------------------------------------
class Hook:
    """Records every post. mode: ok (200), fail (HTTP 500), slow (answers after `delay` s)."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.mode = "ok"
        self.delay = 0.0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    doc = json.loads(raw)
                else:
                    doc = {k: v[0] for k, v in parse_qs(raw).items()}
                post = {"path": self.path, "ctype": ctype, "title": doc.get("title", ""),
                        "message": doc.get("message", ""), "mode": hook.mode, "raw": raw}
                hook.posts.append(post)
                try:
                    if hook.mode == "slow":
                        time.sleep(hook.delay)
                    self.send_response(500 if hook.mode == "fail" else 200)
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass   # the client gave up (timeout)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}/{path}"

    def delivered(self, path: str | None = None) -> list[str]:
        """Alert texts in posts that were answered 200, in order."""
        out = []
        for p in self.posts:
            if p["mode"] == "ok" and (path is None or p["path"].strip("/") == path):
                out += [t for t in p["message"].split("\n\n") if t]
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def _config(tmp_path: Path, xau_csv: Path, targets: list[dict], **kw) -> Path:
    """Three bots on the gold export sharing two paper accounts, with alert targets."""
    extra = [
        {"name": "gold-b", "symbol": "XAUUSD", "accounts": [2], "strategies": ["trend_pullback", "doji_breakout"],
         "risk": {"max_concurrent": 3, "max_per_symbol": 2}},
        {"name": "gold-quiet", "symbol": "XAUUSD", "accounts": [1, 2], "auto_trade": False},
    ]
    path = write_config(tmp_path, xau_csv, symbol="XAUUSD", accounts=(1, 2), extra_bots=extra,
                        risk={"max_per_symbol": 2, "max_concurrent": 3}, **kw)
    doc = yaml.safe_load(path.read_text())
    doc["engine"] = {"log_file": "scalper.log"}
    doc["notify"] = targets
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _pass(config: Path, when: str):
    return run_once(config=str(config), ledger=None, now=when)


def _outbox(tmp_path: Path) -> list[dict]:
    return rows(tmp_path / "ledger.db", "SELECT * FROM notify_outbox ORDER BY id")


# --- the right events, once each ------------------------------------------------------------------
def test_fills_and_closes_of_several_bots_arrive_once_each_one_message_per_target_per_pass(
        tmp_path, xau_csv, hook, monkeypatch):
    monkeypatch.setenv("ALERTS_ALL", hook.url("json", "all"))
    monkeypatch.setenv("ALERTS_GOLD", hook.url("form", "gold"))
    config = _config(tmp_path, xau_csv, [
        {"name": "everything", "url_env": "ALERTS_ALL"},
        {"name": "gold-fills", "url_env": "ALERTS_GOLD", "events": ["fills"], "bots": ["gold"]},
    ])
    posts_per_pass = []
    for when in PASSES:
        before = len(hook.posts)
        summary = _pass(config, when)
        assert summary.exit_code == 0 and not summary.errors, summary.errors
        posts_per_pass.append([p["path"] for p in hook.posts[before:]])

    led = tmp_path / "ledger.db"
    positions = rows(led, "SELECT * FROM positions ORDER BY id")
    closed = [p for p in positions if p["status"] == "closed"]
    assert len(positions) >= 4 and len(closed) >= 4, "the replay must open and close trades"
    assert {p["bot"] for p in positions} >= {"gold", "gold-b"}
    assert {p["account_id"] for p in positions} == {1, 2}

    every = hook.delivered("all")
    assert len(every) == len(set(every)), "an alert arrived twice"
    fills = [t for t in every if t.startswith("FILLED")]
    closes = [t for t in every if t.startswith("CLOSED")]
    assert len(fills) == len(positions) and len(closes) == len(closed)
    for p in positions:   # what a trader reads: bot, symbol, side, volume, price, SL/TP, account
        acc = f"account paper-{p['account_id']} (#{p['account_id']})"
        assert sum(1 for t in fills if t.startswith(f"FILLED {p['bot']} · XAUUSD {p['side'].upper()} ")
                   and f"@ {p['price_open']:g}" in t and f"SL {p['sl']:g}" in t and acc in t) >= 1
    for p in closed:
        assert any(f"P&L {p['profit']:+,.2f} USD" in t and p["bot"] in t for t in closes)
    assert any("(stop loss hit)" in t for t in closes) and any("(take profit hit)" in t for t in closes)

    # the filtered target: the gold bot's fills only, as form posts
    gold = hook.delivered("gold")
    assert sorted(gold) == sorted(t for t in fills if t.startswith("FILLED gold ·"))
    assert all(p["ctype"].startswith("application/x-www-form-urlencoded") for p in hook.posts
               if p["path"] == "/gold")
    # one message per target per pass, however many events the pass had
    for paths in posts_per_pass:
        assert len(paths) == len(set(paths))
    assert any(len(m["message"].split("\n\n")) > 1 for m in hook.posts), "events were batched"
    assert all(r["status"] == "sent" and r["tries"] == 1 for r in _outbox(tmp_path))

    # passes again over the same minutes: nothing new, nothing resent
    n = len(hook.posts)
    _pass(config, PASSES[-1])
    assert len(hook.posts) == n


def test_kill_switch_and_order_errors_are_alerted(tmp_path, xau_csv, hook, monkeypatch, capsys):
    monkeypatch.setenv("ALERTS_ALL", hook.url("json", "all"))
    config = _config(tmp_path, xau_csv, [{"name": "phone", "url_env": "ALERTS_ALL",
                                          "events": ["kill_switch", "errors"]}])
    monkeypatch.setenv("SCALPER_PAPER_FAULTS", "retcodes=10019")   # no money: every first send refused
    assert _pass(config, PASSES[0]).order_problems
    monkeypatch.delenv("SCALPER_PAPER_FAULTS")
    assert cli(capsys, "kill-switch", "engage", "--bot", "gold-b", "--config", str(config)).code == 0
    _pass(config, PASSES[1])
    texts = hook.delivered()
    refused = [t for t in texts if t.startswith("ORDER rejected by the broker")]
    assert refused and all("10019" in t or "money" in t.lower() for t in refused)
    kills = [t for t in texts if t.startswith("KILL-SWITCH gold-b engaged (by hand)")]
    assert len(kills) == 1 and "kill-switch release --bot gold-b" in kills[0]
    assert not any(t.startswith(("FILLED", "CLOSED")) for t in texts)   # not asked for


def test_broker_unreachable_is_an_error_alert(tmp_path, xau_csv, hook, monkeypatch):
    monkeypatch.setenv("ALERTS_ALL", hook.url("json", "all"))
    config = _config(tmp_path, xau_csv, [{"url_env": "ALERTS_ALL", "events": ["errors"]}])
    monkeypatch.setenv("SCALPER_PAPER_FAULTS", "unreachable=1")
    summary = _pass(config, PASSES[0])
    assert summary.exit_code == 3
    texts = hook.delivered()
    assert len(texts) == 1 and texts[0].startswith("ERROR run ")
    assert "could not reach a broker" in texts[0]


# --- a target that fails or hangs -----------------------------------------------------------------
@pytest.mark.parametrize("mode", ["fail", "slow"])
def test_failing_target_does_not_hold_up_the_pass_and_gets_the_alerts_later(
        tmp_path, xau_csv, hook, monkeypatch, mode):
    monkeypatch.setenv("ALERTS_ALL", hook.url("json", "all"))
    config = _config(tmp_path, xau_csv, [{"name": "phone", "url_env": "ALERTS_ALL", "timeout_s": 0.5}])
    hook.mode, hook.delay = mode, 8.0
    t0 = time.monotonic()
    summary = _pass(config, PASSES[0])
    took = time.monotonic() - t0
    assert summary.exit_code == 0
    # bounded by 2 × timeout_s + 1 s of delivery (plus the pass itself); the behaviour checked is
    # that the pass does not sit out the 8 s hang, with room for a loaded machine (speed: bench/)
    assert took < hook.delay - 1.0, f"the pass waited {took:.1f}s on a {mode} target"
    assert any("phone" in e and ("HTTP 500" in e if mode == "fail" else "timed out" in e)
               for e in summary.errors), summary.errors
    pending = _outbox(tmp_path)
    assert pending and all(r["status"] == "pending" and r["tries"] == 1 for r in pending)
    assert hook.delivered() == []
    assert len(hook.posts) == 1   # it was tried once, as one message

    hook.mode = "ok"
    _pass(config, PASSES[1])
    texts = hook.delivered()
    assert sorted(texts) == sorted(r["text"] for r in pending)
    assert all(r["status"] == "sent" for r in _outbox(tmp_path))
    _pass(config, PASSES[2])
    assert all(hook.delivered().count(t) == 1 for t in texts)   # nothing twice


def test_alerts_are_dropped_after_max_tries_with_an_audit_row(tmp_path, xau_csv, hook, monkeypatch):
    monkeypatch.setenv("ALERTS_ALL", hook.url("json", "all"))
    config = _config(tmp_path, xau_csv, [{"name": "phone", "url_env": "ALERTS_ALL", "max_tries": 2,
                                          "events": ["fills"]}])
    hook.mode = "fail"
    _pass(config, PASSES[0])
    assert {r["status"] for r in _outbox(tmp_path)} == {"pending"}
    summary = _pass(config, PASSES[1])
    assert any("dropped after 2 tries" in e for e in summary.errors), summary.errors
    out = _outbox(tmp_path)
    assert out and all(r["status"] == "dropped" and r["tries"] == 2 for r in out)
    audit = rows(tmp_path / "ledger.db", "SELECT * FROM audit WHERE kind = 'notify_dropped'")
    assert len(audit) == len(out) and all("phone" in a["message"] and "HTTP 500" in a["message"] for a in audit)
    hook.mode = "ok"
    n = len(hook.posts)
    _pass(config, PASSES[2])
    assert len(hook.posts) == n   # dropped means dropped


def test_unset_url_variable_keeps_alerts_waiting_without_using_tries(tmp_path, xau_csv, hook, monkeypatch):
    config = _config(tmp_path, xau_csv, [{"name": "phone", "url_env": "ALERTS_LATER", "events": ["fills"]}])
    monkeypatch.delenv("ALERTS_LATER", raising=False)
    summary = _pass(config, PASSES[0])
    assert any("$ALERTS_LATER is not set" in e for e in summary.errors)
    assert all(r["tries"] == 0 and r["status"] == "pending" for r in _outbox(tmp_path))
    monkeypatch.setenv("ALERTS_LATER", hook.url("json", "later"))
    _pass(config, PASSES[1])
    assert len(hook.delivered()) == len(_outbox(tmp_path)) > 0


# --- crash between sending and marking sent -------------------------------------------------------
def _scalper(tmp_path: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scalper", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_")}
    env.update(extra)
    return env


def test_crash_after_delivery_before_marking_sends_at_most_one_duplicate_and_loses_nothing(
        tmp_path, xau_csv, hook, monkeypatch, capsys):
    config = _config(tmp_path, xau_csv, [{"name": "phone", "url_env": "ALERTS_ALL"}])
    env = _env(ALERTS_ALL=hook.url("json", "all"))
    crashed = _scalper(tmp_path, "run-once", "--now", PASSES[0], "--config", str(config),
                       env={**env, "SCALPER_CRASH_AT": "after_notify_send"})
    assert crashed.returncode == -9, crashed.stderr
    first = hook.delivered()
    assert first and all(t.startswith("FILLED") for t in first)
    assert {r["status"] for r in _outbox(tmp_path)} == {"pending"}   # delivered, not marked

    # The first rerun is the real CLI again; the others run it in-process, to save start-up time.
    done = _scalper(tmp_path, "run-once", "--now", PASSES[1], "--config", str(config), env=env)
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("ALERTS_ALL", env["ALERTS_ALL"])
    for when in PASSES[2:4]:
        again = cli(capsys, "run-once", "--now", when, "--config", str(config))
        assert again.code == 0, again.err
    texts = hook.delivered()
    for t in set(texts):
        assert texts.count(t) == (2 if t in first else 1), t   # the crashed batch once more, nothing else
    assert all(r["status"] == "sent" for r in _outbox(tmp_path))
    assert {r["text"] for r in _outbox(tmp_path)} == set(texts)   # and every alert arrived


# --- the URL is never shown -----------------------------------------------------------------------
def test_planted_url_never_reaches_output_logs_or_ledger(tmp_path, xau_csv, hook, monkeypatch, capsys):
    token = f"tok{uuid.uuid4().hex}"
    config = _config(tmp_path, xau_csv, [{"name": "phone", "url_env": "ALERTS_ALL", "timeout_s": 0.5}])
    url = hook.url("json", f"hook/{token}")
    env = _env(ALERTS_ALL=url)
    outputs = []

    def child(*args: str, env=env) -> subprocess.CompletedProcess:
        """A real process: also what the interpreter itself prints (warnings, tracebacks at exit)."""
        done = _scalper(tmp_path, *args, "--config", str(config), env=env)
        outputs.extend([done.stdout, done.stderr])
        return done

    def run(*args: str, value: str = url):
        """The same CLI in-process (no interpreter start-up): what the commands print."""
        monkeypatch.setenv("ALERTS_ALL", value)
        done = cli(capsys, *args, "--config", str(config))
        outputs.extend([done.out, done.err])
        return done

    hook.mode = "fail"
    assert child("run-once", "--now", PASSES[0]).returncode == 0
    hook.mode = "slow"
    hook.delay = 2.0
    assert run("run-once", "--now", PASSES[3], "--json").code == 0
    hook.mode = "ok"
    assert run("notify", "test").code == 0
    assert run("run-once", "--now", PASSES[7]).code == 0
    run("check", "--max-age", "1s", "--notify")
    for cmd in (["check", "--json"], ["status"], ["report", "--since", DAY]):
        run(*cmd)
    bad = child("run-once", "--now", PASSES[8], env={**env, "ALERTS_ALL": f"bogus://{token}@127.0.0.1/x"})
    assert bad.returncode == 2 and "bogus://" in bad.stderr and "ALERTS_ALL" in bad.stderr
    garbage = run("status", value=token)
    assert garbage.code == 2 and "does not hold a URL" in garbage.err

    assert any(token in p["path"] for p in hook.posts)   # the URL was used…
    assert len(hook.delivered()) > 0
    for text in outputs:                                   # …and shown nowhere
        assert token not in text
    files = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert "scalper.log" in files and "ledger.db" in files
    for name, data in files.items():
        assert token.encode() not in data, f"the URL's token is stored in {name}"


# --- the stall watch --------------------------------------------------------------------------------
def test_stall_alert_once_per_stall_and_a_recovery_message(tmp_path, xau_csv, hook, monkeypatch, capsys):
    monkeypatch.setenv("ALERTS_ALL", hook.url("json", "all"))
    config = _config(tmp_path, xau_csv, [{"name": "ops", "url_env": "ALERTS_ALL", "events": ["stale"]}])

    def check(*args):
        return cli(capsys, "check", "--config", str(config), *args)

    never = check("--max-age", "3m", "--notify")
    assert never.code != 0 and "no ledger" in never.out
    _pass(config, PASSES[0])
    fresh = check("--max-age", "3m", "--notify")
    assert fresh.code == 0, fresh.out
    assert hook.posts == []
    time.sleep(1.2)
    for _ in range(3):                                  # cron every minute during one stall
        r = check("--max-age", "1s", "--notify")
        assert r.code == 1 and "last pass" in r.out
    stalls = [t for t in hook.delivered() if t.startswith("STALLED")]
    assert len(stalls) == 1 and "ago" in stalls[0]

    _pass(config, PASSES[1])                            # the engine runs again: told once, by the pass
    assert [t for t in hook.delivered() if t.startswith("RECOVERED")] != []
    assert check("--max-age", "3m", "--notify").code == 0
    assert len([t for t in hook.delivered() if t.startswith("RECOVERED")]) == 1

    time.sleep(1.2)                                     # a second stall: a second alert
    check("--max-age", "1s", "--notify")
    check("--max-age", "1s", "--notify")
    assert len([t for t in hook.delivered() if t.startswith("STALLED")]) == 2
    assert check("--max-age", "1h", "--notify").code == 0   # recovered as seen by the watch
    assert len([t for t in hook.delivered() if t.startswith("RECOVERED")]) == 2

    usage = check("--notify")
    assert usage.code == 2 and "--max-age" in usage.err


def test_stall_watch_does_not_touch_brokers_and_json_reports_it(tmp_path, xau_csv, monkeypatch, capsys):
    config = _config(tmp_path, xau_csv, [])
    _pass(config, PASSES[0])
    monkeypatch.setenv("SCALPER_PAPER_FAULTS", "unreachable=1")   # a full check would fail with exit 3
    r = cli(capsys, "check", "--max-age", "1h", "--json", "--config", str(config))
    assert r.code == 0, r.out
    items = {i["what"]: i for i in r.json()["items"]}
    assert items["last pass"]["ok"] and not any(w.startswith("account") for w in items)


# --- daily summary ----------------------------------------------------------------------------------
def test_daily_summary_once_after_its_utc_time(tmp_path, xau_csv, hook, monkeypatch):
    monkeypatch.setenv("ALERTS_ALL", hook.url("json", "all"))
    config = _config(tmp_path, xau_csv, [{"name": "eod", "url_env": "ALERTS_ALL", "events": ["daily_summary"],
                                          "daily_summary_at": "10:30"}])
    for when in PASSES:
        _pass(config, when)
        if when < f"{DAY}T10:30":
            assert hook.posts == []
    texts = hook.delivered()
    assert len(texts) == 1 and texts[0].startswith(f"DAILY SUMMARY {DAY}")
    closed = rows(tmp_path / "ledger.db", "SELECT bot, profit FROM positions WHERE status = 'closed' "
                                          "AND closed_at <= ?", (f"{DAY}T10:30:05Z",))
    for bot in {r["bot"] for r in closed}:
        mine = [r["profit"] for r in closed if r["bot"] == bot]
        assert f"{bot}: {len(mine)} trade(s)" in texts[0] and f"{sum(mine):+,.2f} USD" in texts[0]
    assert "win rate" in texts[0] and "open positions:" in texts[0] and "kill-switches: none engaged" in texts[0]


# --- notify test ----------------------------------------------------------------------------------
def test_notify_test_says_which_target_worked(tmp_path, xau_csv, hook, monkeypatch, capsys):
    monkeypatch.setenv("ALERTS_OK", hook.url("json", "ok"))
    monkeypatch.setenv("ALERTS_FORM", hook.url("form", "form"))
    monkeypatch.delenv("ALERTS_UNSET", raising=False)
    config = _config(tmp_path, xau_csv, [{"name": "good", "url_env": "ALERTS_OK"},
                                         {"name": "form", "url_env": "ALERTS_FORM"},
                                         {"name": "missing", "url_env": "ALERTS_UNSET"}])
    r = cli(capsys, "notify", "test", "--config", str(config), "--json")
    assert r.code == 3
    by = {t["target"]: t for t in r.json()["targets"]}
    assert by["good"]["ok"] and by["form"]["ok"] and not by["missing"]["ok"]
    assert "ALERTS_UNSET is not set" in by["missing"]["detail"]
    assert {p["path"] for p in hook.posts} == {"/ok", "/form"}
    assert all("Test message" in p["message"] for p in hook.posts)
    assert not (tmp_path / "ledger.db").exists()      # a test message is not recorded
    one = cli(capsys, "notify", "test", "--target", "good", "--config", str(config))
    assert one.code == 0 and "good: delivered" in one.out


# --- validation at load ------------------------------------------------------------------------------
def _bad(tmp_path, xau_csv, capsys, targets, env=None):
    config = _config(tmp_path, xau_csv, targets)
    for k, v in (env or {}).items():
        os.environ[k] = v
    try:
        return cli(capsys, "run-once", "--config", str(config)), config
    finally:
        for k in env or {}:
            os.environ.pop(k, None)


def _line_of(config: Path, needle: str) -> int:
    """The line whose text (without indentation) starts with needle and ends there or at a colon."""
    return next(i for i, ln in enumerate(config.read_text().splitlines(), 1)
                if ln.strip() == needle or ln.strip().startswith(needle + ":"))


def test_unknown_event_is_refused_with_file_line_field_and_fix(tmp_path, xau_csv, capsys):
    r, config = _bad(tmp_path, xau_csv, capsys, [{"url_env": "X_URL", "events": ["fills", "fill"]}])
    assert r.code == 2
    assert f"{config}:{_line_of(config, '- fill')}: notify[0].events[1]: unknown event 'fill'" in r.err
    assert "did you mean 'fills'" in r.err and not (tmp_path / "ledger.db").exists()


def test_unknown_scheme_is_refused_without_showing_the_url(tmp_path, xau_csv, capsys):
    r, config = _bad(tmp_path, xau_csv, capsys, [{"url_env": "X_URL"}],
                     env={"X_URL": "tgramm://123456:SECRETTOKEN/987"})
    assert r.code == 2
    assert f"{config}:{_line_of(config, '- url_env')}: notify[0].url_env:" in r.err
    assert "tgramm://" in r.err and "did you mean `tgram://`" in r.err and "SECRETTOKEN" not in r.err
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize("targets, field, words", [
    ([{"url": "json://h/x"}], "notify[0].url", "must not be written"),
    ([{"url_env": "json://host/token"}], "notify[0].url_env", "NAME of an environment variable"),
    ([{"url_env": "A", "bots": ["nope"]}], "notify[0].bots[0]", "no bot named 'nope'"),
    ([{"url_env": "A"}, {"url_env": "A"}], "notify[1].name", "already used"),
    ([{"url_env": "A", "daily_summary_at": "25:00"}], "notify[0].daily_summary_at", "not a time of day"),
])
def test_bad_targets_are_refused(tmp_path, xau_csv, capsys, targets, field, words):
    r, _ = _bad(tmp_path, xau_csv, capsys, targets)
    assert r.code == 2 and f"{field}: " in r.err and words in r.err, r.err
    assert "host/token" not in r.err and "json://h/x" not in r.err


def test_unquoted_summary_time_is_read_as_a_time(tmp_path, xau_csv):
    from scalper.config import load_config

    config = _config(tmp_path, xau_csv, [{"url_env": "A"}])
    config.write_text(config.read_text().replace("url_env: A", "url_env: A\n  daily_summary_at: 21:30"))
    assert load_config(config).notify[0].daily_summary_at == "21:30"


def test_without_apprise_a_config_with_targets_says_how_to_install_it(tmp_path, xau_csv, capsys, monkeypatch):
    from scalper.notify import urls

    monkeypatch.setattr(urls, "apprise_installed", lambda: False)
    r, config = _bad(tmp_path, xau_csv, capsys, [{"url_env": "A"}])
    assert r.code == 2 and f"{config}:{_line_of(config, 'notify:')}: notify:" in r.err
    assert "pip install '.[notify]'" in r.err


# --- apprise stays out of a quiet run-once ----------------------------------------------------------
def test_run_once_without_events_does_not_import_apprise(tmp_path, xau_csv, hook):
    config = _config(tmp_path, xau_csv, [{"name": "phone", "url_env": "ALERTS_ALL"}])
    env = _env(ALERTS_ALL=hook.url("json", "all"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    probe = ("import sys; from scalper.services.run import run_once; "
             "s = run_once(config=sys.argv[1], ledger=None, now=sys.argv[2]); "
             "print(s.signals, 'apprise' in sys.modules)")

    def run(when):
        done = subprocess.run([sys.executable, "-c", probe, str(config), when], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    signals, imported = run(f"{DAY}T09:16:05")         # fills to send (and the scheme registry cached)
    assert int(signals) > 0 and imported == "True"
    assert run(f"{DAY}T09:17:05") == ["0", "False"]    # nothing to send: apprise never loaded
    assert len(hook.delivered()) > 0
