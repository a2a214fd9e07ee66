from scalper.ledger.lock import run_lock
from scalper.ledger.store import Ledger, ledger_exists

__all__ = ["Ledger", "ledger_exists", "run_lock"]
