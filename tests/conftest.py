"""Shared fixtures: the real data in ../shared/data, temp configs, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path_factory):
    # each test gets its own validated-config cache (scalper.config.load_config)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    for var in ("SCALPER_CONFIG", "SCALPER_LEDGER", "SCALPER_CRASH_AT", "SCALPER_PAPER_FAULTS",
                "SCALPER_LEDGER_MAX_PAGES"):
        monkeypatch.delenv(var, raising=False)
