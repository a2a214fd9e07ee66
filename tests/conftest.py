"""Shared fixtures: the real data in ../shared/data, temp configs, a CLI runner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# scalper.ledger.sqlite.SYNCHRONOUS_ENV (checked in test_durability_switch). Named here, not
# imported: importing scalper while pytest loads this file changed what test_properties' seeded
# random walks generate.
SYNCHRONOUS_ENV = "SCALPER_SQLITE_SYNCHRONOUS"
# scalper.userdirs.CACHE_DIR_ENV and scalper.feeds.bar_cache.SWITCH_ENV (checked in test_bar_cache), named here for the
# same reason: every test gets its own parsed-bar cache, never the user's.
BARS_CACHE_DIR_ENV = "SCALPER_CACHE_DIR"
BARS_CACHE_SWITCH_ENV = "SCALPER_BARS_CACHE"

# The suite's durability switch: the ledger and the paper broker's books run with
# PRAGMA synchronous=OFF here instead of FULL (fsync on every commit was most of the
# suite's wall time). What this gives up is only what a power cut would test: both files
# are in WAL mode, and a commit is in the OS page cache before SQLite returns, so a
# process that dies after it (SIGKILL, os._exit, an exception) loses nothing, whatever
# `synchronous` says. The crash tests therefore test the same property under OFF; a
# power cut is not something a test can make. The real setting is still exercised:
# - tests that start scalper in a child with a SCALPER_*-free environment (the
#   SIGKILL / crash-point tests in test_exactly_once, test_notify, test_secrets) run FULL;
#   children given the test's own environment (test_books' SIGKILL drill) run OFF, which
#   tests the same thing, for the reason above;
# - @pytest.mark.real_durability runs a test with the switch unset (FULL), and
#   test_durability_switch checks that production opens both files FULL.
TEST_SYNCHRONOUS = "OFF"

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SCALPER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.fail(f"shared data file {path} is missing: the tests read the real M1 exports from "
                    f"../shared/data beside the checkout (or set SCALPER_SHARED_DATA)")
    return path


@pytest.fixture
def xau_csv() -> Path:
    return shared_file("XAUUSD_M1.csv")


@pytest.fixture
def btc_csv() -> Path:
    return shared_file("BTCUSD_M1.csv")


# Modules that read the same session-scoped replay (replayed_span) share an xdist group, so it is made once.
SHARED_GROUPS = {"tests.test_report": "tests.test_backtest"}


def pytest_collection_modifyitems(config, items):
    # The suite runs on every core (xdist, --dist loadgroup): each module's tests go to one worker, so a
    # module-scoped fixture (a backtest, a replayed ledger, a terminal session) is built once, not once
    # per worker. Runs before xdist's own hook (trylast), which reads these marks.
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            module = item.module.__name__ if item.module is not None else item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(SHARED_GROUPS.get(module, module)))


def pytest_configure(config):
    config.addinivalue_line("markers", "real_durability: run with the production PRAGMA synchronous "
                                       "(FULL), not the suite's faster setting")


@pytest.fixture(autouse=True)
def _clean_env(request, monkeypatch, tmp_path_factory):
    # each test gets its own validated-config cache (scalper.config.load_config)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    # and its own parsed-bar cache (scalper.feeds.bar_cache), on
    monkeypatch.setenv(BARS_CACHE_DIR_ENV, str(tmp_path_factory.mktemp("scalper-cache")))
    for var in ("SCALPER_CONFIG", "SCALPER_LEDGER", "SCALPER_CRASH_AT", "SCALPER_PAPER_FAULTS",
                "SCALPER_LEDGER_MAX_PAGES", SYNCHRONOUS_ENV, BARS_CACHE_SWITCH_ENV):
        monkeypatch.delenv(var, raising=False)
    if request.node.get_closest_marker("real_durability") is None:
        monkeypatch.setenv(SYNCHRONOUS_ENV, TEST_SYNCHRONOUS)


@pytest.fixture(scope="session")
def replayed_span(tmp_path_factory):
    """The engine replaying the real gold export minute by minute (each pass 5 s after its bar
    closes) over `count` bars from `first_bar`, with the bot `gold`'s `risk` (and the paper
    account's `balance`): the bots.yaml of the folder holding its ledger and paper books. One
    replay per span for the whole session, shared by the tests that read it (report, backtest
    parity): READ-ONLY, copy it to write."""
    from tests.enginekit import replay_minutes, write_config

    done: dict[str, Path] = {}

    def replay(first_bar: str, count: int, risk: dict, balance: float = 10_000.0) -> Path:
        key = json.dumps([first_bar, count, risk, balance], sort_keys=True)
        if key not in done:
            xau = shared_file("XAUUSD_M1.csv")
            config = write_config(tmp_path_factory.mktemp("replayed"), xau, risk=risk,
                                  paper={"initial_balance": balance})
            replay_minutes(config, xau, first_bar, count)
            done[key] = config
        return done[key]

    return replay


def pytest_sessionfinish(session, exitstatus):
    """Drop this session's PostgreSQL database (tests/pgkit.py), if a test made one."""
    import sys

    pgkit = sys.modules.get("tests.pgkit")
    if pgkit is not None:
        pgkit.drop_session_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_engine(request) -> str:
    """Run a test on both ledger engines; the PostgreSQL run is skipped (saying why) without a server."""
    if request.param == "postgresql":
        from tests import pgkit

        pgkit.require()
    return request.param


@pytest.fixture
def pg_ledger_url() -> str:
    """A fresh, empty PostgreSQL ledger (its own schema in this session's database)."""
    from tests import pgkit

    return pgkit.fresh_ledger_url()


def run_at_once(code: str, each_args: list[list[str]], env: dict[str, str]) -> list[str]:
    """One process of `python -c code *args` for each args, started together and released at once (each
    prints "ready", then waits for its stdin to close): what each printed after, once all ended with 0."""
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in each_args]
    try:
        for p in procs:
            assert p.stdout.readline() == "ready\n"
        for p in procs:
            p.stdin.close()
        out = []
        for p in procs:
            assert p.wait(timeout=120) == 0, p.stderr.read()
            out.append(p.stdout.read().strip())
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
