"""Reading bots.yaml safely, and finding the line of a field in it.

A bots file is edited by hand, often in a hurry; whatever is wrong with the file
itself or its YAML ends in one ConfigError (exit 2) naming the file, the line and
the fix, and nothing is built from it. The checks, in order:

1. the file itself: exists, is a regular file, at most MAX_CONFIG_BYTES,
   readable, UTF-8, no tab indentation, not empty;
2. the YAML: composed with PyYAML's safe loader into a node graph (every node
   knows its line), then checked before anything is built from it: only plain
   tags (no `!!python/object`), no duplicate keys (PyYAML would silently keep
   the last one), aliases that neither loop nor explode, bounded nesting.

The values are checked by the schema (scalper.config); scalper.config_errors turns
its errors into messages, placed on their line by `line_of`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scalper.config_cache import MAX_CONFIG_BYTES  # defined where the cache, which loads no YAML, reads it too
from scalper.errors import ConfigError

MAX_DEPTH = 40                 # a bots file nests about 5 deep
MAX_EXPANDED_NODES = 200_000   # aliases may share a value, not multiply it a billion times

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(_PLAIN + t for t in ("null", "bool", "int", "float", "str", "seq", "map", "merge",
                                              "timestamp"))
MERGE_TAG = _PLAIN + "merge"


# --- reading ------------------------------------------------------------------
def load_yaml_document(path: Path) -> tuple[Any, Any]:
    """(plain data, root yaml node with line marks). Raises ConfigError."""
    path = Path(path)
    p = str(path)
    try:
        if not path.exists():
            raise ConfigError("file not found", path=p,
                              fix="create it with `scalper setup-bot --symbol XAUUSD` or pass --config PATH")
        if path.is_dir():
            raise ConfigError("is a folder, not a YAML file", path=p, fix="pass the bots.yaml file itself")
        if not path.is_file():
            raise ConfigError("is not a regular file", path=p, fix="pass the bots.yaml file itself")
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"file is {size:,} bytes; a bots file is a few KB (limit {MAX_CONFIG_BYTES:,})",
                              path=p, fix="point --config at the right file")
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror or exc})", path=p,
                          fix="check the path and the file's permissions") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"file is over {MAX_CONFIG_BYTES:,} bytes; a bots file is a few KB", path=p,
                          fix="point --config at the right file")
    text = _decode(raw, p)
    _check_tabs(text, p)
    if not text.strip():
        raise ConfigError("the file is empty", path=p,
                          fix="add `accounts:` and `bots:`; see the example bots.yaml in the README")
    if all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        raise ConfigError("the file holds only comments, no settings", path=p,
                          fix="add `accounts:` and `bots:`; see the example bots.yaml in the README")

    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:   # the pure-Python reader checks the characters up front
        raise _syntax_error(exc, text, p) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _syntax_error(exc, text, p) from None
        except RecursionError:
            raise ConfigError("the YAML nests too deeply", path=p, fix="flatten the structure") from None
        if root is None:
            raise ConfigError("the file holds no settings", path=p,
                              fix="add `accounts:` and `bots:`; see the example bots.yaml in the README")
        _check_nodes(root, p)
        try:
            data = loader.construct_document(root)
        except yaml.YAMLError as exc:  # _check_nodes refuses odd tags first; this is a safety net
            raise _syntax_error(exc, text, p) from None
        except (RecursionError, ValueError, TypeError, OverflowError) as exc:
            raise ConfigError(f"a value cannot be read ({type(exc).__name__}: {exc})", path=p,
                              fix="write plain values: numbers, text, lists and mappings") from None
    finally:
        loader.dispose()
    if data is None:
        raise ConfigError("the file holds no settings", path=p,
                          fix="add `accounts:` and `bots:`; see the example bots.yaml in the README")
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a text", int: "a number", float: "a number",
                bool: "true/false"}.get(type(data), type(data).__name__)
        raise ConfigError(f"the top level must be a mapping (key: value), not {kind}", path=p,
                          where="(top level)", line=root.start_mark.line + 1,
                          fix="start the file with `accounts:` and `bots:` (no leading `-`)")
    return data, root


def _decode(raw: bytes, p: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {col})", path=p,
                          line=line, fix="save the file as UTF-8 (most editors: File > Save with encoding)") from None
    return text[1:] if text.startswith("\ufeff") else text


def _check_tabs(text: str, p: str) -> None:
    for n, line_text in enumerate(text.splitlines(), 1):
        indent = line_text[: len(line_text) - len(line_text.lstrip(" \t"))]
        if "\t" in indent and line_text.strip():
            raise ConfigError("a tab is used for indentation; YAML allows spaces only", path=p, line=n,
                              fix="replace the tab with spaces (2 per level)")


def _syntax_error(exc: yaml.YAMLError, text: str, p: str) -> ConfigError:
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        char = exc.character
        shown = f"U+{ord(char):04X}" if isinstance(char, str) else f"U+{char:04X}" if isinstance(char, int) else "?"
        return ConfigError(f"the control character {shown} is not allowed in YAML", path=p, line=line,
                           fix="delete the control character (often pasted from a terminal or a PDF)")
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text_ = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    if isinstance(exc, yaml.constructor.ConstructorError):
        fix = "remove the `!` tag; bots.yaml holds plain values only"
    elif "expected a single document" in str(exc):
        fix = "keep one document: remove the extra `---` line"
    elif "alias" in str(exc):
        fix = "define the anchor (&name) before using it (*name)"
    else:
        fix = "check the indentation and the `key: value` form on that line (a value with `: ` or `#` needs quotes)"
    return ConfigError(text_, path=p, line=mark.line + 1 if mark else None, fix=fix)


def _check_nodes(root: yaml.Node, p: str) -> None:
    """Tags, duplicate keys, alias loops and bombs, depth — on the node graph, before building anything."""
    expanded: dict[int, int] = {}
    on_path: set[int] = set()

    def visit(node: yaml.Node, loc: tuple, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ConfigError(f"the YAML nests deeper than {MAX_DEPTH} levels", path=p, where=field_path(loc),
                              line=node.start_mark.line + 1, fix="flatten the structure")
        key = id(node)
        if key in on_path:
            raise ConfigError("an alias (*name) refers to a value that contains it", path=p,
                              where=field_path(loc), line=node.start_mark.line + 1,
                              fix="remove the alias loop")
        if key in expanded:
            return expanded[key]
        if node.tag not in ALLOWED_TAGS:
            raise ConfigError(f"tag `{node.tag.replace(_PLAIN, '!!')}` is not allowed", path=p,
                              where=field_path(loc), line=node.start_mark.line + 1,
                              fix="remove the tag; bots.yaml holds plain values only (numbers, text, lists, "
                                  "mappings)")
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple, int] = {}
            for k_node, v_node in node.value:
                if not isinstance(k_node, yaml.ScalarNode):
                    raise ConfigError("a key must be plain text", path=p, where=field_path(loc),
                                      line=k_node.start_mark.line + 1, fix="write `key: value`")
                if k_node.tag == MERGE_TAG:
                    total += visit(v_node, loc, depth + 1)
                    continue
                if k_node.tag not in ALLOWED_TAGS:
                    raise ConfigError(f"tag `{k_node.tag.replace(_PLAIN, '!!')}` is not allowed", path=p,
                                      where=field_path(loc + (k_node.value,)), line=k_node.start_mark.line + 1,
                                      fix="remove the tag; bots.yaml holds plain values only")
                ident = (k_node.tag, k_node.value)
                if ident in seen:
                    raise ConfigError(
                        f"the key `{k_node.value}` appears twice in the same mapping (first on line "
                        f"{seen[ident]}); YAML would silently keep only the last one",
                        path=p, where=field_path(loc + (k_node.value,)), line=k_node.start_mark.line + 1,
                        fix="keep one of the two and delete the other")
                seen[ident] = k_node.start_mark.line + 1
                total += 1 + visit(v_node, loc + (_key(k_node),), depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                total += visit(item, loc + (i,), depth + 1)
        on_path.discard(key)
        expanded[key] = total
        if total > MAX_EXPANDED_NODES:
            raise ConfigError(f"anchors and aliases expand to over {MAX_EXPANDED_NODES:,} values", path=p,
                              where=field_path(loc), line=node.start_mark.line + 1,
                              fix="write the values out; a bots file needs no alias tricks")
        return total

    visit(root, (), 0)


def _key(node: yaml.ScalarNode) -> object:
    if node.tag == _PLAIN + "int":
        try:
            return int(node.value)
        except ValueError:
            pass
    return node.value


# --- locating a field ---------------------------------------------------------
def line_of(tree: Any, loc: tuple) -> int | None:
    """1-based line of the deepest part of `loc` found in `tree` (a yaml node, or a
    ruamel round-trip tree as setup-bot holds)."""
    if tree is None:
        return None
    if isinstance(tree, yaml.Node):
        return _node_line(tree, loc)
    return _ruamel_line(tree, loc)


def _node_line(node: yaml.Node, loc: tuple) -> int | None:
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = _find_key(node, part, set())
            if found is None:
                break
            k_node, node = found
            line = k_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _find_key(node: yaml.MappingNode, part: object, seen: set[int]):
    if id(node) in seen:
        return None
    seen.add(id(node))
    merged: list[yaml.Node] = []
    for k_node, v_node in node.value:
        if k_node.tag == MERGE_TAG:
            merged.extend(v_node.value if isinstance(v_node, yaml.SequenceNode) else [v_node])
        elif isinstance(k_node, yaml.ScalarNode) and k_node.value == str(part):
            return k_node, v_node
    for m in merged:
        if isinstance(m, yaml.MappingNode):
            found = _find_key(m, part, seen)
            if found is not None:
                return found
    return None


def _ruamel_line(tree: Any, loc: tuple) -> int | None:
    node, line = tree, None
    for key in loc:
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and lc is not None and key in node:
            try:
                line = lc.key(key)[0] + 1
            except Exception:
                pass
            node = node[key]
        elif isinstance(node, list) and lc is not None and isinstance(key, int) and 0 <= key < len(node):
            try:
                line = lc.item(key)[0] + 1
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
