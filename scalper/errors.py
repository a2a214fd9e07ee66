"""Errors that map onto the CLI's exit codes (see docs: cli.md).

Raise these from anywhere; the CLI turns them into a message and an exit code.
"""

from __future__ import annotations

QUOTE_LIMIT = 60  # characters of a bad value shown in a message


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """A bad value as it was written, for a message: quoted, control characters and NUL
    escaped (repr), and cut to `limit` characters so a 2 MB field gives a one-line message."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


class ScalperError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1


class BadInput(ScalperError):
    """Bad config, CLI argument or data file (exit 2). Nothing was written.

    `path` names the file, `where` the field or row, `fix` what to do about it.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, where: str | None = None,
                 line: int | None = None, fix: str | None = None):
        self.message = message
        self.path = path
        self.where = where
        self.line = line
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        loc = ""
        if self.path:
            loc = str(self.path)
            if self.line is not None:
                loc += f":{self.line}"
            loc += ": "
        text = loc
        if self.where:
            text += f"{self.where}: "
        text += self.message
        if self.fix:
            text += f" — fix: {self.fix}"
        return text


class ConfigError(BadInput):
    """bots.yaml is invalid."""


class DataError(BadInput):
    """A bar file (CSV) is invalid."""


class Unavailable(ScalperError):
    """The broker or the data feed cannot be reached (exit 3)."""

    exit_code = 3


class BrokerUnavailable(Unavailable):
    pass


class FeedUnavailable(Unavailable):
    pass


class ServerClockUncertain(FeedUnavailable):
    """The trade server's UTC offset cannot be told for sure (stale quotes, a market break): bars
    would get wrong UTC times. The fix is to configure the account's server_utc_offset_s."""


class LockHeld(ScalperError):
    """Another run-once holds the ledger's run lock (exit 75). Nothing was done."""

    exit_code = 75


class LedgerError(ScalperError):
    """The ledger cannot be written or read (read-only, disk full, corrupt): exit 1."""

    exit_code = 1


class NotALedger(BadInput, LedgerError):
    """The ledger path names something that is not a ledger (another file, an SQLite database
    of something else) or lies under a file (exit 2: fix the path; nothing was written)."""
