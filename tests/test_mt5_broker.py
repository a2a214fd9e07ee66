"""The MetaTrader 5 broker adapter against the fake terminal (tests/fakes/mt5_fake.py)."""

from __future__ import annotations

import logging
import sqlite3
import sys

import pytest
import yaml

from scalper.brokers.base import OrderRequest, classify
from scalper.brokers.mt5 import MISSING_PACKAGE, MT5Broker, comment_matches, safe_comment
from scalper.clock import FixedClock, iso
from scalper.config import AccountConfig
from scalper.errors import BrokerUnavailable
from scalper.feeds.csvfile import read_bars
from scalper.mt5_terminal import TerminalAccount, UnknownSymbol
from tests.conftest import shared_file
from tests.enginekit import engine_at, golden, just_after_close, ts
from tests.fakes.mt5_fake import (
    DEMO_LOGIN,
    DEMO_PASSWORD,
    DEMO_SERVER,
    FakeAccount,
    FakeSymbol,
    btcusd,
    demo_terminal,
    eurusd,
    xauusd,
)

T0 = 1_747_735_200.0            # 2025-05-20 10:00:00 UTC
PASSWORD_ENV = "MT5_PASSWORD_7"
ACCOUNT = AccountConfig(id=7, name="mt5-demo", broker="mt5", login=DEMO_LOGIN, server=DEMO_SERVER,
                        password_env=PASSWORD_ENV)
CID = "sc0123456789abcdef012345"        # a client order id as the order desk makes them
MAGIC = 424242


@pytest.fixture
def clock():
    return FixedClock(T0)


def terminal(clock, *, server_offset_h=0.0, symbols=None):
    """A fake terminal whose Market Watch shows every symbol with a live quote."""
    m = demo_terminal(clock, server_offset_h=server_offset_h, symbols=symbols if symbols is not None else [
        xauusd("XAUUSDm"), eurusd(), btcusd(), FakeSymbol("USTEC", 2, 1.0, filling_mode=2)])
    quotes = {"XAUUSDm": (2345.10, 2345.30), "EURUSD": (1.08500, 1.08512), "BTCUSD": (65000.0, 65015.0),
              "USTEC": (18000.0, 18001.0)}
    for s in m.symbols.values():
        s.select = True
        m.set_quote(s.name, *quotes.get(s.name, (100.0, 100.2)))
    return m


@pytest.fixture
def mt5(clock, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, DEMO_PASSWORD)
    return terminal(clock)


@pytest.fixture
def broker(mt5, clock):
    b = MT5Broker.from_account(ACCOUNT, clock=clock, module=mt5)
    b.connect()
    yield b
    b.close()


def order(side="buy", symbol="XAUUSD", **changes) -> OrderRequest:
    return OrderRequest(**{"client_order_id": CID, "symbol": symbol, "side": side, "volume": 0.01, "sl": None,
                           "tp": None, "magic": MAGIC, **changes})


# --- the request ----------------------------------------------------------------------------------------------
def test_an_order_request_is_built_as_the_binding_wants_it(broker, mt5):
    result = broker.send_order(order(volume=0.03 + 1e-12, sl=2340.004, tp=2350.0,
                                     client_order_id="bot/gold #1 – a very long client id indeed"))
    assert result.code == 10009, result.message
    [request] = mt5.requests
    assert set(request) == {"action", "symbol", "volume", "type", "price", "sl", "tp", "deviation", "type_filling",
                            "type_time", "magic", "comment"}
    assert None not in request.values()
    assert type(request["volume"]) is float and request["volume"] == 0.03
    assert all(type(request[k]) is int for k in ("action", "type", "deviation", "type_filling", "type_time",
                                                 "magic"))
    assert (request["symbol"], request["price"], request["sl"], request["tp"]) == ("XAUUSDm", 2345.30, 2340.0,
                                                                                   2350.0)
    assert (request["type_filling"], request["type_time"]) == (mt5.ORDER_FILLING_FOK, mt5.ORDER_TIME_GTC)
    assert request["comment"] == "bot_gold__1___a_very_long_c" and len(request["comment"]) == 27
    assert request["comment"].isascii()


