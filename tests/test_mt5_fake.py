"""The fake MetaTrader5 terminal against its contract (docs/mt5-api.md), so that the
adapter's tests against it mean something."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import numpy as np
import pytest

from scalper.clock import FixedClock
from scalper.core.bars import Bars
from tests.fakes.mt5_fake import (
    DEMO_LOGIN,
    DEMO_PASSWORD,
    DEMO_SERVER,
    RATES_DTYPE,
    TERMINAL_PATH,
    FakeAccount,
    FakeMT5,
    FakeSymbol,
    TradeDeal,
    TradeOrder,
    TradePosition,
    btcusd,
    demo_terminal,
    eurusd,
    xauusd,
)

T0 = 1_747_735_200.0            # 2025-05-20 10:00:00 UTC
SUCCESS = (1, "Success")


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def mt5(clock):
    """Initialized, every symbol in Market Watch with a quote."""
    m = demo_terminal(clock, symbols=[xauusd(), eurusd(), btcusd(), FakeSymbol("USTEC", 2, 1.0, filling_mode=2)])
    assert m.initialize(login=DEMO_LOGIN, password=DEMO_PASSWORD, server=DEMO_SERVER)
    quotes = {"XAUUSD": (2345.10, 2345.30), "EURUSD": (1.08500, 1.08512), "BTCUSD": (65000.0, 65015.0),
              "USTEC": (18000.0, 18001.0)}
    for name, (bid, ask) in quotes.items():
        assert m.symbol_select(name, True)
        m.set_quote(name, bid, ask)
    return m


def buy(m: FakeMT5, on="XAUUSD", **changes) -> dict:
    s = m.symbols[on]
    request = {"action": m.TRADE_ACTION_DEAL, "symbol": on, "volume": 0.01, "type": m.ORDER_TYPE_BUY,
               "price": s.ask, "deviation": 20, "type_filling": m.ORDER_FILLING_FOK, "magic": 42,
               "comment": "sc-test"}
    return {**request, **changes}


def sell(m: FakeMT5, on="XAUUSD", **changes) -> dict:
    return buy(m, on, type=m.ORDER_TYPE_SELL, price=m.symbols[on].bid, **changes)


def sent(m: FakeMT5, request: dict):
    result = m.order_send(request)
    assert result is not None, m.last_error()
    return result


# --- shape ---------------------------------------------------------------------------------------------
def test_constants_have_the_package_values():
    m = FakeMT5
    assert (m.TIMEFRAME_M1, m.TIMEFRAME_H1, m.TIMEFRAME_D1, m.TIMEFRAME_MN1) == (1, 16385, 16408, 49153)
    assert (m.TRADE_ACTION_DEAL, m.TRADE_ACTION_PENDING, m.TRADE_ACTION_SLTP, m.TRADE_ACTION_REMOVE) == (1, 5, 6, 8)
    assert (m.ORDER_FILLING_FOK, m.ORDER_FILLING_IOC, m.ORDER_FILLING_RETURN) == (0, 1, 2)
    assert (m.DEAL_ENTRY_OUT, m.DEAL_REASON_SL, m.DEAL_REASON_TP, m.ORDER_STATE_FILLED) == (1, 4, 5, 4)
    assert (m.TRADE_RETCODE_DONE, m.TRADE_RETCODE_INVALID_FILL, m.TRADE_RETCODE_POSITION_CLOSED) == (10009, 10030,
                                                                                                     10036)
    assert (m.RES_E_INVALID_PARAMS, m.RES_E_AUTH_FAILED, m.RES_E_INTERNAL_FAIL_CONNECT) == (-2, -6, -10004)
    assert (m.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, m.SYMBOL_TRADE_MODE_FULL, m.COPY_TICKS_ALL) == (2, 4, -1)


def test_structures_keep_the_documented_field_order(mt5):
    assert TradePosition._fields == tuple(
        ["ticket", "time", "time_msc", "time_update", "time_update_msc", "type", "magic", "identifier", "reason", "volume", "price_open", "sl", "tp", "price_current", "swap", "profit", "symbol", "comment", "external_id"])
    assert TradeDeal._fields == tuple(
        ["ticket", "order", "time", "time_msc", "type", "entry", "magic", "position_id", "reason", "volume", "price", "commission", "swap", "profit", "fee", "symbol", "comment", "external_id"])
    assert TradeOrder._fields[:6] == ("ticket", "time_setup", "time_setup_msc", "time_done", "time_done_msc",
                                      "time_expiration")
    result = sent(mt5, buy(mt5))
    assert result._fields == ("retcode", "deal", "order", "volume", "price", "bid", "ask", "comment",
                              "request_id", "retcode_external", "request")
    assert result.request._fields[:5] == ("action", "magic", "order", "symbol", "volume")
    assert mt5.symbol_info_tick("XAUUSD")._fields == ("time", "bid", "ask", "last", "volume", "time_msc", "flags",
                                                      "volume_real")
    assert mt5.positions_get()[0]._asdict()["magic"] == 42


def test_getters_answer_tuples_and_an_empty_tuple_when_there_is_nothing(mt5):
    assert mt5.positions_get() == () and mt5.orders_get() == ()
    assert mt5.history_deals_get(0, 2**40) == ()
    sent(mt5, buy(mt5))
    for rows in (mt5.positions_get(), mt5.history_deals_get(0, 2**40), mt5.history_orders_get(0, 2**40),
                 mt5.symbols_get()):
        assert type(rows) is tuple and rows
    assert mt5.positions_get(symbol="EURUSD") == ()
    assert mt5.positions_get(0) is None and mt5.last_error() == (-2, "Unnamed arguments not allowed")


# --- connection ---------------------------------------------------------------------------------------------
CALLS = [("terminal_info", ()), ("account_info", ()), ("symbols_get", ()), ("symbol_info", ("XAUUSD",)),
         ("symbol_info_tick", ("XAUUSD",)), ("positions_get", ()), ("orders_get", ()),
         ("history_deals_get", (0, 2**40)), ("copy_rates_from_pos", ("XAUUSD", 1, 0, 10)),
         ("order_send", ({"action": 1},)), ("order_check", ({"action": 1},)), ("version", ())]


@pytest.mark.parametrize("function, args", CALLS)
def test_calls_before_initialize_and_after_shutdown_fail_with_no_ipc_connection(clock, function, args):
    m = demo_terminal(clock)
    assert getattr(m, function)(*args) is None
    assert m.last_error() == (-10004, "No IPC connection")
    assert m.symbol_select("XAUUSD", True) is False
    assert m.initialize() and m.last_error() == SUCCESS
    m.shutdown()
    assert getattr(m, function)(*args) is None and m.last_error() == (-10004, "No IPC connection")


def test_initialize_failures(clock):
    m = demo_terminal(clock)
    assert m.initialize(login=DEMO_LOGIN, password="wrong", server=DEMO_SERVER) is False
    assert m.last_error() == (-6, "Terminal: Authorization failed")
    assert m.initialize(r"D:\nowhere\terminal64.exe") is False and m.last_error()[0] == -10003
    assert m.initialize(login=str(DEMO_LOGIN)) is False and m.last_error() == (-2, 'Invalid "login" argument')
    m.initialize_fault = -10005
    assert m.initialize(TERMINAL_PATH) is False and m.last_error() == (-10005, "IPC timeout")
    m.initialize_fault = None
    assert m.initialize(TERMINAL_PATH, login=DEMO_LOGIN, password=DEMO_PASSWORD, server=DEMO_SERVER)
    assert m.last_error() == SUCCESS and m.account_info().login == DEMO_LOGIN


def test_login_switches_the_whole_terminal_to_another_account(mt5):
    other = mt5.add_account(FakeAccount(login=99, password="other", balance=500.0))
    sent(mt5, buy(mt5))
    assert mt5.login(99, password="nope") is False and mt5.last_error()[0] == -6
    assert mt5.login(99, password="other") and mt5.account_info().login == 99
    assert mt5.account_info().balance == other.balance and mt5.positions_get() == ()
    assert mt5.login(DEMO_LOGIN) and len(mt5.positions_get()) == 1  # the terminal remembers the password


# --- the request parser of the binding (§7.1) ------------------------------------------------------------
class Side(enum.IntEnum):
    BUY = 0


@pytest.mark.parametrize("key, value", [
    ("volume", 1),                           # an int volume
    ("sl", None),                            # None is a wrong type
    ("magic", np.int64(42)),                 # numpy ints are not int
    ("position", np.int32(5)),
    ("price", np.float32(2345.3)),           # float32 is not a float subclass
    ("expiration", datetime(2025, 5, 21)),   # datetimes are refused here
    ("comment", "c" * 30),                   # 30 UTF-16 units
    ("comment", "😀" * 15),                   # 15 characters, 30 UTF-16 units
    ("symbol", "X" * 30),
    ("magic", -1),
    ("magic", 2**64),
    ("deviation", 10.0),
    ("type", "0"),
])
def test_the_binding_refuses_a_badly_typed_request_before_the_server_sees_it(mt5, key, value):
    request = buy(mt5, **{key: value})
    assert mt5.order_send(request) is None
    assert mt5.last_error() == (-2, f'Invalid "{key}" argument')
    assert mt5.order_check(request) is None and mt5.last_error() == (-2, f'Invalid "{key}" argument')
    assert mt5.positions_get() == ()


def test_the_binding_accepts_subclasses_ignores_unknown_keys_and_defaults_missing_ones(mt5):
    request = buy(mt5, comment="c" * 29, price=np.float64(mt5.symbols["XAUUSD"].ask), type=Side.BUY,
                  magic=True, whatever=object())
    assert sent(mt5, request).retcode == 10009
    assert mt5.order_send([("action", 1)]) is None and mt5.last_error() == (-2, "Invalid arguments")
    check = mt5.order_check(buy(mt5))
    assert check.retcode == 0 and check.comment == "Done" and check.margin > 0
    no_filling = {k: v for k, v in buy(mt5, "USTEC").items() if k != "type_filling"}
    assert sent(mt5, no_filling).retcode == 10030           # missing = FOK, and USTEC allows IOC only
    assert sent(mt5, {**no_filling, "type_filling": mt5.ORDER_FILLING_IOC}).retcode == 10009


# --- server rules (§7.4) ------------------------------------------------------------------------------------
def _set(**attrs):
    def apply(m):
        for target, changes in attrs.items():
            obj = m if target == "terminal" else m.account if target == "account" else m.symbols[target]
            for name, value in changes.items():
                setattr(obj, name, value)
    return apply


@pytest.mark.parametrize("setup, changes, code", [
    (None, {"volume": 0.015}, 10014),
    (None, {"volume": 0.001}, 10014),
    (None, {"volume": 101.0}, 10014),
    (None, {"sl": 2345.20}, 10016),                              # a buy's SL above the bid
    (None, {"tp": 2345.00}, 10016),                              # a buy's TP below the bid
    (None, {"sl": 2340.005}, 10016),                             # more digits than the symbol has
    (_set(XAUUSD={"tick_size": 0.05}), {"sl": 2340.02}, 10016),  # off the tick grid
    (_set(XAUUSD={"stops_level": 50}), {"sl": 2344.70}, 10016),  # 40 points away, 50 needed
    (None, {"volume": 50.0}, 10019),                             # 50 lots of gold on 10,000 USD
    (_set(XAUUSD={"trade_mode": 0}), {}, 10017),
    (_set(XAUUSD={"trade_mode": 2}), {}, 10043),                 # short only: no buys
    (_set(XAUUSD={"trade_mode": 3}), {}, 10044),                 # close only
    (_set(XAUUSD={"session_open": False}), {}, 10018),
    (_set(terminal={"algo_trading": False}), {}, 10027),
    (_set(account={"trade_expert": False}), {}, 10026),
    (_set(XAUUSD={"filling_mode": 2}), {}, 10030),               # FOK asked, IOC only allowed
    (None, {"type_filling": 2}, 10030),                          # RETURN on a market-execution symbol
    (None, {"price": 2345.305}, 10015),
    (_set(XAUUSD={"bid": 0.0, "ask": 0.0}), {}, 10021),
    (None, {"symbol": "NOPE"}, 10013),
])
def test_server_rules(mt5, setup, changes, code):
    if setup:
        setup(mt5)
    result = sent(mt5, buy(mt5, **changes))
    assert (result.retcode, result.order, result.deal, result.volume) == (code, 0, 0, 0.0)
    assert result.comment and mt5.positions_get() == () and mt5.last_error() == SUCCESS
    assert mt5.order_check(buy(mt5, **changes)).retcode == code


def test_long_only_blocks_sells_but_not_buys(mt5):
    mt5.symbols["XAUUSD"].trade_mode = mt5.SYMBOL_TRADE_MODE_LONGONLY
    assert sent(mt5, sell(mt5)).retcode == 10042
    assert sent(mt5, buy(mt5)).retcode == 10009


@pytest.mark.parametrize("setup, changes, code", [
    (_set(terminal={"algo_trading": False}), {"volume": 0.015}, 10027),    # automation first
    (_set(XAUUSD={"session_open": False}), {"volume": 0.015}, 10018),      # session before volume
    (None, {"volume": 0.015, "type_filling": 1 << 8}, 10014),              # volume before filling
    (None, {"type_filling": 1 << 8, "price": 2345.305}, 10030),            # filling before price
    (None, {"price": 2345.305, "sl": 2346.0}, 10015),                      # price before stops
    (None, {"sl": 2346.0, "volume": 50.0}, 10016),                         # stops before money
])
def test_rules_are_checked_in_the_documented_order(mt5, setup, changes, code):
    if setup:
        setup(mt5)
    assert sent(mt5, buy(mt5, **changes)).retcode == code


def test_instant_execution_requotes_a_stale_price_with_the_new_quote(mt5):
    mt5.symbols["EURUSD"].exemode = mt5.SYMBOL_TRADE_EXECUTION_INSTANT
    stale = buy(mt5, "EURUSD", price=1.08500, deviation=5, volume=0.1)   # 12 points under the ask
    result = sent(mt5, stale)
    assert (result.retcode, result.bid, result.ask) == (10004, 1.085, 1.08512)
    result = sent(mt5, {**stale, "deviation": 12})
    assert (result.retcode, result.price) == (10009, 1.08512)


# --- executing ----------------------------------------------------------------------------------------------
def test_a_market_deal_opens_a_position_with_an_in_deal_and_a_filled_order(mt5, clock):
    result = sent(mt5, buy(mt5, sl=2340.0, tp=2350.0, comment="sc0001"))
    assert (result.retcode, result.price, result.volume, result.bid, result.ask) == (10009, 2345.30, 0.01,
                                                                                   2345.10, 2345.30)
    [pos] = mt5.positions_get()
    assert pos.ticket == pos.identifier == result.order and pos.reason == mt5.POSITION_REASON_EXPERT
    assert (pos.magic, pos.comment, pos.sl, pos.tp, pos.type) == (42, "sc0001", 2340.0, 2350.0, 0)
    assert pos.time == int(T0) and pos.price_current == 2345.10 and pos.profit == pytest.approx(-0.20)
    [deal] = mt5.history_deals_get(ticket=result.order)
    assert (deal.ticket, deal.entry, deal.profit, deal.position_id) == (result.deal, mt5.DEAL_ENTRY_IN, 0.0,
                                                                        result.order)
    [order] = mt5.history_orders_get(ticket=result.order)
    assert order.state == mt5.ORDER_STATE_FILLED and order.comment == "sc0001"
    assert mt5.positions_total() == 1 and mt5.history_deals_total(0, 2**40) == 1


def test_tickets_strictly_increase_and_orders_and_deals_count_apart(mt5):
    results = [sent(mt5, buy(mt5)) for _ in range(3)] + [sent(mt5, sell(mt5, "EURUSD", volume=0.1))]
    orders, deals = [r.order for r in results], [r.deal for r in results]
    assert orders == sorted(set(orders)) and deals == sorted(set(deals)) and not set(orders) & set(deals)


def test_closing_by_an_opposite_deal_that_names_the_position(mt5):
    opened = sent(mt5, buy(mt5, volume=0.05))
    mt5.set_quote("XAUUSD", 2350.10, 2350.30)
    partial = sent(mt5, sell(mt5, volume=0.02, position=opened.order))
    [pos] = mt5.positions_get()
    assert partial.retcode == 10009 and pos.ticket == opened.order and pos.volume == pytest.approx(0.03)
    [out] = mt5.history_deals_get(ticket=partial.order)
    assert (out.entry, out.type, out.position_id) == (mt5.DEAL_ENTRY_OUT, mt5.DEAL_TYPE_SELL, opened.order)
    assert out.profit == pytest.approx((2350.10 - 2345.30) * 0.02 * 100)
    assert mt5.account_info().balance == pytest.approx(10_000 + out.profit)
    assert sent(mt5, sell(mt5, volume=0.04, position=opened.order)).retcode == 10038
    assert sent(mt5, sell(mt5, volume=0.03, position=opened.order)).retcode == 10009
    assert mt5.positions_get() == ()
    assert sent(mt5, sell(mt5, volume=0.03, position=opened.order)).retcode == 10036


def test_an_opposite_deal_without_position_opens_a_hedge(mt5):
    sent(mt5, buy(mt5))
    sent(mt5, sell(mt5))
    assert sorted(p.type for p in mt5.positions_get()) == [0, 1]


def test_sltp_sets_both_levels(mt5):
    ticket = sent(mt5, buy(mt5, sl=2340.0, tp=2350.0)).order

    def sltp(**levels):
        return sent(mt5, {"action": mt5.TRADE_ACTION_SLTP, "symbol": "XAUUSD", "position": ticket, **levels})

    assert sltp(sl=2341.0, tp=2350.0).retcode == 10009 and mt5.positions_get()[0].sl == 2341.0
    assert sltp(sl=2341.0, tp=2350.0).retcode == 10025
    assert sltp(sl=2346.0, tp=2350.0).retcode == 10016            # above the bid
    assert sltp(sl=2342.0).retcode == 10009                       # a level left out is removed
    assert (mt5.positions_get()[0].sl, mt5.positions_get()[0].tp) == (2342.0, 0.0)
    mt5.symbols["XAUUSD"].freeze_level = 400                      # 4.00: the market is 3.10 from the SL
    assert sltp(sl=2341.0).retcode == 10029
    mt5.symbols["XAUUSD"].freeze_level = 0
    assert sent(mt5, sell(mt5, position=ticket)).retcode == 10009
    assert sltp(sl=2341.0).retcode == 10036


def test_pending_orders_are_placed_and_removed(mt5):
    limit = buy(mt5, action=mt5.TRADE_ACTION_PENDING, type=mt5.ORDER_TYPE_BUY_LIMIT, price=2340.0,
                type_filling=mt5.ORDER_FILLING_RETURN)
    assert sent(mt5, {**limit, "price": 2346.0}).retcode == 10015       # a buy limit above the ask
    placed = sent(mt5, limit)
    [order] = mt5.orders_get()
    assert order.ticket == placed.order and order.state == mt5.ORDER_STATE_PLACED and mt5.orders_total() == 1
    assert sent(mt5, {"action": mt5.TRADE_ACTION_REMOVE, "order": placed.order}).retcode == 10009
    assert mt5.orders_get() == ()
    assert mt5.history_orders_get(ticket=placed.order)[0].state == mt5.ORDER_STATE_CANCELED
    assert sent(mt5, {"action": mt5.TRADE_ACTION_REMOVE, "order": placed.order}).retcode == 10013


def test_price_moves_revalue_and_crossing_a_level_closes_at_market(mt5, clock):
    long = sent(mt5, buy(mt5, volume=0.10, sl=2340.0, tp=2360.0)).order
    short = sent(mt5, sell(mt5, "EURUSD", volume=0.10, sl=1.09, tp=1.08400)).order
    mt5.set_quote("XAUUSD", 2348.10, 2348.30)
    assert mt5.positions_get(ticket=long)[0].profit == pytest.approx((2348.10 - 2345.30) * 10)
    assert mt5.account_info().equity == pytest.approx(10_000 + sum(p.profit for p in mt5.positions_get()))

    clock.instant += 30
    mt5.set_quote("XAUUSD", 2339.80, 2340.00)          # through the SL
    mt5.set_quote("EURUSD", 1.08390, 1.08398)          # a sell's TP is reached by the ask
    assert mt5.positions_get() == ()
    sl_out = [d for d in mt5.history_deals_get(position=long) if d.entry == mt5.DEAL_ENTRY_OUT][0]
    assert (sl_out.reason, sl_out.comment, sl_out.price, sl_out.magic) == (mt5.DEAL_REASON_SL, "[sl 2340.00]",
                                                                           2339.80, 42)
    assert sl_out.profit == pytest.approx((2339.80 - 2345.30) * 10) and sl_out.time == int(T0) + 30
    tp_out = [d for d in mt5.history_deals_get(position=short) if d.entry == mt5.DEAL_ENTRY_OUT][0]
    assert (tp_out.reason, tp_out.comment, tp_out.type) == (mt5.DEAL_REASON_TP, "[tp 1.08400]", mt5.DEAL_TYPE_BUY)


def test_history_ranges_are_inclusive_server_seconds_ordered_by_time(mt5, clock):
    first = sent(mt5, buy(mt5))
    clock.instant += 60
    second = sent(mt5, buy(mt5, "EURUSD", volume=0.1))
    t1, t2 = int(T0), int(T0) + 60
    assert [d.ticket for d in mt5.history_deals_get(t1, t2)] == [first.deal, second.deal]
    assert [d.ticket for d in mt5.history_deals_get(t2, t2)] == [second.deal]
    assert mt5.history_deals_get(t1 + 1, t2 - 1) == ()
    assert [d.symbol for d in mt5.history_deals_get(t1, t2, group="*,!EUR*")] == ["XAUUSD"]
    dt = datetime.fromtimestamp(t2, tz=UTC)
    assert [o.ticket for o in mt5.history_orders_get(dt, dt)] == [second.order]
    assert mt5.history_deals_get(ticket=first.deal) == ()          # ticket= is the ORDER ticket
    assert mt5.history_deals_get(t1, float(t2)) is None and mt5.last_error()[0] == -2


# --- symbols and bars -----------------------------------------------------------------------------------------
def test_unknown_and_unselected_symbols(clock):
    m = demo_terminal(clock, symbols=[xauusd("XAUUSDm"), xauusd("XAUEUR"), eurusd()])
    m.initialize()
    assert m.symbol_info("XAUUSD") is None and m.last_error()[0] == -4
    assert m.symbol_info("XAUUSDm").name == "XAUUSDm"
    assert m.symbol_info_tick("XAUUSDm") is None               # not in Market Watch yet
    assert m.symbol_select("XAUUSDm", True) and m.symbol_info_tick("XAUUSDm").bid == 0.0
    assert [s.name for s in m.symbols_get(group="*XAU*,!*EUR*")] == ["XAUUSDm"]
    assert m.symbol_select("NOPE", True) is False


def _bars(start: float, closes: list[float]) -> Bars:
    n = len(closes)
    return Bars.from_arrays(np.arange(n) * 60 + int(start), closes, np.add(closes, 1), np.subtract(closes, 1),
                            closes, volume=np.full(n, 10.0))


def test_copy_rates_from_pos_puts_the_forming_bar_at_position_zero(mt5, clock):
    mt5.load_bars("BTCUSD", _bars(T0 - 300, [100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0]))
    clock.instant = T0 + 20                           # the 10:00 bar is forming; 10:01 is in the future
    rates = mt5.copy_rates_from_pos("BTCUSD", mt5.TIMEFRAME_M1, 0, 3)
    assert rates.dtype == RATES_DTYPE and isinstance(rates, np.ndarray)
    assert list(rates["time"]) == [T0 - 120, T0 - 60, T0] and list(rates["close"]) == [103.0, 104.0, 105.0]
    assert list(mt5.copy_rates_from_pos("BTCUSD", 1, 1, 2)["time"]) == [T0 - 120, T0 - 60]
    assert len(mt5.copy_rates_from_pos("BTCUSD", 1, 0, 1000)) == 6          # what there is
    mt5.maxbars = 4
    assert len(mt5.copy_rates_from_pos("BTCUSD", 1, 0, 1000)) == 4
    assert list(mt5.copy_rates_from("BTCUSD", 1, int(T0) - 60, 2)["time"]) == [T0 - 120, T0 - 60]
    assert list(mt5.copy_rates_range("BTCUSD", 1, int(T0) - 120, int(T0))["close"]) == [103.0, 104.0, 105.0]
    assert mt5.copy_rates_from_pos("NOPE", 1, 0, 3) is None


def test_ticks_build_the_bar_of_their_minute_and_a_quiet_minute_has_none(mt5, clock):
    mt5.symbols["EURUSD"].rates = mt5.symbols["EURUSD"].rates[:0]
    mt5.set_quote("EURUSD", 1.08500, 1.08510)
    clock.instant += 20
    mt5.set_quote("EURUSD", 1.08540, 1.08550)
    clock.instant += 20
    mt5.set_quote("EURUSD", 1.08480, 1.08490)
    clock.instant = T0 + 75                            # 10:01 has had no tick yet
    [bar] = mt5.copy_rates_from_pos("EURUSD", 1, 0, 5)
    assert (bar["time"], bar["open"], bar["high"], bar["low"], bar["close"]) == (T0, 1.085, 1.0854, 1.0848,
                                                                              1.0848)
    assert (bar["tick_volume"], bar["spread"]) == (3, 10)


def test_a_server_offset_shows_in_every_time_field(clock):
    m = demo_terminal(clock, server_offset_h=3)
    m.initialize()
    m.symbol_select("XAUUSD", True)
    m.load_bars("XAUUSD", _bars(T0 - 120, [2345.0, 2346.0]))
    m.set_quote("XAUUSD", 2345.10, 2345.30)
    server = int(T0) + 3 * 3600
    ticket = sent(m, buy(m)).order
    assert m.symbol_info_tick("XAUUSD").time == server and m.symbol_info("XAUUSD").time == server
    assert m.positions_get()[0].time == server and m.positions_get()[0].time_msc == server * 1000
    assert m.history_deals_get(server, server)[0].order == ticket
    assert list(m.copy_rates_from_pos("XAUUSD", 1, 0, 3)["time"]) == [server - 120, server - 60, server]


# --- faults -----------------------------------------------------------------------------------------------------
def test_scripted_retcodes_answer_without_executing(mt5):
    mt5.script_retcodes(10004, 10024)
    first, second = sent(mt5, buy(mt5)), sent(mt5, buy(mt5))
    assert (first.retcode, first.bid, first.ask, second.retcode) == (10004, 2345.10, 2345.30, 10024)
    assert mt5.positions_get() == ()
    assert sent(mt5, buy(mt5)).retcode == 10009


@pytest.mark.parametrize("lost", [10012, 10031, None])
def test_a_lost_answer_still_executes_the_deal(mt5, lost):
    mt5.lose_next_answer(lost)
    mt5.script_retcodes(10021)                         # a refusal executes nothing and keeps the fault armed
    assert sent(mt5, buy(mt5)).retcode == 10021
    result = mt5.order_send(buy(mt5, comment="sc-lost"))
    if lost is None:
        assert result is None and mt5.last_error() == (-10004, "No IPC connection")
    else:
        assert (result.retcode, result.order, result.deal) == (lost, 0, 0)
    [pos] = mt5.positions_get()
    assert pos.comment == "sc-lost"
    assert sent(mt5, buy(mt5)).retcode == 10009 and len(mt5.positions_get()) == 2


def test_history_lag_hides_new_records_for_k_history_calls(mt5):
    mt5.history_lag = 2
    ticket = sent(mt5, buy(mt5)).order
    assert len(mt5.positions_get()) == 1                       # the position is there at once
    assert mt5.history_deals_get(ticket=ticket) == ()
    assert mt5.history_orders_get(ticket=ticket) == ()
    assert len(mt5.history_deals_get(ticket=ticket)) == 1


def test_the_server_may_rewrite_comments(mt5):
    mt5.comment_rule = lambda c: c[:16]
    sent(mt5, buy(mt5, comment="sc0123456789abcdef012345"))
    assert mt5.positions_get()[0].comment == "sc0123456789abcd"
    assert mt5.history_deals_get(0, 2**40)[0].comment == "sc0123456789abcd"
