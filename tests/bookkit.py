"""A trader's world for the books tests: several bots sharing accounts and symbols over the real
M1 exports, the real engine and operator services over real SQLite files, and a broker that is
either the paper broker (its own state file) or the MetaTrader 5 fake (one terminal per account,
as a terminal holds one account). Faults are injected per account for the next broker built.

`World.check_books()` is the invariant the model-based test asserts after every step."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from scalper import wiring
from scalper.brokers.mt5 import MT5Broker
from scalper.clock import FixedClock
from scalper.config import load_config
from scalper.engine import Engine
from scalper.errors import BrokerUnavailable
from scalper.services import control
from tests.conftest import shared_file
from tests.fakes.mt5_fake import FakeAccount, FakeMT5, btcusd, xauusd
from tests.pgkit import has_ledger, is_url, ledger_of
from tests.pgkit import rows as pg_rows

GOLD, BTC = "XAUUSDm", "BTCUSD"
PASSWORD_ENV = "SCALPER_TEST_MT5_PASSWORD"
PASSWORD = "pw-books"
OFFSET_H = 3
INITIAL = 10_000.0

# Three bots, two accounts: gold-a and gold-b share account 1 and the symbol; btc shares account 2 with gold-a.
BOTS = [
    {"name": "gold-a", "symbol": GOLD, "accounts": [1, 2],
     "strategies": ["trend_pullback", "doji_breakout", "price_action_pinbar", "range_reversion"],
     "risk": {"max_concurrent": 3, "max_per_symbol": 2, "kill_switch": True, "kill_switch_loss": 60.0}},
    {"name": "gold-b", "symbol": GOLD, "accounts": [1],
     "strategies": ["range_reversion", "trend_pullback", "price_action_pinbar"],
     "strategy_params": {"trend_pullback": {"rr": 4.0}},
     "risk": {"max_concurrent": 3, "max_per_symbol": 2, "kill_switch": False}},
    {"name": "btc", "symbol": BTC, "accounts": [2], "strategies": ["trend_pullback", "doji_breakout", "range_reversion"],
     "qty": 0.01, "risk": {"max_concurrent": 3, "max_per_symbol": 1, "kill_switch": False}},
]


class Down:
    """An account that cannot be reached (the terminal is closed, the network is down)."""

    def __init__(self, acc_id: int):
        self.account = str(acc_id)

    def connect(self) -> None:
        raise BrokerUnavailable(f"account {self.account} unreachable (test)")

    def close(self) -> None:
        pass


@dataclass
class Faults:
    retcodes: list[int] = field(default_factory=list)
    lost_answer: bool = False


class World:
    def __init__(self, folder: Path, kind: str, start: float, *, bots=None, history_lag: int = 0,
                 server_offset: bool = True, ledger: str = "ledger.db"):
        """`ledger`: a file in `folder`, or a PostgreSQL URL (tests/pgkit.py)."""
        assert kind in ("paper", "mt5")
        self.folder, self.kind = folder, kind
        self.clock = FixedClock(start)
        self.down: set[int] = set()
        self.faults: dict[int, Faults] = defaultdict(Faults)
        bots = bots or BOTS
        accounts = sorted({a for b in bots for a in b["accounts"]})
        symbols = sorted({b["symbol"] for b in bots})
        self.symbols = set(symbols)
        data = {GOLD: shared_file("XAUUSD_M1.csv"), BTC: shared_file("BTCUSD_M1.csv")}
        if kind == "paper":
            accs = [{"id": a, "broker": "paper", "balance": INITIAL} for a in accounts]
        else:
            os.environ[PASSWORD_ENV] = PASSWORD
            accs = [{"id": a, "broker": "mt5", "login": 700 + a, "server": "Fake-Demo", "password_env": PASSWORD_ENV,
                     **({"server_utc_offset_s": OFFSET_H * 3600} if server_offset else {})} for a in accounts]
        cfg = {"ledger": ledger, "engine": {"log_file": None, "retry_attempts": 3, "retry_budget_s": 2},
               "feed": {"type": "csv", "files": {s: str(data[s]) for s in symbols}, "max_bar_age_s": 180},
               "paper": {"state": "paper.db", "initial_balance": INITIAL},
               "accounts": accs, "bots": bots}
        self.config = folder / "bots.yaml"
        folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.cfg = load_config(self.config)
        self.ledger_path = ledger_of(folder)
        self.feed = wiring.make_feed(self.cfg)
        self.magics = {b.magic_number: b.name for b in self.cfg.bots}
        self.terminals: dict[int, FakeMT5] = {}
        if kind == "mt5":
            for a in accounts:
                t = FakeMT5(self.clock, server_offset_h=OFFSET_H)
                t.add_account(FakeAccount(700 + a, PASSWORD, "Fake-Demo", balance=INITIAL))
                t.add_symbol(xauusd(GOLD, select=True))
                t.add_symbol(btcusd(BTC, select=True))
                t.history_lag = history_lag
                self.terminals[a] = t
            self.tick()
        self._paper_factory = wiring.make_broker_factory(self.cfg, self.feed, self.clock)

    # --- the edges the engine and the operator commands get --------------------------------------
    def factory(self, acc):
        if acc.id in self.down:
            return Down(acc.id)
        f = self.faults.pop(acc.id, None)
        if self.kind == "paper":
            b = self._paper_factory(acc)
            if f is not None:
                b._scripted_codes.extend(f.retcodes)
                b._lose_next_answer = f.lost_answer
            return b
        t = self.terminals[acc.id]
        if f is not None:
            t.script_retcodes(*f.retcodes)
            if f.lost_answer:
                t.lose_next_answer(10012)
        return MT5Broker.from_account(acc, clock=self.clock, module=t)

    def engine(self) -> Engine:
        return Engine(self.cfg, ledger_path=self.ledger_path, clock=self.clock, feed=self.feed,
                      broker_factory=self.factory, sleep=lambda s: None)

    def run_once(self, bots=None):
        self.tick()
        return self.engine().run_once(bots)

    def kill_switch(self, action: str, bot: str | None = None, *, close: bool = True):
        self.tick()
        return control.kill_switch(self.cfg, self.ledger_path, action, bot=bot, all_bots=bot is None, close=close,
                                   clock=self.clock, broker_factory=self.factory)

    def rollback(self, since: str, close: bool):
        self.tick()
        return control.rollback(self.cfg, self.ledger_path, since=since, close_positions=close, clock=self.clock,
                                broker_factory=self.factory)

    def resume(self):
        return control.resume(self.ledger_path)

    def advance(self, seconds: float) -> None:
        self.clock.instant += seconds
        self.tick()

    def tick(self) -> None:
        """MT5: the terminals quote the feed's price now (the server closes what crosses SL/TP)."""
        for t in self.terminals.values():
            for name, s in t.symbols.items():
                if name not in self.symbols:
                    continue
                mid = self.feed.price_at(name, self.clock.now())
                if mid is None:
                    continue
                half = s.spread_points * s.point / 2
                t.set_quote(name, round(mid - half, s.digits), round(mid + half, s.digits))

    # --- the broker's truth ----------------------------------------------------------------------
    def broker_positions(self, acc: int) -> dict[int, tuple]:
        """ticket → (volume, sl, tp, magic) of the account's open positions with our magics."""
        if self.kind == "paper":
            rows = _rows(self.folder / "paper.db", "SELECT * FROM positions WHERE account = ?", (str(acc),))
            return {r["ticket"]: (r["volume"], r["sl"], r["tp"], r["magic"]) for r in rows
                    if r["magic"] in self.magics}
        a = self.terminals[acc].accounts[700 + acc]
        return {p.ticket: (p.volume, p.sl or None, p.tp or None, p.magic) for p in a.positions.values()
                if p.magic in self.magics}

    def broker_balance(self, acc: int) -> float:
        if self.kind == "paper":
            rows = _rows(self.folder / "paper.db", "SELECT balance FROM accounts WHERE account = ?", (str(acc),))
            return rows[0]["balance"] if rows else INITIAL
        return self.terminals[acc].accounts[700 + acc].balance

    def broker_opening_orders(self, acc: int) -> list[tuple[str, int]]:
        """(comment = client order id, ticket) of every filled order that opened a position."""
        if self.kind == "paper":
            return [(r["client_order_id"], r["ticket"]) for r in _rows(
                self.folder / "paper.db", "SELECT * FROM orders WHERE account = ? AND state = 'filled' AND "
                "position_ticket = ticket", (str(acc),)) if r["magic"] in self.magics]
        a = self.terminals[acc].accounts[700 + acc]
        return [(o.comment, o.ticket) for _, o in a.history_orders
                if o.magic in self.magics and o.position_id == o.ticket]

    def broker_close_profit(self, acc: int, ticket: int) -> float:
        """The P&L of a position's closing deals, read straight from the broker (no history lag)."""
        if self.kind == "paper":
            return sum(r["profit"] for r in _rows(self.folder / "paper.db", "SELECT profit FROM deals WHERE "
                                                  "account = ? AND position_id = ? AND entry = 'out'", (str(acc), ticket)))
        t = self.terminals[acc]
        return sum(d.profit + d.commission for _, d in t.accounts[700 + acc].history_deals
                   if d.position_id == ticket and d.entry == t.DEAL_ENTRY_OUT)

    def broker_order_close_profit(self, acc: int, client_order_id: str) -> float:
        """The P&L of the closing deals of the position the broker opened for this client id (0: none)."""
        tickets = {t for cid, t in self.broker_opening_orders(acc) if cid == client_order_id}
        return sum(self.broker_close_profit(acc, t) for t in tickets)

    def ledger(self, sql: str, params=()) -> list[dict]:
        if is_url(self.ledger_path):
            return pg_rows(self.ledger_path, sql, params) if has_ledger(self.ledger_path) else []
        if not self.ledger_path.exists():
            return []
        return _rows(self.ledger_path, sql, params)

    # --- the invariant ---------------------------------------------------------------------------
    def check_books(self, *, synced: set[int] | None = None) -> list[str]:
        """Every way the ledger and the broker disagree (empty: they agree). Open positions and P&L are
        compared for the `synced` accounts only (default: all): after the broker moved behind the
        engine's back, the ledger can only know once a pass has synced the account."""
        problems = []
        accounts = sorted({a for b in self.cfg.bots for a in b.accounts})
        orders = self.ledger("SELECT * FROM orders")
        by_cid = defaultdict(list)
        for o in orders:
            by_cid[(o["account_id"], o["client_order_id"])].append(o)
        for acc in accounts:
            positions = synced is None or acc in synced
            # open positions: same tickets, volume, SL, TP, both ways
            if positions:
                broker = self.broker_positions(acc)
                ledger = {p["ticket"]: (p["volume"], p["sl"], p["tp"], p["magic"]) for p in self.ledger(
                    "SELECT * FROM positions WHERE status = 'open' AND account_id = ?", (acc,))}
                for t in broker.keys() - ledger.keys():
                    problems.append(f"account {acc}: position {t} open at the broker, not in the ledger")
                for t in ledger.keys() - broker.keys():
                    problems.append(f"account {acc}: position {t} open in the ledger, not at the broker")
                for t in broker.keys() & ledger.keys():
                    if not _same(broker[t], ledger[t]):
                        problems.append(f"account {acc}: position {t} broker {broker[t]} ledger {ledger[t]}")
            # every broker opening order maps to exactly one ledger order (or an adopted position)
            adopted = {p["ticket"] for p in self.ledger("SELECT ticket FROM positions WHERE adopted = 1 AND "
                                                       "account_id = ?", (acc,))}
            opens = self.broker_opening_orders(acc)
            for cid, n in Counter(c for c, _ in opens).items():
                if n > 1:
                    problems.append(f"account {acc}: {n} broker orders for client id {cid}")
            for cid, ticket in opens:
                mine = by_cid.get((acc, cid), [])
                if len(mine) != 1 and ticket not in adopted:
                    problems.append(f"account {acc}: broker order {ticket} ({cid}) has {len(mine)} ledger orders")
                elif mine and mine[0]["status"] == "filled" and mine[0]["broker_ticket"] != ticket:
                    problems.append(f"account {acc}: broker order {ticket} is {mine[0]['broker_ticket']} in the ledger")
            # realized P&L: settled profits + what the broker booked for positions still `closing`, and
            # for the positions of opening orders still in doubt (`sent` after a pass: not found yet)
            settled = sum(p["profit"] or 0.0 for p in self.ledger(
                "SELECT profit FROM positions WHERE account_id = ? AND status = 'closed' AND close_state IS NULL",
                (acc,)))
            pending = sum(self.broker_close_profit(acc, p["ticket"]) for p in self.ledger(
                "SELECT ticket FROM positions WHERE account_id = ? AND close_state = 'closing'", (acc,)))
            pending += sum(self.broker_order_close_profit(acc, o["client_order_id"]) for o in orders
                           if o["account_id"] == acc and o["kind"] == "open" and o["status"] == "sent")
            change = self.broker_balance(acc) - INITIAL
            if positions and abs(settled + pending - change) > 0.011 * (1 + len(opens)):
                problems.append(f"account {acc}: ledger realized {settled:.2f} (+{pending:.2f} pending) but the "
                                f"broker's balance moved {change:.2f}")
        # never two opening orders for one (signal, account)
        for (sig, acc), n in Counter((o["signal_id"], o["account_id"]) for o in orders
                                     if o["kind"] == "open" and o["signal_id"] is not None).items():
            if n > 1:
                problems.append(f"signal {sig}: {n} opening orders on account {acc}")
        # risk limits: open positions per (account, symbol) never above what the bots there allow
        limit = defaultdict(int)
        for b in self.cfg.bots:
            for a in b.accounts:
                limit[(a, b.symbol)] = max(limit[(a, b.symbol)], b.risk.max_per_symbol)
        for r in self.ledger("SELECT account_id, symbol, COUNT(*) AS n FROM positions WHERE status = 'open' "
                             "AND adopted = 0 GROUP BY 1, 2"):
            if r["n"] > limit[(r["account_id"], r["symbol"])]:
                problems.append(f"account {r['account_id']} {r['symbol']}: {r['n']} open positions, limit "
                                f"{limit[(r['account_id'], r['symbol'])]}")
        return problems


def _same(a: tuple, b: tuple) -> bool:
    def eq(x, y):
        if x is None or y is None:
            return (x or None) is None and (y or None) is None
        return abs(x - y) < 1e-6
    return all(eq(x, y) for x, y in zip(a, b))


def _rows(db: Path, sql: str, params=()) -> list[dict]:
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        con.close()
