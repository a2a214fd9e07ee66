"""The process's memory: kept for reuse during a long computation, given back after it.

glibc serves a large block (a numpy array of a scan over 370,000 bars: 256 KB to 3 MB) with its
own mmap and unmaps it when it is freed, so the next array of that size faults in fresh zeroed
pages: a backtest did ~80,000 page faults, ~0.12 s of its ~0.7 s. `reuse_freed_memory` has such
blocks served from the heap and their memory kept there for the next ones (glibc's mallopt);
`give_back` (malloc_trim) returns what is free once a phase is over, as after parsing a year of
bars (~25 MB the process still holds but no longer uses). Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import sys
from typing import Any

_libc: Any = None
_looked = False

# glibc's mallopt parameters (malloc.h) and the values a scan or a replay wants
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
HEAP_BLOCKS_UP_TO = 64 << 20    # blocks up to this size come from the heap (not one mmap each)…
KEEP_FREE_UP_TO = 256 << 20     # …and this much free memory at its top stays for reuse (give_back returns it)
GROW_BY = 64 << 20              # the heap grows by this much more than asked (fewer, larger steps)


def _glibc() -> Any:
    global _libc, _looked
    if not _looked:
        _looked = True
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                libc = ctypes.CDLL("libc.so.6")
                if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                    _libc = libc
            except OSError:
                pass
    return _libc


def reuse_freed_memory() -> None:
    """For a long computation over arrays (scan, backtest, optimize): large blocks from the heap,
    freed memory kept for the next arrays instead of unmapped and faulted in again."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, HEAP_BLOCKS_UP_TO)
        libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREE_UP_TO)
        libc.mallopt(M_TOP_PAD, GROW_BY)


def give_back() -> None:
    """Return the memory freed so far to the operating system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
