"""Alert texts a trader reads at a glance on a phone. Plain data in, one line (or a few) out."""

from __future__ import annotations

from collections import defaultdict

CLOSE_REASONS = {
    "sl": "stop loss hit", "tp": "take profit hit", "expert": "closed by scalper", "client": "closed by hand",
    "mobile": "closed from the mobile app", "web": "closed from the web terminal", "so": "stop out (margin)",
    "rollover": "rollover", "vmargin": "variation margin", "split": "split",
    "missing_at_broker": "gone at the broker, no closing deal found",
}
KILL_SOURCES = {"unrealized_loss": "unrealized loss limit", "daily_loss": "daily loss limit",
                "manual": "by hand"}
RUN_STATUSES = {"error": "failed", "unavailable": "could not reach a broker or the feed",
                "interrupted": "was killed or crashed before finishing"}
ORDER_STATES = {"rejected": "rejected by the broker", "error": "broker error", "failed": "failed"}


def _num(x, digits: int | None = None) -> str:
    if x is None:
        return "—"
    if digits is not None:
        return f"{x:.{digits}f}"
    return f"{x:g}" if abs(x) < 1e6 else f"{x:,.2f}"


def _money(x, currency: str) -> str:
    return "—" if x is None else f"{x:+,.2f} {currency}"


def fill(p: dict, account: str) -> str:
    what = "ADOPTED" if p.get("adopted") else "FILLED"
    line = (f"{what} {p.get('bot') or '(no bot)'} · {p['symbol']} {p['side'].upper()} {_num(p['volume'])} @ "
            f"{_num(p['price_open'])} · SL {_num(p.get('sl'))} TP {_num(p.get('tp'))}")
    if p.get("strategy"):
        line += f" · {p['strategy']}"
    return line + f" · {account}"


def close(p: dict, account: str, currency: str) -> str:
    reason = CLOSE_REASONS.get(p.get("close_reason") or "", p.get("close_reason") or "closed")
    return (f"CLOSED {p.get('bot') or '(no bot)'} · {p['symbol']} {p['side'].upper()} {_num(p['volume'])} "
            f"{_num(p['price_open'])} → {_num(p.get('close_price'))} ({reason}) · P&L "
            f"{_money(p.get('profit'), currency)} · {account}")


def kill_switch(k: dict) -> str:
    src = KILL_SOURCES.get(k.get("source") or "", k.get("source") or "")
    why = k.get("reason") or k.get("message") or ""
    return (f"KILL-SWITCH {k['bot']} engaged ({src}): {why}; no new entries until "
            f"`scalper kill-switch release --bot {k['bot']}`")


def run_errors(r: dict, accounts: dict[int, str]) -> list[str]:
    """The problems of one finished run: its status, its errors, its refused orders."""
    s = r.get("summary") or {}
    out = []
    status = RUN_STATUSES.get(r["status"])
    errors = list(s.get("errors") or [])
    if status:
        detail = f": {errors.pop(0)}" if errors else ""
        out.append(f"ERROR run {r['id'][:8]} {status}{detail}")
    out += [f"ERROR run {r['id'][:8]}: {e}" for e in errors]
    for p in s.get("order_problems") or []:
        acc = accounts.get(p.get("account_id"), f"account {p.get('account_id')}")
        out.append(f"ORDER {ORDER_STATES.get(p.get('status'), p.get('status'))} · {p.get('bot')} · {acc} · "
                   f"{p.get('message')}")
    return out


def daily_summary(day: str, activity: dict, accounts: dict[int, str], currency_of) -> str:
    by_bot: dict[str, list[float]] = defaultdict(list)
    cur: dict[str, str] = {}
    for r in activity["closed"]:
        by_bot[r["bot"] or "(adopted)"].append(r["profit"] or 0.0)
        cur[r["bot"] or "(adopted)"] = currency_of(r["account_id"])
    lines = [f"DAILY SUMMARY {day} (UTC)"]
    if not by_bot:
        lines.append("no trades closed today")
    for bot in sorted(by_bot):
        pnl = by_bot[bot]
        wins = sum(1 for x in pnl if x > 0)
        lines.append(f"{bot}: {len(pnl)} trade(s), win rate {100 * wins / len(pnl):.0f}%, P&L "
                     f"{_money(sum(pnl), cur[bot])}")
    lines.append(f"open positions: {len(activity['open'])}")
    for p in activity["open"][:10]:
        lines.append(f"  {p['bot'] or '(adopted)'} {p['symbol']} {p['side'].upper()} {_num(p['volume'])} @ "
                     f"{_num(p['price_open'])}, floating {_money(p['unrealized'], currency_of(p['account_id']))} · "
                     f"{accounts.get(p['account_id'], p['account_id'])}")
    if len(activity["open"]) > 10:
        lines.append(f"  … and {len(activity['open']) - 10} more")
    kills = activity["kill_switches"]
    lines.append("kill-switches: " + (", ".join(f"{k['bot']} ENGAGED ({KILL_SOURCES.get(k['source'], k['source'])})"
                                                for k in kills) if kills else "none engaged"))
    return "\n".join(lines)


def stale(last: dict | None, age_s: float | None, max_age_s: float) -> str:
    from scalper.clock import human_age

    if last is None:
        return "STALLED: no successful run-once pass is recorded in the ledger; is the loop running?"
    assert age_s is not None   # measured whenever there is a last pass
    return (f"STALLED: the last successful pass finished {human_age(age_s)} ago at {last['finished_at']} "
            f"(allowed: {human_age(max_age_s)}); check the loop, cron or service")


def recovered(last: dict) -> str:
    return f"RECOVERED: the engine runs again (pass at {last['finished_at']})"
