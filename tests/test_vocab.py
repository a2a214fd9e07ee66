"""The shared vocabulary: one definition per word, equal to what the ledger and MT5 hold."""

from __future__ import annotations

import json

from scalper.brokers.base import (
    RETCODE_NAMES,
    TRANSIENT_CODES,
    UNCERTAIN_CODES,
    classify,
    code_name,
)
from scalper.vocab import (
    CLOSE_RETRYABLE,
    ORDER_IN_FLIGHT,
    OrderStatus,
    Side,
    TradeRetcode,
)
from tests.fakes.mt5_fake import FakeMT5


def test_side_opposite_is_an_involution() -> None:
    for side in Side:
        assert side.opposite != side
        assert side.opposite.opposite == side
    assert Side.BUY.opposite == "sell" and Side("sell").opposite == Side.BUY


def test_members_are_the_stored_text() -> None:
    assert OrderStatus.FILLED == "filled" and f"{OrderStatus.NEW}" == "new"
    assert json.dumps({"s": Side.SELL, "c": TradeRetcode.DONE}) == '{"s": "sell", "c": 10009}'
    assert set(ORDER_IN_FLIGHT).isdisjoint(CLOSE_RETRYABLE)


def test_retcodes_are_metatrader5s_names_and_numbers() -> None:
    """Every member is mt5.TRADE_RETCODE_<NAME> with the same number, and the other way round
    (the fake package carries the real module's constants)."""
    package = {name.removeprefix("TRADE_RETCODE_"): getattr(FakeMT5, name) for name in dir(FakeMT5)
               if name.startswith("TRADE_RETCODE_")}
    assert {code.name: int(code) for code in TradeRetcode} == package
    assert RETCODE_NAMES[10036] == "POSITION_CLOSED" and code_name(TradeRetcode.DONE) == "DONE"
    assert classify(TradeRetcode.DONE) == "success"
    assert {classify(c) for c in TRANSIENT_CODES} == {"transient"}
    assert {classify(c) for c in UNCERTAIN_CODES} == {"uncertain"}
