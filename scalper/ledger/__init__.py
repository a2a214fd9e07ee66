from scalper.ledger.lock import run_lock
from scalper.ledger.store import Ledger

__all__ = ["Ledger", "run_lock"]
