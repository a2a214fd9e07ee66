"""`scalper optimize`: parameter search (search.py) over backtest replays (evaluate.py),
walk-forward validation (walkforward.py) and the overfitting verdict (overfit.py).
Needs the `optimize` extra (optuna); nothing here is imported by run-once."""
