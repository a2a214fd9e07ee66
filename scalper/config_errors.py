"""Reading bots.yaml safely and turning every problem into one precise message.

A bots file is edited by hand, often in a hurry. Whatever is wrong with it
ends in one ConfigError (exit 2) that names the file, the line, the field and
the fix — and nothing is written. The checks, in order:

1. the file itself: exists, is a regular file, at most MAX_CONFIG_BYTES,
   readable, UTF-8, no tab indentation, not empty;
2. the YAML: composed with PyYAML's safe loader into a node graph (every node
   knows its line), then checked before anything is built from it: only plain
   tags (no `!!python/object`), no duplicate keys (PyYAML would silently keep
   the last one), aliases that neither loop nor explode, bounded nesting;
3. the values: pydantic (scalper.config) — each validation error is mapped to
   the line of its field through the node graph.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from scalper.errors import ConfigError

MAX_CONFIG_BYTES = 1_000_000
MAX_DEPTH = 40                 # a bots file nests about 5 deep
MAX_EXPANDED_NODES = 200_000   # aliases may share a value, not multiply it a billion times

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(_PLAIN + t for t in ("null", "bool", "int", "float", "str", "seq", "map", "merge",
                                              "timestamp"))
MERGE_TAG = _PLAIN + "merge"
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "private_key")
SECRET_FIX = ("remove it: secrets never go in bots.yaml; put `password_env: SOME_VAR` on the account and "
              "export the password in that environment variable")


def looks_secret(key: object) -> bool:
    """A key that would hold a secret (`password_env`, which names a variable, is fine)."""
    k = str(key).lower().replace("-", "_")
    return k != "password_env" and any(w in k for w in SECRET_WORDS)


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
    merged = []
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


# --- pydantic errors → one message -------------------------------------------
_FIXES = {
    "missing": "add it",
    "int_parsing": "write a whole number, e.g. 2",
    "int_type": "write a whole number, e.g. 2",
    "int_from_float": "write a whole number, without decimals",
    "float_parsing": "write a number, e.g. 1.5",
    "float_type": "write a number, e.g. 1.5",
    "finite_number": "write an ordinary number (not .inf or .nan)",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "list_type": "write a list, e.g. [a, b]",
    "dict_type": "write a mapping of `key: value` lines",
    "model_type": "write a mapping of `key: value` lines",
    "model_attributes_type": "write a mapping of `key: value` lines",
    "string_type": "write text (quote it if it looks like a number, date or yes/no)",
    "too_short": "add at least one entry",
    "string_too_short": "write at least one character",
    "string_pattern_mismatch": "use letters, digits, '-', '_' and '.' only",
}

# string_pattern_mismatch, per field: (what is wrong, fix) — instead of a regular expression.
_PATTERNS = {
    "name": ("may hold letters, digits, '-', '_' and '.' only (no spaces)", "rename it, e.g. gold-scalper"),
    "symbol": ("must not contain spaces or slashes", "write the broker's exact symbol name, e.g. XAUUSDm"),
}


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "empty"
    return type(value).__name__


def _num(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _fix_for(err: dict, loc: tuple) -> str | None:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "greater_than":
        return "use a positive value" if ctx.get("gt") == 0 else f"use a value above {_num(ctx.get('gt'))}"
    if kind == "greater_than_equal":
        return f"use {_num(ctx.get('ge'))} or more"
    if kind == "less_than_equal":
        return f"use {_num(ctx.get('le'))} or less"
    if kind == "less_than":
        return f"use a value below {_num(ctx.get('lt'))}"
    if kind == "literal_error":
        return f"use one of: {ctx.get('expected')}"
    if kind == "string_too_long":
        return f"shorten it to at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"keep at most {ctx.get('max_length')} entries"
    if kind == "extra_forbidden":
        return _unknown_key_fix(loc)
    if kind == "string_pattern_mismatch" and loc and loc[-1] in _PATTERNS:
        return _PATTERNS[loc[-1]][1]
    if kind == "missing" and loc:
        return f"add `{loc[-1]}:` here"
    return _FIXES.get(kind)


def _unknown_key_fix(loc: tuple) -> str:
    valid = _valid_keys(loc[:-1])
    if not valid:
        return "remove it or check its spelling"
    near = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
    if near:
        return f"did you mean `{near[0]}`? Otherwise remove it (valid here: {', '.join(valid)})"
    return f"remove it or check its spelling (valid here: {', '.join(valid)})"


def _valid_keys(loc: tuple) -> list[str]:
    """The field names of the model at `loc` (for 'did you mean')."""
    import typing

    from pydantic import BaseModel

    from scalper.config import Config

    tp: Any = Config
    for part in loc:
        tp = _unwrap_model(tp)
        if isinstance(part, int):
            args = typing.get_args(tp)
            tp = args[0] if args else None
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        else:
            return []
    tp = _unwrap_model(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [n for n in tp.model_fields if n != "source"]
    return []


def _unwrap_model(tp: Any) -> Any:
    import types
    import typing

    from pydantic import BaseModel

    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else (args[0] if args else None)
        else:
            return tp


def _clean_loc(raw: tuple) -> tuple:
    return tuple(p for p in raw if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]")))


def describe(err: dict) -> tuple[tuple, str, str | None]:
    """(location, message, fix) of one pydantic error; our own Problem errors carry their own."""
    loc = _clean_loc(tuple(err["loc"]))
    kind = err["type"]
    msg = err["msg"]
    fix = None
    original = (err.get("ctx") or {}).get("error")
    if kind == "value_error" and original is not None and hasattr(original, "loc"):
        loc = loc + tuple(original.loc)
        return loc, original.message, original.fix
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        if looks_secret(key):
            return loc, f"`{key}` must not be written in bots.yaml", SECRET_FIX
        msg = f"unknown key `{key}`"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        msg = f"should be a mapping of `key: value` lines, not {_kind_of(err.get('input'))}"
    elif kind == "list_type":
        msg = f"should be a list, not {_kind_of(err.get('input'))}"
    elif kind == "too_short" and not err.get("input"):
        msg = "the list is empty"
    elif kind == "missing":
        msg = "this setting is required"
    elif kind == "string_pattern_mismatch" and loc and loc[-1] in _PATTERNS:
        msg = _PATTERNS[loc[-1]][0]
    fix = _fix_for(err, loc) if kind != "value_error" else None
    if isinstance(err.get("input"), bool) and kind in ("literal_error", "string_type"):
        word = "true" if err["input"] else "false"
        msg += f" (YAML read a bare yes/no/on/off as {word})"
        fix = (fix + "; " if fix else "") + "put the value in quotes, e.g. 'off'"
    return loc, msg, fix


def validation_to_config_error(exc: ValidationError, path: Path, tree: Any) -> ConfigError:
    problems = []
    for err in exc.errors(include_url=False):
        loc, msg, fix = describe(err)
        problems.append((line_of(tree, loc), loc, msg, fix))
    # The first problem in the file is the one to fix first.
    problems.sort(key=lambda pr: (pr[0] is None, pr[0] or 0))
    line, loc, msg, fix = problems[0]
    if len(problems) > 1:
        others = [f"{field_path(o[1])}" + (f" (line {o[0]})" if o[0] else "") for o in problems[1:4]]
        more = "" if len(problems) <= 4 else f" and {len(problems) - 4} more"
        fix = (fix or "correct it") + f"; then also check {', '.join(others)}{more}"
    return ConfigError(msg, path=str(path), where=field_path(loc), line=line, fix=fix)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_env_name(value: str) -> bool:
    return bool(_ENV_NAME.match(value))