def test_levels_are_put_on_the_tick_grid_and_a_missing_level_is_zero(broker, mt5):
    mt5.symbols["XAUUSDm"].tick_size = 0.05
    assert broker.send_order(order("sell", sl=2350.07, tp=None)).code == 10009
    assert (mt5.requests[0]["sl"], mt5.requests[0]["tp"], mt5.requests[0]["price"]) == (2350.05, 0.0, 2345.10)


def test_the_filling_mode_follows_the_symbol(broker, mt5):
    assert broker.send_order(order(symbol="USTEC")).code == 10009           # IOC only
    mt5.symbols["EURUSD"].filling_mode = 0
    mt5.symbols["EURUSD"].exemode = mt5.SYMBOL_TRADE_EXECUTION_EXCHANGE
    assert broker.send_order(order(symbol="EURUSD", volume=0.1)).code == 10009
    assert [r["type_filling"] for r in mt5.requests] == [mt5.ORDER_FILLING_IOC, mt5.ORDER_FILLING_RETURN]


def test_safe_comments_and_how_stored_ones_are_matched():
    assert safe_comment(CID) == CID and safe_comment("a b/c:d.e-f_g" + "x" * 40) == "a_b_c:d.e-f_g" + "x" * 14
    assert comment_matches(CID, CID) and comment_matches(CID[:10], CID) and comment_matches("EA " + CID, CID)
    assert not comment_matches(CID[:9], CID) and not comment_matches("", CID)
    assert not comment_matches("sc0123456789abcdef099999", CID)


# --- return codes ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code, kind", [
    (10004, "transient"), (10021, "transient"), (10024, "transient"), (10028, "transient"),
    (10016, "final"), (10019, "final"), (10018, "final"), (10030, "final"), (10027, "final"),
])
def test_server_refusals_come_back_with_their_code(broker, mt5, code, kind):
    mt5.script_retcodes(code)
    result = broker.send_order(order())
    assert (result.code, result.kind, result.ticket, result.price) == (code, kind, None, None)
    assert result.message and mt5.positions_get() == ()


def test_a_requote_says_the_new_prices(broker, mt5):
    mt5.script_retcodes(10004)
    assert broker.send_order(order()).message == "Requote (bid 2345.1, ask 2345.3)"


def test_real_refusals_from_the_server(broker, mt5):
    assert broker.send_order(order(sl=2346.0)).code == 10016
    mt5.algo_trading = False                       # switched off after connecting
    result = broker.send_order(order())
    assert (result.code, result.kind, result.message) == (10027, "final", "AutoTrading disabled by client")


@pytest.mark.parametrize("lost", [10012, 10031, None])
def test_a_lost_answer_is_uncertain_and_find_order_finds_the_fill(broker, mt5, clock, lost):
    mt5.lose_next_answer(lost)
    result = broker.send_order(order(sl=2340.0))
    assert result.code == (lost or 10031) and result.kind == "uncertain"
    found = broker.find_order(CID, MAGIC, since=T0 - 3600)
    [pos] = mt5.positions_get()
    assert (found.state, found.ticket, found.position_ticket, found.side) == ("filled", pos.ticket, pos.ticket,
                                                                            "buy")
    assert (found.price, found.volume, found.symbol, found.time) == (2345.30, 0.01, "XAUUSD", T0)
    [deal] = found.deals
    assert (deal.entry, deal.position_id, deal.price) == ("in", pos.ticket, 2345.30)


def test_find_order_sees_the_position_while_history_lags(broker, mt5):
    mt5.history_lag = 5
    mt5.lose_next_answer(10012)
    broker.send_order(order())
    found = broker.find_order(CID, MAGIC, since=T0 - 3600)
    assert found.state == "filled" and found.position_ticket == mt5.positions_get()[0].ticket
    assert found.deals == ()


