"""One progress bar for every long command (backtest, scan, replays, optimize).

    from scalper.cli.progress import progress

    with progress(total=len(items), description="scanning") as bar:
        for item in items:
            work(item)
            bar.advance()          # or bar.update(done, total) / bar(done, total)

The bar is drawn with rich on stderr, with the count, elapsed time and ETA, only
when stderr is a terminal: on a pipe, a file or `TERM=dumb` nothing at all is
written, and the handle's methods cost next to nothing. The bar is transient: it
disappears when the block ends, so the command's output follows clean.

`total` may be None (unknown yet); `update(done, total)` sets it later. The
handle is also a `(done, total)` callable, the shape scalper.backtest reports in.
With `lazy=True` the bar appears at the first advance/update, so that checks
failing before the work starts print their error without a bar above it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ProgressBar", "progress", "stderr_is_terminal"]


def stderr_is_terminal() -> bool:
    """True when a person watches stderr: a tty, and not a terminal that cannot redraw."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):   # replaced or closed stream
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


class ProgressBar:
    """The handle `progress()` yields. Disabled (no terminal), every method does nothing."""

    def __init__(self, bar=None, description: str = "", total: float | None = None, lazy: bool = False):
        self._bar, self._task = bar, None
        self.description = description
        self.total = total
        self.completed = 0.0
        if bar is not None and not lazy:
            self._start()

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def _start(self) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, completed=self.completed)

    def advance(self, step: float = 1) -> None:
        self.completed += step
        if self._bar is not None:
            self._start()
            self._bar.update(self._task, advance=step)

    def update(self, completed: float, total: float | None = None, description: str | None = None) -> None:
        self.completed = completed
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._start()
            fields: dict[str, float | str] = {"completed": completed}
            if total is not None:
                fields["total"] = total
            if description is not None:
                fields["description"] = description
            self._bar.update(self._task, **fields)

    def __call__(self, completed: float, total: float | None = None) -> None:
        self.update(completed, total)


@contextmanager
def progress(total: float | None, description: str, *, enabled: bool | None = None,
             lazy: bool = False) -> Iterator[ProgressBar]:
    """A progress bar on stderr for the block. `enabled=None` (the default) shows it
    only when stderr is a terminal; False never shows it."""
    if enabled is None:
        enabled = stderr_is_terminal()
    if not enabled:
        yield ProgressBar(description=description, total=total)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from scalper.cli.common import stderr_console

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    bar = Progress(*columns, console=stderr_console(), transient=True)
    try:
        yield ProgressBar(bar, description, total, lazy=lazy)
    finally:
        bar.stop()   # removes the transient bar; harmless when it never started
