"""Delivery through apprise: one message per target, all targets at once, within a deadline.

apprise is imported here only, and only when something is to be sent. Its own log
records (which may quote a URL) never reach a handler: they are captured per thread
and reduced to a short cause ("HTTP 500", "timed out", …) that holds no part of the URL.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
from dataclasses import dataclass

_HTTP = re.compile(r"(?:HTTP Error|error=|status code:?)\s*(\d{3})", re.IGNORECASE)


@dataclass
class Job:
    target: str
    url: str
    title: str
    body: str
    timeout_s: float


_job_messages: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("notify_job", default=None)


class _Capture(logging.Handler):
    """apprise's log records, per delivery, never written anywhere (only read for the cause). apprise may log from
    its own worker thread; it carries the caller's context there, so a context variable (not the
    thread) tells which delivery a record belongs to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)

    def emit(self, record: logging.LogRecord) -> None:
        sink = _job_messages.get()
        if sink is not None:
            try:
                sink.append(record.getMessage())
            except Exception:
                sink.append(str(record.msg))


_capture = _Capture()
_setup = threading.Lock()


def _quiet_apprise() -> None:
    with _setup:
        log = logging.getLogger("apprise")
        if _capture not in log.handlers:
            log.addHandler(_capture)
            log.propagate = False        # never to the root logger, a file or stderr
            log.setLevel(logging.DEBUG)  # the cause of a failure (a read timeout) is logged at debug level
            http = logging.getLogger("urllib3")   # logs request paths, which carry tokens
            http.addHandler(logging.NullHandler())
            http.propagate = False


def cause(messages: list[str]) -> str:
    """What went wrong, in words that cannot carry a token."""
    text = " ".join(messages)
    low = text.lower()
    m = _HTTP.search(text)
    if m:
        return f"the service answered HTTP {m[1]}"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "resolve" in low or "getaddrinfo" in low:
        return "host name not found"
    if "ssl" in low or "certificate" in low:
        return "TLS/certificate problem"
    if "connection" in low:
        return "connection failed"
    return "delivery failed"


def _send(job: Job) -> tuple[bool, str]:
    import apprise

    _quiet_apprise()
    messages: list[str] = []
    _job_messages.set(messages)
    try:
        plugin = apprise.Apprise.instantiate(job.url, suppress_exceptions=True)
        if plugin is None:
            return False, "the URL is not valid for its service (check its form in apprise's documentation)"
        plugin.socket_connect_timeout = job.timeout_s
        plugin.socket_read_timeout = job.timeout_s
        a = apprise.Apprise()
        a.add(plugin)
        ok = a.notify(body=job.body, title=job.title, body_format=apprise.NotifyFormat.TEXT)
    except Exception as exc:   # a plugin bug must not escape; its text may quote the URL: name the type only
        return False, f"delivery failed ({type(exc).__name__})"
    return (True, "") if ok else (False, cause(messages))


def send_all(jobs: list[Job], *, deadline_s: float | None = None) -> dict[str, tuple[bool, str]]:
    """Send every job in its own thread; wait until each is done or the deadline passes
    (a target that has not answered by then counts as failed: `timed out`)."""
    if not jobs:
        return {}
    if deadline_s is None:
        deadline_s = max(j.timeout_s for j in jobs) * 2 + 1.0   # connect + read, and a margin
    results: dict[str, tuple[bool, str]] = {}

    def work(job: Job) -> None:
        results[job.target] = contextvars.Context().run(_send, job)   # a fresh context per delivery

    threads = [threading.Thread(target=work, args=(j,), name=f"notify-{j.target}", daemon=True) for j in jobs]
    end = time.monotonic() + deadline_s
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return {j.target: results.get(j.target, (False, "timed out")) for j in jobs}
