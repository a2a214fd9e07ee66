"""What crosses the bridge, and how: the allowed calls and the plain-value encoding.

Values on the wire are only what rpyc's brine sends by value (None, bool, int,
float, str, bytes and tuples of them): anything else would travel as a remote
reference, which neither end accepts. Every tuple on the wire is tagged:

    ("tuple", items)                       a tuple (getters answer tuples, never lists)
    ("record", type_name, fields, values)  a named tuple, rebuilt with `_asdict()` on the client
    ("array", descr, raw_bytes)            a numpy structured array (copy_rates_*)
    ("dict", ((key, value), ...))          a request dict (order_send), client to server only
"""

from __future__ import annotations

import collections
import functools
import hmac
import socket
from datetime import datetime

import numpy as np

# The MetaTrader5 calls the mt5 broker and feed make (plus `version`, the bridge's health
# probe). Anything else is refused by the server and unknown to the client.
ALLOWED_CALLS = frozenset({
    "initialize", "login", "shutdown", "version", "terminal_info", "account_info",
    "symbols_get", "symbol_info", "symbol_info_tick", "symbol_select",
    "copy_rates_from_pos", "copy_rates_range",
    "positions_get", "orders_get", "history_orders_get", "history_deals_get",
    "order_send",
})
# Calls that change something at the broker: never repeated after a lost answer.
UNSAFE_TO_REPEAT = frozenset({"order_send"})
# The package answers False (not None) when these fail.
BOOLEAN_CALLS = frozenset({"initialize", "login", "symbol_select"})

DEFAULT_PORT = 18812
DEFAULT_TOKEN_ENV = "SCALPER_BRIDGE_TOKEN"
MIN_TOKEN_CHARS = 16
HELLO = b"SCALPER-BRIDGE/1 "      # + token + b"\n"; the server answers OK\n or NO\n, then closes on NO
MAX_HELLO_BYTES = 1024
MAX_TOKEN_BYTES = MAX_HELLO_BYTES - len(HELLO) - 2   # the server refuses a hello line of MAX_HELLO_BYTES


def token_problem(token: str) -> str | None:
    """What makes `token` unusable as the bridge's shared secret, or None. The one rule for both ends:
    the server refuses to start with such a token, the client to connect with one (the server
    could never accept it)."""
    if not token:
        return "not set"
    if len(token) < MIN_TOKEN_CHARS:
        return f"too short ({len(token)} characters; at least {MIN_TOKEN_CHARS})"
    if "\n" in token:
        return "holding a line break (the token travels as one line)"
    if len(token.encode()) > MAX_TOKEN_BYTES:
        return f"too long ({len(token.encode()):,} bytes; at most {MAX_TOKEN_BYTES:,})"
    return None

# last_error() codes the bridge answers with (the package's own IPC codes, docs §9), so the
# adapter treats a bridge failure exactly like a terminal link failure.
LINK_DOWN = -10004          # cannot reach the server / not initialized: No IPC connection
ANSWER_LOST = -10002        # the connection dropped before the answer: IPC recv failed
TIMED_OUT = -10005          # no answer in time: IPC timeout
INVALID_ARGS = -2
UNSUPPORTED = -7


class RefusedValue(ValueError):
    """A value that may not cross the bridge (as the package would refuse it: error -2)."""


PLAIN = (type(None), bool, int, float, str)


