"""`--apply`: the chosen parameters written into the bot's `strategy_params` (and
`risk` for risk dimensions) in bots.yaml, keeping comments, key order and the
other bots, as setup-bot edits it. The change is shown as a diff first; the file
is written only when asked, atomically, and only if the result still validates.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Mapping
from pathlib import Path

from scalper.errors import BadInput
from scalper.optimize.space import Dimension


def propose(path: Path, bot_name: str, dims: list[Dimension], values: Mapping[str, float]) -> tuple[str, str]:
    """(current text, text with the values set). Raises BadInput when the result would be invalid."""
    from ruamel.yaml.comments import CommentedMap

    from scalper.config_yaml import load_yaml_document
    from scalper.services.setup import _validate, _yaml

    load_yaml_document(path)     # the same safety checks as every load
    before = path.read_text(encoding="utf-8")
    y = _yaml()
    doc = y.load(before)
    bot = next((b for b in (doc.get("bots") or []) if isinstance(b, dict) and b.get("name") == bot_name), None)
    if bot is None:
        raise BadInput(f"no bot named {bot_name!r} in {path}", where="--bot")

    def child(node, key):
        if not isinstance(node.get(key), dict):
            node[key] = CommentedMap()
        return node[key]

    for d in dims:
        v = d.round(values[d.name])
        if d.kind == "strategy":
            target = child(child(bot, "strategy_params"), d.owner)
        elif d.kind == "risk":
            target = child(bot, "risk")
        else:
            target = child(child(bot, "risk"), "trailing")
        target[d.param] = v
    buf = io.StringIO()
    y.dump(doc, buf)
    after = buf.getvalue()
    _validate(after, path)
    return before, after


def diff(path: Path, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), str(path), str(path)))


def write(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permissions: setup-bot's own write."""
    from scalper.services.setup import _atomic_write

    _atomic_write(path, text)
