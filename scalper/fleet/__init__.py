"""Fleet mode: passes per terminal host, placed and timed by Celery, recorded in one shared ledger.

- hosts.py    which accounts and bots a host serves (pure; `run-once --host` uses it without Celery)
- app.py      the Celery app, its two tasks (a host's pass, a host's operator requests), the beat schedule
- requests.py operator requests (kill-switch, rollback) that a host serves and confirms

Celery and the broker client are imported only by app.py: `run-once` never pays for them.
"""
