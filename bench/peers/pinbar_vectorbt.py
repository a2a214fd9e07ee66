"""The pin bar in vectorbt: no costs, no trailing, one position at a time; entries at the next
bar's open, SL/TP as fractions of that price, checked on each later bar's high and low.
usage: python pinbar_vectorbt.py BARS.csv  -> prints {"trades": N, ...} as JSON"""

import json
import sys
import warnings

import numpy as np
import vectorbt as vbt

from pinbar_signals import read, signals

warnings.filterwarnings("ignore")


def main(path: str) -> None:
    df = read(path)
    s = signals(df)
    d = s["direction"].shift(1, fill_value=0).to_numpy()        # filled at the next bar's open
    entry = df["Open"].to_numpy()
    sl, tp = s["sl"].shift(1).to_numpy(), s["tp"].shift(1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        sl_stop = np.where(d != 0, np.abs(entry - sl) / entry, np.nan)
        tp_stop = np.where(d != 0, np.abs(tp - entry) / entry, np.nan)
    pf = vbt.Portfolio.from_signals(
        df["Close"], entries=d > 0, short_entries=d < 0, price=df["Open"], open=df["Open"], high=df["High"],
        low=df["Low"], sl_stop=sl_stop, tp_stop=tp_stop, size=1, init_cash=10_000_000, fees=0, freq="1min")
    print(json.dumps({"trades": int(pf.trades.count()), "return_pct": float(pf.total_return() * 100)}))


if __name__ == "__main__":
    main(sys.argv[1])
