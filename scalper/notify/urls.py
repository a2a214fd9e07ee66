"""Checking the targets' URLs when bots.yaml is loaded, without ever showing them.

A URL is read from the environment variable its target names. Only its scheme
(`tgram`, `discord`, `json`, …) may appear in a message; the rest carries tokens.
Known schemes come from apprise's own registry, read once per apprise installation
and kept in the scalper cache folder, so a run-once does not import apprise to
load its config.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

from scalper.errors import ConfigError
from scalper.notify import INSTALL_HINT

_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.\-]{0,31})://")
EXAMPLES = "tgram://BOT_TOKEN/CHAT_ID, discord://WEBHOOK_ID/TOKEN, ntfy://TOPIC, mailtos://…, json://HOST/PATH"


def scheme_of(url: str) -> str | None:
    m = _SCHEME.match(url or "")
    return m[1].lower() if m else None


def apprise_installed() -> bool:
    return importlib.util.find_spec("apprise") is not None


def known_schemes() -> frozenset[str]:
    """Every scheme apprise's registry lists (cached per apprise installation)."""
    import hashlib

    from scalper.userdirs import cache_dir, write_cache_file

    spec = importlib.util.find_spec("apprise")
    origin = spec.origin if spec else ""
    try:
        stamp = f"{origin}|{os.stat(origin).st_mtime_ns}" if origin is not None else str(origin)
    except (OSError, TypeError):
        stamp = str(origin)
    cache = cache_dir() / f"apprise-schemes-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.json"
    try:
        return frozenset(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    schemes = sorted(registry_schemes())
    try:
        write_cache_file(cache, [json.dumps(schemes).encode()])
    except OSError:
        pass                        # only costs the import next time
    return frozenset(schemes)


def registry_schemes() -> set[str]:
    import apprise

    out: set[str] = set()
    for entry in apprise.Apprise().details(show_disabled=True).get("schemas", []):
        for key in ("protocols", "secure_protocols"):
            value = entry.get(key) or ()
            out.update(s.lower() for s in ([value] if isinstance(value, str) else value) if s)
    return out


def check_targets(cfg, path: Path) -> None:
    """ConfigError (exit 2) when apprise is missing or a URL's scheme is unknown. A variable that
    is not set is not an error here (status, report… run without it); delivery and
    `scalper check` say so."""
    from scalper.logsetup import add_secret

    if not apprise_installed():
        raise _error(path, ("notify",), "alerts (`notify:`) need the apprise package, which is not installed",
                     f"{INSTALL_HINT}, or remove `notify:`")
    schemes: frozenset[str] | None = None
    for i, t in enumerate(cfg.notify):
        url = os.environ.get(t.url_env)
        if not url:
            continue
        add_secret(url)                       # masked in the log file, whatever writes it
        scheme = scheme_of(url)
        if scheme is None:
            raise _error(path, ("notify", i, "url_env"), f"${t.url_env} does not hold a URL (scheme://…)",
                         f"export {t.url_env} as an apprise URL, e.g. {EXAMPLES}")
        if schemes is None:
            schemes = known_schemes()
        if scheme not in schemes:
            import difflib

            near = difflib.get_close_matches(scheme, sorted(schemes), n=1, cutoff=0.6)
            hint = f"did you mean `{near[0]}://`? " if near else ""
            raise _error(path, ("notify", i, "url_env"),
                         f"${t.url_env} holds a URL with the scheme `{scheme}://`, which apprise does not know",
                         f"{hint}use a URL of a service apprise supports, e.g. {EXAMPLES}")


def _error(path: Path, loc: tuple, message: str, fix: str) -> ConfigError:
    from scalper.config_yaml import field_path, line_of, load_yaml_document

    try:
        _, tree = load_yaml_document(Path(path))
        line = line_of(tree, loc)
    except ConfigError:
        line = None
    return ConfigError(message, path=str(path), where=field_path(loc), line=line, fix=fix)
