"""Reading bots.yaml safely and turning every problem into one precise message.

The file is parsed twice: by PyYAML's safe loader (which refuses executable
tags such as !!python/object) and by ruamel's round-trip loader, which keeps
the line of every key so a validation error can point at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from scalper.errors import ConfigError

MAX_CONFIG_BYTES = 1_000_000


def load_yaml_document(path: Path) -> tuple[Any, Any]:
    """(plain data, ruamel tree with line numbers). Raises ConfigError."""
    if not path.exists():
        raise ConfigError("file not found", path=str(path),
                          fix="create it with `scalper setup-bot --symbol XAUUSD` or pass --config PATH")
    if path.is_dir():
        raise ConfigError("is a folder, not a YAML file", path=str(path), fix="pass the bots.yaml file itself")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"file is {size:,} bytes; a bots file is a few KB (limit {MAX_CONFIG_BYTES:,})",
                          path=str(path), fix="point --config at the right file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})", path=str(path),
                          line=line, fix="save the file as UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    for n, line_text in enumerate(text.splitlines(), 1):
        stripped = line_text.lstrip(" ")
        if stripped.startswith("\t"):
            raise ConfigError("a tab is used for indentation; YAML allows spaces only", path=str(path),
                              line=n, fix="replace the tab with spaces")
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise ConfigError("the file is empty", path=str(path),
                          fix="add `accounts:` and `bots:`; see the example bots.yaml in the README")
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"tag not allowed: {exc.problem}", path=str(path),
                          line=mark.line + 1 if mark else None,
                          fix="remove the `!!` tag; bots.yaml holds plain values only") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"YAML syntax error: {problem}", path=str(path),
                          line=mark.line + 1 if mark else None,
                          fix="check the indentation and the `key: value` form on that line") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping (key: value), not {type(data).__name__}",
                          path=str(path), line=1, fix="start the file with `accounts:` and `bots:`")
    try:
        tree = YAML(typ="rt").load(text)
    except Exception:  # ruamel is only for line numbers; PyYAML already accepted the file
        tree = None
    return data, tree


def line_of(tree: Any, loc: tuple) -> int | None:
    """1-based line of the deepest key of `loc` that exists in the ruamel tree."""
    node, line = tree, None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            try:
                line = node.lc.key(key)[0] + 1
            except Exception:
                pass
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            try:
                line = node.lc.item(key)[0] + 1
            except Exception:
                pass
            node = node[key]
        else:
            break
    return line


def field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


_FIXES = {
    "extra_forbidden": "remove it or check its spelling",
    "missing": "add it",
    "int_parsing": "write a whole number",
    "int_type": "write a whole number",
    "float_parsing": "write a number",
    "float_type": "write a number",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "greater_than": "use a positive value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "less_than": "use a smaller value",
    "literal_error": "use one of the allowed values",
    "list_type": "write a list, e.g. [a, b]",
    "dict_type": "write a mapping (key: value)",
    "model_type": "write a mapping (key: value)",
    "string_type": "write text",
    "too_short": "add at least one entry",
    "string_pattern_mismatch": "use letters, digits, '-', '_' and '.' only",
}


def validation_to_config_error(exc: ValidationError, path: Path, tree: Any) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = f"unknown key {loc[-1]!r}" if loc else "unknown key"
    where = field_path(loc)
    fix = _FIXES.get(kind)
    if kind == "value_error":
        fix = None  # our own messages already say what to do
    extra = ""
    if len(exc.errors()) > 1:
        extra = f" (and {len(exc.errors()) - 1} more problem(s))"
    return ConfigError(msg + extra, path=str(path), where=where, line=line_of(tree, loc) if tree else None, fix=fix)
