"""The process's memory during a long computation (scalper.memory): with `reuse_freed_memory`,
arrays freed and allocated again reuse the same memory instead of faulting in fresh pages each
time (glibc unmaps a large block on free); `give_back` still returns what is free."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

_CHILD = """
import json, resource, sys
import numpy as np
from scalper import memory
if sys.argv[1] == "reuse":
    memory.reuse_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(1 << 19).sum()   # numpy's own first-use costs, outside the count
before = faults()
for _ in range(50):   # a scan's pattern: arrays of a few MB made, used and dropped, again and again
    a = np.ones(1 << 19)   # 4 MB
    b = a * 2.0
    del a, b
during = faults() - before
memory.give_back()
print(json.dumps({"faults": during}))
"""


def _faults(mode: str) -> int:
    proc = subprocess.run([sys.executable, "-c", _CHILD, mode], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(proc.stdout)["faults"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only: elsewhere both do nothing")
def test_freed_arrays_are_reused_instead_of_faulted_in_again():
    plain, reused = _faults("plain"), _faults("reuse")
    # 50 rounds of two 4 MB arrays (1,024 pages each): tens of thousands of fresh pages without
    # reuse (glibc's own adaptive threshold spares some), about one round's with it
    assert plain > 20_000
    assert reused < 3_000