def nodelay(sock: socket.socket) -> None:
    """Small request/answer pairs stall ~40 ms on Nagle + delayed ACK without this."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def token_ok(offered: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(offered, expected)


# --- client → server: arguments ------------------------------------------------------------------
def encode_argument(value, key: str | None = None):
    """One call argument as the package would take it: a datetime becomes epoch seconds (read by its
    own .timestamp(), as the package does), a float subclass (numpy.float64) a float; numpy integers,
    lists and other objects are refused, as the package refuses them."""
    kind = type(value)
    if kind in PLAIN:
        return value
    if isinstance(value, (int, float)):          # IntEnum, numpy.float64 (never a numpy int)
        return float(value) if isinstance(value, float) else int(value)
    if isinstance(value, datetime):
        return int(value.timestamp())
    if kind is dict:
        return ("dict", tuple((k, _request_value(k, v)) for k, v in value.items() if type(k) is str))
    raise RefusedValue(f'Invalid "{key}" argument' if key else "Invalid arguments")


def _request_value(key: str, value):
    if type(value) in PLAIN:
        return value
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) else int(value)
    raise RefusedValue(f'Invalid "{key}" argument')


def decode_arguments(args, kwargs) -> tuple[tuple, dict]:
    """Server side: only plain values and tagged request dicts are accepted (a remote reference, a
    list, anything else is refused before the terminal sees it)."""
    if type(args) is not tuple or type(kwargs) is not tuple:
        raise RefusedValue("Invalid arguments")
    out_args = tuple(_decode_argument(a) for a in args)
    out_kwargs = {}
    for pair in kwargs:
        if type(pair) is not tuple or len(pair) != 2 or type(pair[0]) is not str:
            raise RefusedValue("Invalid arguments")
        out_kwargs[pair[0]] = _decode_argument(pair[1], pair[0])
    return out_args, out_kwargs


def _decode_argument(value, key: str | None = None):
    if type(value) in PLAIN:
        return value
    if type(value) is tuple and len(value) == 2 and value[0] == "dict" and type(value[1]) is tuple:
        request = {}
        for pair in value[1]:
            if (type(pair) is not tuple or len(pair) != 2 or type(pair[0]) is not str
                    or type(pair[1]) not in PLAIN):
                raise RefusedValue("Invalid arguments")
            request[pair[0]] = pair[1]
        return request
    raise RefusedValue(f'Invalid "{key}" argument' if key else "Invalid arguments")


# --- server → client: results ----------------------------------------------------------------------
def encode_result(value):
    """A call's value as plain tagged tuples."""
    kind = type(value)
    if kind in PLAIN or kind is bytes:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        descr = tuple((str(name), str(fmt)) for name, fmt in value.dtype.descr)
        return ("array", descr, np.ascontiguousarray(value).tobytes())
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return ("record", kind.__name__, tuple(value._fields), tuple(encode_result(v) for v in value))
    if isinstance(value, (tuple, list)):
        return ("tuple", tuple(encode_result(v) for v in value))
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    raise TypeError(f"a {kind.__name__} cannot cross the bridge")


def decode_result(value):
    """Client side: named tuples with `_asdict()`, structured arrays of the sent dtype, tuples."""
    if type(value) in PLAIN or type(value) is bytes:
        return value
    if type(value) is tuple and value:
        tag = value[0]
        if tag == "tuple" and len(value) == 2 and type(value[1]) is tuple:
            return tuple(decode_result(v) for v in value[1])
        if tag == "record" and len(value) == 4 and type(value[2]) is tuple and type(value[3]) is tuple:
            return _record_type(value[1], value[2])(*(decode_result(v) for v in value[3]))
        if tag == "array" and len(value) == 3 and type(value[2]) is bytes:
            dtype = np.dtype([(str(n), str(f)) for n, f in value[1]])
            if dtype.hasobject:
                raise TypeError("an object array cannot cross the bridge")
            return np.frombuffer(value[2], dtype=dtype).copy()
    raise TypeError(f"unexpected value from the terminal server: {type(value).__name__}")


@functools.cache
def _record_type(name: str, fields: tuple):
    """One class per (name, fields), so results of one call compare and pickle alike."""
    if type(name) is not str or not all(type(f) is str for f in fields):
        raise TypeError("bad named tuple from the terminal server")
    return collections.namedtuple(name, fields)


