"""Secrets: a broker password lives in the environment only. It is never printed,
logged or stored; a password written into bots.yaml is refused without being
echoed; the files that hold account data are owner-only.

A password is planted in the variable an mt5 account names with password_env,
next to a paper bot; every command that could touch it runs for real, then
stdout, stderr, the log, the ledger (+ -wal) and the paper broker's books are
searched for it byte by byte.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scalper import logsetup
from scalper.cli import main
from scalper.clock import iso
from scalper.config import load_config
from tests.clikit import cli as in_process
from tests.enginekit import just_after_close

PLANTED = "S3cr3t-PLANTED-pw"
ENV_NAME = "MT5_PASSWORD_7"
SIGNAL_BAR = "2025-05-15 09:15:00"     # a trend_pullback signal in the shared XAUUSD export


def _write(tmp: Path, xau_csv: Path, *, with_mt5: bool = True, log_file: str | None = "var/scalper.log") -> Path:
    accounts = [{"id": 1, "name": "paper-1", "broker": "paper"}]
    bots = [{"name": "gold", "symbol": "XAUUSDm", "accounts": [1], "strategies": ["trend_pullback"]}]
    if with_mt5:
        accounts.append({"id": 7, "name": "live-7", "broker": "mt5", "login": 12345678, "server": "Broker-Demo",
                         "password_env": ENV_NAME})
        bots.append({"name": "gold-live", "symbol": "XAUUSD", "accounts": [7], "strategies": ["trend_pullback"]})
    cfg = {"ledger": "ledger.db", "engine": {"log_file": log_file},
           "feed": {"type": "csv", "files": {"XAUUSDm": str(xau_csv), "XAUUSD": str(xau_csv)}},
           "paper": {"state": "paper.db"}, "accounts": accounts, "bots": bots}
    path = tmp / "bots.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_")}
    env.update(extra)
    return env


def _all_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under the folder (ledger, -wal, -shm, paper books, log, lock files, backups)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _assert_absent(secret: str, *texts: str, files: dict[str, bytes] | None = None) -> None:
    for t in texts:
        assert secret not in t, f"the secret appears in output:\n{t}"
    for name, data in (files or {}).items():
        for form in (secret.encode(), secret.encode("utf-16-le")):
            assert form not in data, f"the secret is stored in {name}"


def test_planted_password_never_reaches_output_logs_ledger_or_books(tmp_path, xau_csv, monkeypatch, capsys):
    config = _write(tmp_path, xau_csv)
    env = _env(**{ENV_NAME: PLANTED})
    now = iso(just_after_close(SIGNAL_BAR))
    outputs = []

    def run(*args: str, now_arg: bool = False) -> subprocess.CompletedProcess:
        """A real process: also what the interpreter itself prints (warnings, tracebacks at exit)."""
        cmd = [sys.executable, "-m", "scalper", *args, "--config", str(config)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        outputs.extend([done.stdout, done.stderr])
        return done

    def run_here(*args: str):
        """The same CLI in-process (no interpreter start-up): what the commands print."""
        done = in_process(capsys, *args, "--config", str(config))
        outputs.extend([done.out, done.err])
        return done

    # The mt5 account cannot be reached here (no terminal): exit 3, the paper bot still runs.
    first = run("run-once")
    assert first.returncode == 3, first.stderr
    assert "Traceback" not in first.stderr
    monkeypatch.setenv(ENV_NAME, PLANTED)
    monkeypatch.chdir(tmp_path)
    as_json = run_here("run-once", "--json")
    assert as_json.code == 3
    check = run_here("check")
    assert check.code == 3, check.out + check.err
    for cmd in (["check", "--json"], ["status"], ["status", "--json"], ["kill-switch", "status"]):
        run_here(*cmd)

    # The paper bot alone, through a real signal and a real order, with the password still planted.
    paper_only = _write(tmp_path, xau_csv, with_mt5=False)
    # the same ledger ran live a moment ago: replaying 2025 there is going back in time, said explicitly
    done = subprocess.run([sys.executable, "-m", "scalper", "run-once", "--now", now, "--allow-backwards",
                           "--config", str(paper_only)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    outputs.extend([done.stdout, done.stderr])
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(tmp_path / "ledger.db")
    assert con.execute("SELECT COUNT(*) FROM orders WHERE status = 'filled'").fetchone()[0] == 1
    con.close()

    files = _all_bytes(tmp_path)
    assert "ledger.db" in files and "paper.db" in files
    _assert_absent(PLANTED, *outputs, files=files)


def test_log_file_masks_the_password_wherever_it_would_appear(tmp_path, xau_csv, capsys, monkeypatch):
    """logsetup as the CLI wires it (right after the config loads): a rotating, owner-only
    file whose every record is masked — even a careless message that carries the password."""
    config = _write(tmp_path, xau_csv)
    monkeypatch.setenv(ENV_NAME, PLANTED)
    from scalper import wiring

    real_load = wiring.load

    def load_and_log(option):
        cfg = real_load(option)
        logsetup.configure(cfg)
        return cfg

    monkeypatch.setattr(wiring, "load", load_and_log)
    try:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(["run-once", "--config", str(config)])
        assert exit_info.value.code == 3

        log = logging.getLogger("scalper.test")
        log.warning("login to %s with password=%s failed", "Broker-Demo", PLANTED)
        log.warning("request %r", {"login": 12345678, "password": PLANTED, "server": "Broker-Demo"})
        log.error("token: %s", "tok-ABCDEF-123456")
        log.info("env %s", dict(os.environ))
        try:
            raise RuntimeError(f"terminal said: bad credentials {PLANTED}")
        except RuntimeError:
            log.exception("connect failed")
        log.info("the password comes from $%s", ENV_NAME)   # the variable's NAME is fine to log
    finally:
        logsetup.shutdown()

    captured = capsys.readouterr()
    log_file = tmp_path / "var" / "scalper.log"
    text = log_file.read_text()
    assert log_file.stat().st_mode & 0o777 == 0o600
    assert "connect failed" in text and "RuntimeError: terminal said: bad credentials ***" in text
    assert "password=***" in text and "'password': '***'" in text and "token: ***" in text
    assert "tok-ABCDEF-123456" not in text
    assert f"${ENV_NAME}" in text
    assert "run " in text    # the run's own summary line went to the file
    _assert_absent(PLANTED, captured.out, captured.err, text, files=_all_bytes(tmp_path))


def test_rotated_logs_stay_owner_only(tmp_path, monkeypatch):
    class Cfg:
        class engine:
            log_file = str(tmp_path / "logs" / "scalper.log")
        accounts = ()

        def resolve_path(self, p):
            return Path(p)

    monkeypatch.setattr(logsetup, "MAX_BYTES", 2_000)
    old = os.umask(0o022)
    try:
        path = logsetup.configure(Cfg())
        log = logging.getLogger("scalper.rotation")
        for i in range(200):
            log.info("line %d %s", i, "x" * 50)
    finally:
        logsetup.shutdown()
        os.umask(old)
    files = sorted(path.parent.iterdir())
    assert len(files) > 1
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600, f


def test_a_log_that_cannot_be_opened_does_not_stop_anything(tmp_path, capsys):
    blocker = tmp_path / "var"
    blocker.write_text("a file where the log folder should be")

    class Cfg:
        class engine:
            log_file = str(blocker / "scalper.log")
        accounts = ()

        def resolve_path(self, p):
            return Path(p)

    assert logsetup.configure(Cfg()) is None
    assert "log file" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["password", "Password", "passwd", "api_key", "secret", "auth_token"])
def test_a_password_written_in_bots_yaml_is_refused_without_echoing_it(key, tmp_path, xau_csv, capsys):
    config = _write(tmp_path, xau_csv)
    data = yaml.safe_load(config.read_text())
    data["accounts"][1][key] = PLANTED
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    for args in (["run-once"], ["run-once", "--json"], ["check"]):
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main([*args, "--config", str(config)])
        assert info.value.code == 2
        out = capsys.readouterr()
        assert f"accounts[1].{key}" in out.out + out.err
        assert "must not be written in bots.yaml" in out.out + out.err
        _assert_absent(PLANTED, out.out, out.err)
    assert not (tmp_path / "ledger.db").exists() and not (tmp_path / "var").exists()


def test_the_password_pasted_into_password_env_is_refused_without_echoing_it(tmp_path, xau_csv, capsys):
    config = _write(tmp_path, xau_csv)
    config.write_text(config.read_text().replace(f"password_env: {ENV_NAME}", f"password_env: {PLANTED}"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["run-once", "--config", str(config)])
    assert info.value.code == 2
    out = capsys.readouterr()
    assert "accounts[1].password_env" in out.err and "NAME of an environment variable" in out.err
    _assert_absent(PLANTED, out.out, out.err)


def test_ledger_paper_books_and_their_wal_shm_are_owner_only(tmp_path, xau_csv, capsys):
    from scalper import wiring
    from scalper.brokers.paper import PaperBroker
    from scalper.clock import FixedClock
    from scalper.ledger import Ledger
    from scalper.symbols import spec_for

    config = _write(tmp_path, xau_csv, with_mt5=False)
    old = os.umask(0o022)     # a permissive umask, as on many desktops
    try:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main(["run-once", "--now", iso(just_after_close(SIGNAL_BAR)), "--config", str(config)])
        assert info.value.code == 0, capsys.readouterr().err
        for name in ("ledger.db", "paper.db"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name

        # While both are open and written, their -wal and -shm exist: owner-only too.
        cfg = load_config(config)
        broker = PaperBroker(tmp_path / "paper.db", account="1", feed=wiring.make_feed(cfg),
                             clock=FixedClock(just_after_close(SIGNAL_BAR)), specs=spec_for)
        broker.connect()
        with Ledger(tmp_path / "ledger.db") as led:
            with led.tx() as c:
                led.audit(c, 0.0, "test", "a write, so the -wal holds frames")
            broker.sync()
            for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm", "paper.db", "paper.db-wal", "paper.db-shm"):
                p = tmp_path / name
                assert p.exists(), name
                assert p.stat().st_mode & 0o777 == 0o600, (name, oct(p.stat().st_mode))
        broker.close()
    finally:
        os.umask(old)
