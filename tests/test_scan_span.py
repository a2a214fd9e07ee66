"""`scan --from/--to`: what was evaluated and skipped is counted over the span's windows, as the
signals are (the whole file is still scanned: the fast path's EMAs are seeded at its start)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalper.clock import bar_iso
from scalper.core import scan as scan_module
from scalper.core.scan import scan_history
from scalper.core.strategies import STRATEGY_NAMES
from scalper.feeds.csvfile import read_bars
from tests.clikit import cli
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def gold():
    bars, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    return bars


def _per_strategy(result, name: str) -> int:
    """A strategy's windows accounted for: its skips and its signals."""
    return sum(n for reason, n in result.skips.items() if reason.startswith(name)) \
        + sum(s.strategy == name for s in result.signals)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(0, 19_899), length=st.integers(0, 25_000), open_start=st.booleans(), parts=st.booleans())
def test_every_window_of_the_span_is_a_signal_or_a_skip_of_each_strategy(gold, monkeypatch, a, length, open_start,
                                                                        parts):
    if parts:   # the history scanned in parts, as a long one is
        monkeypatch.setattr(scan_module, "SEGMENT_WINDOWS", 4096)
    times = gold.time[99:]
    first = None if open_start else float(times[a])
    last = float(times[min(a + length, len(times) - 1)])
    whole = scan_history(gold, list(STRATEGY_NAMES))
    span = scan_history(gold, list(STRATEGY_NAMES), counted=(first, last))
    inside = [(first is None or t >= first) and t <= last for t in times.tolist()]
    assert span.evaluated == sum(inside)
    assert span.signals == whole.signals   # every window's signals, whatever is counted
    in_span = [s for s in span.signals if (first is None or s.bar_time >= first) and s.bar_time <= last]
    for name in STRATEGY_NAMES:
        counted = sum(n for reason, n in span.skips.items() if reason.startswith(name)) \
            + sum(s.strategy == name for s in in_span)
        assert counted == span.evaluated
        assert _per_strategy(whole, name) == whole.evaluated


def test_scan_with_a_span_says_so_and_counts_it(gold, capsys):
    start, end = "2025-05-20 00:00", "2025-05-21 00:00"
    doc = json.loads(cli(capsys, "scan", "--data", str(shared_file("XAUUSD_M1.csv")), "--from", start, "--to", end,
                         "--json").out)
    whole = json.loads(cli(capsys, "scan", "--data", str(shared_file("XAUUSD_M1.csv")), "--json").out)
    assert (doc["from"], doc["to"]) == ("2025-05-20 00:00:00", "2025-05-21 00:00:00")
    assert (whole["from"], whole["to"]) == (None, None) and whole["evaluated"] == 19_901
    times = [bar_iso(t) for t in gold.time[99:].tolist()]
    assert doc["evaluated"] == sum(start <= t <= end + ":00" for t in times) < whole["evaluated"]
    for name in STRATEGY_NAMES:
        skipped = sum(n for reason, n in doc["skips"].items() if reason.startswith(name))
        assert skipped + sum(doc["counts"][name].values()) == doc["evaluated"]
    text = " ".join(cli(capsys, "scan", "--data", str(shared_file("XAUUSD_M1.csv")), "--from", start, "--to",
                        end).out.split())   # as read, whatever the width wrapped
    assert f"from {start}:00 to {end}:00" in text and f"evaluated {doc['evaluated']:,}" in text
