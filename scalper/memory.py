"""Giving freed memory back to the operating system after a large parse or scan.

glibc keeps the memory of freed small objects and of arrays below its (adaptive) mmap
threshold in the process heap; after parsing a year of bars that is ~25 MB the process
still holds but no longer uses. `malloc_trim` returns it. Elsewhere this does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

_trim: Callable[[int], object] | None = None
_looked = False


def give_back() -> None:
    global _trim, _looked
    if not _looked:
        _looked = True
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _trim = ctypes.CDLL("libc.so.6").malloc_trim
            except (OSError, AttributeError):
                pass
    if _trim is not None:
        _trim(0)
