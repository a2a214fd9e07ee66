"""JSON text that every JSON parser accepts.

Python's json writes float('inf') and NaN as the bare words Infinity and NaN,
which are not JSON: a `--json` consumer (jq, JavaScript, Go) fails on them.
Money figures are kept finite where they are computed; this is the last line:
any non-finite float left becomes null, and json is told to refuse NaN/Infinity
so that nothing else can slip through.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(doc: Any) -> Any:
    """`doc` with every non-finite float (inf, -inf, NaN) replaced by None."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: finite(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [finite(v) for v in doc]
    return doc


def dumps(doc: Any, *, indent: int | None = None) -> str:
    return json.dumps(finite(doc), indent=indent, sort_keys=False, default=str, allow_nan=False)