@pytest.mark.parametrize("rule", [lambda c: c[:16], lambda c: "EA:" + c])
def test_find_order_matches_a_comment_the_server_shortened_or_decorated(broker, mt5, rule):
    mt5.comment_rule = rule
    mt5.lose_next_answer(10031)
    broker.send_order(order())
    assert broker.find_order(CID, MAGIC, since=T0 - 3600).state == "filled"
    assert broker.find_order(CID, MAGIC + 1, since=T0 - 3600) is None            # the magic must match too
    assert broker.find_order("sc9999999999999999999999", MAGIC, since=T0 - 3600) is None


def test_find_order_finds_a_lost_close_by_its_own_client_id(broker, mt5):
    ticket = broker.send_order(order()).position_ticket
    mt5.lose_next_answer(None)
    result = broker.close_position(ticket, comment="sc-close-000000000000000", magic=MAGIC)
    assert result.kind == "uncertain" and mt5.positions_get() == ()
    found = broker.find_order("sc-close-000000000000000", MAGIC, since=T0 - 3600)
    assert (found.state, found.side, found.position_ticket) == ("filled", "sell", ticket)
    assert [d.entry for d in found.deals] == ["out"]


def test_find_order_reports_pending_and_canceled_orders(broker, mt5):
    pending = {"action": mt5.TRADE_ACTION_PENDING, "symbol": "XAUUSDm", "volume": 0.01,
               "type": mt5.ORDER_TYPE_BUY_LIMIT, "price": 2340.0, "type_filling": mt5.ORDER_FILLING_RETURN,
               "magic": MAGIC, "comment": CID}
    placed = mt5.order_send(pending)
    assert broker.find_order(CID, MAGIC, since=T0 - 3600).state == "placed"
    mt5.order_send({"action": mt5.TRADE_ACTION_REMOVE, "order": placed.order})
    found = broker.find_order(CID, MAGIC, since=T0 - 3600)
    assert (found.state, found.ticket, found.price) == ("canceled", placed.order, 2340.0)


def test_bad_arguments_and_python_trading_off_are_final_with_the_packages_text(broker, mt5):
    result = broker.send_order(order(magic=2**64))
    assert (result.code, result.kind) == (-2, "final") and 'Invalid "magic" argument' in result.message
    mt5.tradeapi_disabled = True
    result = broker.send_order(order())
    assert (result.code, result.kind) == (-8, "final") and "Python API disabled" in result.message
    assert classify(-2) == "final"


# --- symbols and time ---------------------------------------------------------------------------------------------
def test_a_root_name_finds_the_brokers_suffixed_symbol(broker, mt5):
    ticket = broker.send_order(order()).position_ticket
    assert mt5.positions_get()[0].symbol == "XAUUSDm"
    [pos] = broker.positions()
    assert (pos.ticket, pos.symbol) == (ticket, "XAUUSD")
    assert broker.symbol_spec("XAUUSD").symbol == "XAUUSD" and broker.quote("XAUUSD").bid == 2345.10


def test_an_ambiguous_or_unknown_symbol_is_refused_with_a_fix(clock, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, DEMO_PASSWORD)
    m = terminal(clock, symbols=[xauusd("XAUUSDm"), xauusd("XAUUSD.a"), eurusd()])
    b = MT5Broker.from_account(ACCOUNT, clock=clock, module=m)
    b.connect()
    result = b.send_order(order())
    assert (result.code, result.kind) == (10013, "final") and "XAUUSD.a, XAUUSDm" in result.message
    m.symbols["XAUUSD.a"].select = False                  # the operator's Market Watch decides
    assert b.send_order(order()).code == 10009 and m.requests[-1]["symbol"] == "XAUUSDm"
    with pytest.raises(UnknownSymbol, match="no symbol NOPE"):
        b.quote("NOPE")
    b.close()


