"""Logging for the CLI: a rotating file at `engine.log_file`, owner-only, with secrets masked.

    from scalper import logsetup
    logsetup.configure(cfg)            # once the config is loaded; idempotent

What is masked, in every record written (message, arguments, exception text):
- the value of every environment variable an account names with `password_env`
  (read when `configure` runs), and any value registered with `add_secret`
  (e.g. a password fetched from the OS keyring);
- whatever follows a key that looks like a secret: `password=…`, `"token": "…"`,
  `secret: …`, `api_key=…`.

The file and its rotated copies are created 0600: a log names accounts and
positions. A log that cannot be opened (read-only folder) never stops a run:
one warning on stderr, and the run goes on without a file log.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MASK = "***"
MIN_SECRET_LEN = 4            # shorter values would mask ordinary text; MT5 passwords are longer
MAX_BYTES = 5_000_000
BACKUP_COUNT = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"

_KEY_VALUE = re.compile(
    r"""(?P<key>\b[\w.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key)[\w-]*)"""
    r"""(?P<sep>["']?\s*[:=]\s*)(?P<q>["']?)(?P<value>[^\s"',;&}\]]+)""",
    re.IGNORECASE)

_lock = threading.Lock()
_secrets: set[str] = set()
_MARK = "_scalper_logsetup"


def add_secret(value: str | None) -> None:
    """Mask this value wherever it would be logged (from now on)."""
    if value and len(value) >= MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)


def secrets_from_config(cfg: Any, environ: dict | None = None) -> list[str]:
    """The values of the environment variables the config's accounts name with password_env (and
    terminal.token_env: the terminal bridge's token)."""
    env = os.environ if environ is None else environ
    out = []
    for acc in getattr(cfg, "accounts", ()) or ():
        for name in (getattr(acc, "password_env", None), getattr(getattr(acc, "terminal", None), "token_env", None)):
            if name and env.get(name):
                out.append(env[name])
    return out


def redact(text: str) -> str:
    """`text` with every known secret and every `secret-looking-key=value` masked."""
    if not text:
        return text
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for v in values:
        if v in text:
            text = text.replace(v, MASK)
    return _KEY_VALUE.sub(_mask_value, text)


def _mask_value(m: re.Match) -> str:
    if m["key"].lower().endswith("_env"):   # password_env names a variable; the name is no secret
        return m[0]
    return f"{m['key']}{m['sep']}{m['q']}{MASK}"


class RedactingFilter(logging.Filter):
    """Formats the record's message itself, masked, so no argument reaches a handler raw."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class OwnerOnlyRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler whose files (the live one and each new one after a rollover) are 0600."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, self.mode if "a" in self.mode else "a", encoding=self.encoding,
                         errors=self.errors)


def _existing_parent(path: Path) -> Path:
    """The nearest folder (or whatever is in its place) of `path` that exists."""
    p = path.parent
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def configure(cfg: Any, *, level: int = logging.INFO, extra_secrets: Iterable[str] = (),
              stderr=None) -> Path | None:
    """Send the `scalper` loggers to cfg.engine.log_file (relative to the bots file).

    Returns the log path, or None when the config sets no log file or it cannot be
    opened. Calling it again (the loop re-reads the config) replaces the handler."""
    for s in [*secrets_from_config(cfg), *extra_secrets]:
        add_secret(s)
    logger = logging.getLogger("scalper")
    for h in list(logger.handlers):
        if getattr(h, _MARK, False):
            logger.removeHandler(h)
            h.close()
    log_file = getattr(getattr(cfg, "engine", None), "log_file", None)
    if not log_file:
        return None
    path = Path(cfg.resolve_path(log_file)) if hasattr(cfg, "resolve_path") else Path(log_file)
    return attach(path, level=level, stderr=stderr)


def current_path() -> Path | None:
    """The file the `scalper` logger writes to, if `configure`/`attach` set one."""
    for h in logging.getLogger("scalper").handlers:
        if getattr(h, _MARK, False) and isinstance(h, logging.FileHandler):
            return Path(h.baseFilename)
    return None


def fallback_path() -> Path:
    """Where a failure is logged when no config names a log file: the user's cache folder."""
    from scalper.userdirs import cache_dir

    return cache_dir() / "scalper.log"


def attach(path: Path, *, level: int = logging.INFO, stderr=None) -> Path | None:
    """Send the `scalper` loggers to `path` (owner-only, rotated, secrets masked)."""
    logger = logging.getLogger("scalper")
    for h in list(logger.handlers):
        if getattr(h, _MARK, False):
            logger.removeHandler(h)
            h.close()
    try:
        # opened at the first record: a run refused as bad input leaves no file behind
        handler = OwnerOnlyRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT,
                                               encoding="utf-8", delay=True)
        folder = _existing_parent(path)
        if not folder.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(folder))
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied", str(folder))
    except OSError as exc:
        print(f"warning: log file {path} cannot be opened ({exc.strerror or exc}); logging to it is off",
              file=stderr or sys.stderr)
        return None
    setattr(handler, _MARK, True)
    handler.addFilter(RedactingFilter())
    fmt = logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
    fmt.converter = time.gmtime   # UTC, like the ledger
    handler.setFormatter(fmt)
    handler.setLevel(level)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return path


def shutdown() -> None:
    """Detach and close the handler `configure` installed (tests; the CLI needs not call it)."""
    logger = logging.getLogger("scalper")
    for h in list(logger.handlers):
        if getattr(h, _MARK, False):
            logger.removeHandler(h)
            h.close()
