"""The pin bar in backtesting.py 0.6.6: no costs, no trailing, one position at a time.
usage: python pinbar_backtesting.py BARS.csv  -> prints {"trades": N, ...} as JSON"""

import json
import sys
import warnings

from backtesting import Backtest, Strategy

from pinbar_signals import read, signals

warnings.filterwarnings("ignore")


class PinBar(Strategy):
    def init(self):
        s = self.data.df.attrs["signals"]
        self.direction, self.sl, self.tp = (self.I(lambda x=s[k].to_numpy(): x, name=k, plot=False)
                                            for k in ("direction", "sl", "tp"))

    def next(self):
        if self.position:
            return
        d = self.direction[-1]
        if d > 0:
            self.buy(size=1, sl=self.sl[-1], tp=self.tp[-1])
        elif d < 0:
            self.sell(size=1, sl=self.sl[-1], tp=self.tp[-1])


def main(path: str) -> None:
    df = read(path)
    df.attrs["signals"] = signals(df)
    stats = Backtest(df, PinBar, cash=10_000_000, commission=0, exclusive_orders=False).run()
    print(json.dumps({"trades": int(stats["# Trades"]), "return_pct": float(stats["Return [%]"])}))


if __name__ == "__main__":
    main(sys.argv[1])