@pytest.mark.parametrize("hours", [2, 3])
def test_server_times_come_back_as_utc(clock, monkeypatch, hours):
    monkeypatch.setenv(PASSWORD_ENV, DEMO_PASSWORD)
    m = terminal(clock, server_offset_h=hours)
    b = MT5Broker.from_account(ACCOUNT, clock=clock, module=m)
    b.connect()
    result = b.send_order(order(sl=2340.0))
    assert result.time == T0 and b.quote("XAUUSD").time == T0
    assert b.positions()[0].time_open == T0
    clock.instant = T0 + 90
    m.set_quote("XAUUSDm", 2339.90, 2340.10)                 # stopped out
    deals = b.deals(T0)
    assert [(d.entry, d.time, d.reason) for d in deals] == [("in", T0, "expert"), ("out", T0 + 90, "sl")]
    assert b.deals(T0 + 1) == deals[1:] and b.deals(T0, until=T0) == deals[:1]
    assert b.find_order(CID, MAGIC, since=T0).time == T0
    b.close()


def test_a_configured_offset_wins_over_the_estimate(clock, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, DEMO_PASSWORD)
    m = terminal(clock, server_offset_h=3)
    b = MT5Broker("7", clock=clock, access=TerminalAccount.of(ACCOUNT), module=m, server_offset_s=2 * 3600)
    b.connect()
    b.send_order(order())
    assert b.positions()[0].time_open == T0 + 3600            # it believes what it is told
    b.close()


def test_stale_quotes_cannot_tell_the_server_clock(broker, mt5, clock):
    broker.send_order(order())
    clock.instant = T0 + 2 * 86_400                          # a weekend later, no tick since
    with pytest.raises(BrokerUnavailable, match="markets look closed.*server_utc_offset_s"):
        broker.positions()


# --- positions, deals, closing, modifying ----------------------------------------------------------------------
def test_positions_and_deals_are_mapped(broker, mt5, clock):
    mt5.account.commission_per_lot = 7.0
    long = broker.send_order(order(volume=0.10, sl=2340.0, tp=2350.0)).position_ticket
    short = broker.send_order(order("sell", symbol="EURUSD", volume=0.10, client_order_id="sc-2", magic=1)).ticket
    mt5.set_quote("XAUUSDm", 2347.10, 2347.30)
    by_ticket = {p.ticket: p for p in broker.positions()}
    p = by_ticket[long]
    assert (p.side, p.volume, p.price_open, p.sl, p.tp, p.magic, p.comment) == ("buy", 0.10, 2345.30, 2340.0,
                                                                                2350.0, MAGIC, CID)
    assert (p.price_current, p.profit) == (2347.10, pytest.approx(18.0))
    assert (by_ticket[short].side, by_ticket[short].sl, by_ticket[short].tp) == ("sell", None, None)
    assert [q.ticket for q in broker.positions(magic=MAGIC)] == [long]

    clock.instant = T0 + 60
    mt5.set_quote("XAUUSDm", 2350.10, 2350.30)                 # take profit
    out = broker.deals(T0, position=long)[-1]
    assert (out.side, out.entry, out.reason, out.comment, out.position_id) == ("sell", "out", "tp",
                                                                               "[tp 2350.00]", long)
    assert (out.profit, out.commission, out.magic) == (pytest.approx(48.0), -0.7, MAGIC)
    assert [d.symbol for d in broker.deals(T0)] == ["XAUUSD", "EURUSD", "XAUUSD"]


def test_close_position_sends_the_opposite_deal_for_the_whole_position(broker, mt5):
    ticket = broker.send_order(order(volume=0.05)).position_ticket
    result = broker.close_position(ticket, comment="sc-close/1", magic=MAGIC)
    assert (result.code, result.position_ticket, result.price, result.volume) == (10009, ticket, 2345.10, 0.05)
    request = mt5.requests[-1]
    assert (request["type"], request["position"], request["volume"], request["comment"]) == (
        mt5.ORDER_TYPE_SELL, ticket, 0.05, "sc-close_1")
    assert mt5.positions_get() == ()
    assert broker.close_position(ticket).code == 10036


