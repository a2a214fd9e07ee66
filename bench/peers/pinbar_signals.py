"""The pin-bar rules of docs/strategies.md §1 in plain pandas, for the peer backtesters.

Written from the document, not from scalper's code: what someone reproducing the strategy
in backtesting.py or vectorbt would write. Every bar t is judged on its own window of the
last 100 bars (the EMA seeded at the window's first close), with the document's
comparison tolerance eps = 1e-9 * |close_t|.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LOOKBACK, ATR_PERIOD = 100, 14
P = dict(ema_period=21, slope_bars=3, level_lookback=20, wick_body_ratio=2.0, wick_range_min=0.6,
         nose_range_max=0.25, level_tolerance_atr=0.25, min_range_atr=0.5, sl_buffer_atr=0.1, rr=1.5)


def read(path: str) -> pd.DataFrame:
    df = pd.read_csv(path)
    df.columns = [c.strip().lower() for c in df.columns]
    df.index = pd.to_datetime(df.pop("time"))
    return df.rename(columns=str.capitalize)


def signals(df: pd.DataFrame) -> pd.DataFrame:
    """Per bar: direction (+1 buy, -1 sell, 0 none), SL and TP."""
    o, h, lo, c = (df[k].to_numpy() for k in ("Open", "High", "Low", "Close"))
    eps = 1e-9 * np.abs(c)
    rng, body = h - lo, np.abs(c - o)
    upper, lower = h - np.maximum(o, c), np.minimum(o, c) - lo
    prev = np.concatenate(([np.nan], c[:-1]))
    tr = np.maximum(h, prev) - np.minimum(lo, prev)
    atr = pd.Series(tr).rolling(ATR_PERIOD).mean().to_numpy()
    a = 2.0 / (P["ema_period"] + 1)
    full = pd.Series(c).ewm(span=P["ema_period"], adjust=False).mean().to_numpy()
    start = np.arange(len(c)) - (LOOKBACK - 1)            # the window's first bar

    def window_ema(back: int) -> np.ndarray:
        out = np.full(len(c), np.nan)
        t = np.arange(LOOKBACK - 1, len(c))
        s = start[t]
        out[t] = full[t - back] + (1 - a) ** (LOOKBACK - 1 - back) * (c[s] - full[s])
        return out

    e_now, e_then = window_ema(0), window_ema(P["slope_bars"])
    support = pd.Series(lo).shift(1).rolling(P["level_lookback"]).min().to_numpy()
    resistance = pd.Series(h).shift(1).rolling(P["level_lookback"]).max().to_numpy()
    near = P["level_tolerance_atr"] * atr
    with np.errstate(invalid="ignore", divide="ignore"):
        big = (rng > eps) & (rng >= P["min_range_atr"] * atr - eps)

        def rejects(wick, nose):
            return ((wick >= P["wick_body_ratio"] * body - eps) & (wick >= P["wick_range_min"] * rng - eps)
                    & (nose <= P["nose_range_max"] * rng + eps))

        buy = big & rejects(lower, upper) & (lo <= support + near + eps) & (c > support + eps) & (e_now > e_then + eps)
        sell = (big & rejects(upper, lower) & (h >= resistance - near - eps) & (c < resistance - eps)
                & (e_now < e_then - eps)) & ~buy
    buy[:LOOKBACK - 1] = sell[:LOOKBACK - 1] = False
    sl = np.where(buy, lo - P["sl_buffer_atr"] * atr, h + P["sl_buffer_atr"] * atr)
    risk = np.where(buy, c - sl, sl - c)
    ok = (buy | sell) & (risk > eps)
    tp = np.where(buy, c + P["rr"] * risk, c - P["rr"] * risk)
    return pd.DataFrame({"direction": np.where(ok, np.where(buy, 1, -1), 0), "sl": sl, "tp": tp}, index=df.index)
