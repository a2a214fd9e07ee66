"""The terminal bridge: trade from anywhere against a MetaTrader 5 terminal on another host.

The MetaTrader5 package runs only on Windows (or Wine) beside a terminal. The
bridge puts a small server there (`scalper terminal-server`, `server.py`) and
gives the mt5 broker and feed a module-like client (`client.py`) in place of
the package, so the adapter's code path is the same with and without it.

What crosses the wire is decided in `protocol.py`, once: the calls the
adapter uses, by name, and plain values only (ints, floats, strings, bools,
epoch seconds; named tuples as their type name and fields; bar arrays as raw
bytes and their dtype). No remote objects, no pickle, no eval.
"""
