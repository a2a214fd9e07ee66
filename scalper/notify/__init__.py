"""Alerts: what the ledger recorded, told where the trader is (apprise URLs from the environment).

Light on purpose: run-once imports this package only when `notify:` targets exist, and
apprise itself only when there is something to deliver (scalper.notify.deliver).
"""

from __future__ import annotations

INSTALL_HINT = "install apprise: pip install apprise (or, in the scalper checkout, pip install '.[notify]')"