# The package's constants (docs §11; values of MetaTrader5/__init__.py). The client serves them
# without a round trip, as module attributes.
CONSTANTS = {
    "TIMEFRAME_M1": 1, "TIMEFRAME_M5": 5, "TIMEFRAME_M15": 15, "TIMEFRAME_M30": 30, "TIMEFRAME_H1": 16385,
    "TIMEFRAME_H4": 16388, "TIMEFRAME_D1": 16408, "TIMEFRAME_W1": 32769, "TIMEFRAME_MN1": 49153,
    "TRADE_ACTION_DEAL": 1, "TRADE_ACTION_PENDING": 5, "TRADE_ACTION_SLTP": 6, "TRADE_ACTION_MODIFY": 7,
    "TRADE_ACTION_REMOVE": 8, "TRADE_ACTION_CLOSE_BY": 10,
    "ORDER_TYPE_BUY": 0, "ORDER_TYPE_SELL": 1, "ORDER_TYPE_BUY_LIMIT": 2, "ORDER_TYPE_SELL_LIMIT": 3,
    "ORDER_TYPE_BUY_STOP": 4, "ORDER_TYPE_SELL_STOP": 5, "ORDER_TYPE_BUY_STOP_LIMIT": 6,
    "ORDER_TYPE_SELL_STOP_LIMIT": 7, "ORDER_TYPE_CLOSE_BY": 8,
    "ORDER_FILLING_FOK": 0, "ORDER_FILLING_IOC": 1, "ORDER_FILLING_RETURN": 2, "ORDER_FILLING_BOC": 3,
    "ORDER_TIME_GTC": 0, "ORDER_TIME_DAY": 1, "ORDER_TIME_SPECIFIED": 2, "ORDER_TIME_SPECIFIED_DAY": 3,
    "ORDER_STATE_STARTED": 0, "ORDER_STATE_PLACED": 1, "ORDER_STATE_CANCELED": 2, "ORDER_STATE_PARTIAL": 3,
    "ORDER_STATE_FILLED": 4, "ORDER_STATE_REJECTED": 5, "ORDER_STATE_EXPIRED": 6,
    "POSITION_TYPE_BUY": 0, "POSITION_TYPE_SELL": 1,
    "DEAL_TYPE_BUY": 0, "DEAL_TYPE_SELL": 1, "DEAL_TYPE_BALANCE": 2,
    "DEAL_ENTRY_IN": 0, "DEAL_ENTRY_OUT": 1, "DEAL_ENTRY_INOUT": 2, "DEAL_ENTRY_OUT_BY": 3,
    "DEAL_REASON_CLIENT": 0, "DEAL_REASON_MOBILE": 1, "DEAL_REASON_WEB": 2, "DEAL_REASON_EXPERT": 3,
    "DEAL_REASON_SL": 4, "DEAL_REASON_TP": 5, "DEAL_REASON_SO": 6,
    "SYMBOL_TRADE_MODE_DISABLED": 0, "SYMBOL_TRADE_MODE_LONGONLY": 1, "SYMBOL_TRADE_MODE_SHORTONLY": 2,
    "SYMBOL_TRADE_MODE_CLOSEONLY": 3, "SYMBOL_TRADE_MODE_FULL": 4,
    "SYMBOL_TRADE_EXECUTION_REQUEST": 0, "SYMBOL_TRADE_EXECUTION_INSTANT": 1,
    "SYMBOL_TRADE_EXECUTION_MARKET": 2, "SYMBOL_TRADE_EXECUTION_EXCHANGE": 3,
    "ACCOUNT_TRADE_MODE_DEMO": 0, "ACCOUNT_TRADE_MODE_CONTEST": 1, "ACCOUNT_TRADE_MODE_REAL": 2,
    "ACCOUNT_MARGIN_MODE_RETAIL_NETTING": 0, "ACCOUNT_MARGIN_MODE_EXCHANGE": 1,
    "ACCOUNT_MARGIN_MODE_RETAIL_HEDGING": 2, "COPY_TICKS_ALL": -1,
    "TRADE_RETCODE_REQUOTE": 10004, "TRADE_RETCODE_DONE": 10009, "TRADE_RETCODE_TIMEOUT": 10012,
    "TRADE_RETCODE_CONNECTION": 10031,
    "RES_S_OK": 1, "RES_E_FAIL": -1, "RES_E_INVALID_PARAMS": -2, "RES_E_NOT_FOUND": -4,
    "RES_E_AUTH_FAILED": -6, "RES_E_UNSUPPORTED": -7, "RES_E_AUTO_TRADING_DISABLED": -8,
    "RES_E_INTERNAL_FAIL_SEND": -10001, "RES_E_INTERNAL_FAIL_RECEIVE": -10002,
    "RES_E_INTERNAL_FAIL_INIT": -10003, "RES_E_INTERNAL_FAIL_CONNECT": -10004,
    "RES_E_INTERNAL_FAIL_TIMEOUT": -10005,
}
