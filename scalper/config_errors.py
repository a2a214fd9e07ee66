"""Turning every problem the schema finds in bots.yaml into one precise message.

Each pydantic validation error (scalper.config) becomes a ConfigError (exit 2)
naming the file, the line of its field (scalper.config_yaml.line_of), the field
and the fix: the first problem in the file first, the next ones named after it.
Also here: the rules that keep secrets out of the file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scalper.config_yaml import field_path, line_of
from scalper.errors import ConfigError

SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "private_key")
SECRET_FIX = ("remove it: secrets never go in bots.yaml; put `password_env: SOME_VAR` on the account and "
              "export the password in that environment variable")


def looks_secret(key: object) -> bool:
    """A key that would hold a secret (`password_env`, which names a variable, is fine)."""
    k = str(key).lower().replace("-", "_")
    return k != "password_env" and any(w in k for w in SECRET_WORDS)


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


def _fix_for(err: Mapping[str, Any], loc: tuple) -> str | None:
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


def describe(err: Mapping[str, Any]) -> tuple[tuple, str, str | None]:
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
