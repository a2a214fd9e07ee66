"""`scalper setup-bot`: add or update one bot in bots.yaml, keeping the rest of
the file — other bots, comments, key order — exactly as it was."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from scalper.config import Config
from scalper.config_errors import load_yaml_document, validation_to_config_error
from scalper.errors import BadInput
from scalper.symbols import default_qty

NEW_FILE_HEADER = """\
# scalper bots file — see README.md ("bots.yaml reference").
# Broker passwords never go here: name an environment variable with password_env.
"""


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    return y


def setup_bot(*, config: str | None, symbol: str, name: str | None = None, user_id: int | None = None,
              account_ids: list[int] | None = None, auto_trade: bool | None = None, strategies: str | None = None,
              qty: float | None = None) -> tuple[dict, bool, Path]:
    from scalper import wiring
    from scalper.core import strategies as registry

    path = wiring.config_path(config)
    y = _yaml()
    if path.exists():
        load_yaml_document(path)  # the same safety checks as every load (tabs, tags, size, encoding)
        doc = y.load(path.read_text(encoding="utf-8"))
    else:
        doc = y.load(NEW_FILE_HEADER + "ledger: var/ledger.db\naccounts:\n  - id: 1\n    name: paper-1\n"
                     "    broker: paper\n    balance: 10000\nbots: []\n")
    if not isinstance(doc, CommentedMap):
        raise BadInput("the top level must be a mapping", path=str(path))
    bots = doc.get("bots")
    if bots is None:
        bots = CommentedSeq()
        doc["bots"] = bots
    name = name or f"{symbol.lower().replace('.', '-')}-scalper"

    existing = next((b for b in bots if isinstance(b, dict) and b.get("name") == name), None)
    created = existing is None
    if created:
        accounts = account_ids or [a.get("id") for a in (doc.get("accounts") or [])[:1]] or [1]
        bot = CommentedMap()
        bot["name"] = name
        bot["symbol"] = symbol
        bot["enabled"] = True
        bot["engine_mode"] = "scalper"
        bot["timeframe"] = "1m"
        bot["lookback"] = 100
        if user_id is not None:
            bot["user_id"] = user_id
        bot["accounts"] = _flow(accounts)
        bot["auto_trade"] = True if auto_trade is None else auto_trade
        bot["qty"] = qty if qty is not None else default_qty(symbol)
        bot["strategies"] = _flow(_names(strategies) if strategies else list(registry.STRATEGY_NAMES))
        risk = CommentedMap()
        risk["max_concurrent"] = 2
        risk["max_per_symbol"] = 1
        risk["kill_switch"] = True
        bot["risk"] = risk
        bots.append(bot)
    else:
        bot = existing
        bot["symbol"] = symbol
        if user_id is not None:
            bot["user_id"] = user_id
        if account_ids:
            bot["accounts"] = _flow(account_ids)
        if auto_trade is not None:
            bot["auto_trade"] = auto_trade
        if strategies:
            bot["strategies"] = _flow(_names(strategies))
        if qty is not None:
            bot["qty"] = qty

    buf = io.StringIO()
    y.dump(doc, buf)
    text = buf.getvalue()
    _validate(text, path)
    _atomic_write(path, text)
    plain = _plain(bot)
    return plain, created, path


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _flow(items: list) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _plain(node):
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _validate(text: str, path: Path) -> None:
    import yaml

    data = yaml.safe_load(text)
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        # No line number: it would point into the edited text, which is never written.
        error = validation_to_config_error(exc, path, None)
        error.message = "this change would make the file invalid (nothing written): " + error.message
        raise type(error)(error.message, path=error.path, where=error.where, fix=error.fix) from None


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