def test_modify_stops_sends_both_levels_and_returns_the_servers_code(broker, mt5):
    ticket = broker.send_order(order(sl=2340.0, tp=2350.0)).position_ticket
    result = broker.modify_stops(ticket, 2342.004, 2350.0)
    assert (result.code, result.position_ticket) == (10009, ticket)
    assert mt5.requests[-1] == {"action": mt5.TRADE_ACTION_SLTP, "symbol": "XAUUSDm", "position": ticket,
                                "sl": 2342.0, "tp": 2350.0}
    assert broker.modify_stops(ticket, 2342.0, 2350.0).code == 10025
    assert broker.modify_stops(ticket, 2346.0, 2350.0).code == 10016
    assert broker.modify_stops(ticket, None, None).code == 10009 and broker.positions()[0].sl is None
    broker.close_position(ticket)
    assert broker.modify_stops(ticket, 2340.0, None).code == 10036


def test_account_info_and_symbol_spec_come_from_the_terminal(broker, mt5):
    info = broker.account_info()
    assert (info.account, info.balance, info.equity, info.currency, info.margin_free) == ("7", 10_000.0, 10_000.0,
                                                                                           "USD", 10_000.0)
    mt5.symbols["BTCUSD"].volume_step = 0.1
    spec = broker.symbol_spec("BTCUSD")
    assert (spec.digits, spec.contract_size, spec.volume_step, spec.spread_points, spec.stops_level) == (
        2, 1.0, 0.1, 1500.0, 100)
    assert broker.sync() is None


# --- connecting -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault, expected", [
    (-10003, "no MetaTrader 5 terminal could be found or started"),
    (-10005, "did not answer in time"),
    (-6, f"check login/server and the password in ${PASSWORD_ENV}"),
])
def test_connect_failures_say_what_to_do_and_never_show_the_password(mt5, clock, caplog, fault, expected):
    caplog.set_level(logging.DEBUG)
    mt5.initialize_fault = fault
    broker = MT5Broker.from_account(ACCOUNT, clock=clock, module=mt5)
    with pytest.raises(BrokerUnavailable) as err:
        broker.connect()
    assert expected in str(err.value) and f"({fault} " in str(err.value)
    assert DEMO_PASSWORD not in str(err.value) and DEMO_PASSWORD not in repr(err.value.__cause__)
    assert DEMO_PASSWORD not in caplog.text
    mt5.initialize_fault = None
    broker.connect()
    assert DEMO_PASSWORD not in caplog.text and "connected to MetaTrader 5 account" in caplog.text


def test_a_wrong_password_is_an_authorization_failure(mt5, clock, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    with pytest.raises(BrokerUnavailable, match="authorization failed for login 7001234 on server 'Fake-Demo'"):
        MT5Broker.from_account(ACCOUNT, clock=clock, module=mt5).connect()
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(BrokerUnavailable, match=rf"\${PASSWORD_ENV} .* is not set"):
        MT5Broker.from_account(ACCOUNT, clock=clock, module=mt5).connect()


@pytest.mark.parametrize("switch, expected", [
    (lambda m: setattr(m, "algo_trading", False), "Algo Trading is off"),
    (lambda m: setattr(m, "tradeapi_disabled", True), "Disable algorithmic trading via external Python API"),
    (lambda m: setattr(m.account, "trade_allowed", False), "investor password"),
    (lambda m: setattr(m.account, "trade_expert", False), "10026"),
])
def test_a_terminal_that_cannot_trade_is_a_configuration_error_at_connect(mt5, clock, switch, expected):
    switch(mt5)
    broker = MT5Broker.from_account(ACCOUNT, clock=clock, module=mt5)
    with pytest.raises(BrokerUnavailable, match=expected):
        broker.connect()
    assert mt5.terminal_info() is None  # it let go of the terminal


def test_another_program_switching_the_account_stops_the_broker(broker, mt5):
    mt5.add_account(FakeAccount(login=99, password="other"))
    mt5.login(99, password="other")
    with pytest.raises(BrokerUnavailable, match="logged in to account 99, not 7001234"):
        broker.positions()
    with pytest.raises(BrokerUnavailable):
        broker.send_order(order())
    assert mt5.account.positions == {}


def test_one_process_holds_one_account(broker, mt5, clock):
    other = AccountConfig(id=8, broker="mt5", login=99, server=DEMO_SERVER, password_env=PASSWORD_ENV)
    with pytest.raises(BrokerUnavailable, match="already trades account 7001234"):
        MT5Broker.from_account(other, clock=clock, module=mt5).connect()
    assert broker.account_info().balance == 10_000.0


def test_a_terminal_that_went_away_is_unavailable_then_reopened(broker, mt5):
    mt5.shutdown()                                       # the terminal was closed
    with pytest.raises(BrokerUnavailable, match=r"did not answer account_info\(\) \(-10004 No IPC connection\)"):
        broker.positions()
    broker.connect()
    assert broker.positions() == []


def test_without_the_package_the_broker_says_how_to_get_it(clock, monkeypatch):
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)
    with pytest.raises(BrokerUnavailable) as err:
        MT5Broker.from_account(ACCOUNT, clock=clock)
    assert str(err.value) == MISSING_PACKAGE


# --- end to end: the engine with an mt5 account and the mt5 feed -------------------------------------------------
def test_the_engine_fills_an_order_that_the_terminal_holds_with_our_magic_and_comment(tmp_path, monkeypatch):
    pin = next(r for r in golden(shared_file("XAUUSD_M1.expected_signals.csv"))
               if r["strategy"] == "price_action_pinbar")
    now = just_after_close(pin["bar_time"])
    bars, _ = read_bars(shared_file("XAUUSD_M1.csv"))
    forming_open = float(bars.open[bars.index_of(int(ts(pin["bar_time"])) + 60)])

    m = demo_terminal(FixedClock(now), server_offset_h=3, symbols=[xauusd("XAUUSDm", select=True)])
    m.load_bars("XAUUSDm", bars)
    m.set_quote("XAUUSDm", forming_open - 0.10, forming_open + 0.10)
    monkeypatch.setitem(sys.modules, "MetaTrader5", m)      # what `import MetaTrader5` finds
    monkeypatch.setenv(PASSWORD_ENV, DEMO_PASSWORD)
    config = tmp_path / "bots.yaml"
    config.write_text(yaml.safe_dump({
        "ledger": "ledger.db",
        "feed": {"type": "mt5"},
        "accounts": [{"id": 7, "name": "mt5-demo", "broker": "mt5", "login": DEMO_LOGIN, "server": DEMO_SERVER,
                      "password_env": PASSWORD_ENV}],
        "bots": [{"name": "gold", "symbol": "XAUUSD", "accounts": [7], "strategies": ["price_action_pinbar"]}],
    }))

    summary = engine_at(config, now).run_once()

    assert summary.exit_code == 0, summary.errors
    assert summary.signals == 1 and summary.orders.get("filled") == 1
    con = sqlite3.connect(tmp_path / "ledger.db")
    con.row_factory = sqlite3.Row
    [row] = con.execute("SELECT * FROM orders").fetchall()
    [ledger_pos] = con.execute("SELECT * FROM positions").fetchall()
    con.close()
    [pos] = m.positions_get()
    assert (pos.symbol, pos.magic, pos.comment) == ("XAUUSDm", row["magic"], row["client_order_id"])
    assert pos.ticket == row["position_ticket"] == ledger_pos["ticket"]
    assert pos.type == (m.POSITION_TYPE_BUY if pin["direction"] == "buy" else m.POSITION_TYPE_SELL)
    assert pos.sl == pytest.approx(float(pin["sl"]), abs=0.005) and pos.time == int(now) + 3 * 3600
    assert ledger_pos["opened_at"] == iso(now)
