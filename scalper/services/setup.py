"""`scalper setup-bot`: add or update one bot in bots.yaml, keeping the rest of
the file — other bots, comments, key order — exactly as it was."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from scalper.config import AccountConfig, BotConfig, Config, PaperConfig, RiskConfig
from scalper.config_errors import validation_to_config_error
from scalper.config_yaml import load_yaml_document
from scalper.errors import BadInput
from scalper.settings import schema_default
from scalper.symbols import default_qty
from scalper.userdirs import unlink_quietly

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
              qty: float | None = None, update: bool = False) -> tuple[dict, bool, Path, bool]:
    """Add the bot, or update the bot of that name. A bot of that name trading another
    symbol is only changed with `update=True` (a default name must not take over a bot).
    Returns (bot, created, path, changed); an update that changes nothing writes nothing,
    so the .bak beside the file keeps the version before the last real change."""
    from scalper import wiring

    path = wiring.config_path(config)
    check_writable(path)
    y = _yaml()
    if path.exists():
        load_yaml_document(path)  # the same safety checks as every load (tabs, tags, size, encoding)
        doc = y.load(path.read_text(encoding="utf-8"))
    else:
        doc = y.load(NEW_FILE_HEADER + _new_file_settings())
    if not isinstance(doc, CommentedMap):
        raise BadInput("the top level must be a mapping", path=str(path))
    bots = doc.get("bots")
    if bots is None:
        bots = CommentedSeq()
        doc["bots"] = bots
    name = name or f"{symbol.lower().replace('.', '-')}-scalper"

    existing = next((b for b in bots if isinstance(b, dict) and b.get("name") == name), None)
    created = existing is None
    bot: dict[Any, Any]   # a CommentedMap for a new bot; the file's own mapping for an existing one
    if existing is None:
        accounts = account_ids or [a.get("id") for a in (doc.get("accounts") or [])[:1]] or [1]
        # A new bot spells out the schema's defaults for the settings a trader tunes first.
        bot = CommentedMap()
        bot["name"] = name
        bot["symbol"] = symbol
        for key in ("enabled", "engine_mode", "timeframe", "lookback"):
            bot[key] = schema_default(BotConfig, key)
        if user_id is not None:
            bot["user_id"] = user_id
        bot["accounts"] = _flow(accounts)
        bot["auto_trade"] = schema_default(BotConfig, "auto_trade") if auto_trade is None else auto_trade
        bot["qty"] = qty if qty is not None else default_qty(symbol, _symbol_specs(doc))
        bot["strategies"] = _flow(_names(strategies) if strategies else schema_default(BotConfig, "strategies"))
        risk = CommentedMap()
        for key in ("max_concurrent", "max_per_symbol", "kill_switch"):
            risk[key] = schema_default(RiskConfig, key)
        bot["risk"] = risk
        bots.append(bot)
    else:
        bot = existing
        if str(bot.get("symbol")) != symbol and not update:
            raise BadInput(f"a bot named {name!r} already trades {bot.get('symbol')}; nothing written",
                           path=str(path), where="--name",
                           fix=f"pick another name with --name, or pass --update to move {name!r} to {symbol}")
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
    changed = not path.exists() or text != path.read_text(encoding="utf-8")
    if changed:
        _atomic_write(path, text)
    plain = _plain(bot)
    return plain, created, path, changed


def _new_file_settings() -> str:
    """A new bots file: the schema's ledger, one paper account with the default balance, no bots."""
    balance = schema_default(PaperConfig, "initial_balance")
    return (f"ledger: {schema_default(Config, 'ledger')}\naccounts:\n  - id: 1\n    name: paper-1\n"
            f"    broker: {schema_default(AccountConfig, 'broker')}\n    balance: {balance:g}\nbots: []\n")


def _symbol_specs(doc: CommentedMap) -> dict:
    """The file's `symbols:` table as specs, for the default qty (unreadable entries are left to validation)."""
    from pydantic import ValidationError

    from scalper.config import SymbolOverride
    from scalper.settings import symbol_spec

    specs: dict = {}
    table = doc.get("symbols")
    for name, value in (table.items() if isinstance(table, dict) else ()):
        try:
            specs[str(name)] = symbol_spec(str(name), SymbolOverride.model_validate(_plain(value)))
        except ValidationError:
            continue
    return specs


def _names(text: str) -> list[str]:
    from scalper.services.options import strategy_list

    return strategy_list(text)


def _flow(items: list) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _plain(node):
    """ruamel's round-trip nodes (ScalarFloat, CommentedSeq, …) as plain Python values."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return kind(node)
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


BACKUP_SUFFIX = ".bak"


def check_writable(path: Path) -> None:
    """Refuse, before anything is written, a bots file the rename would silently replace
    against its owner's wish: read-only by its mode bits (even for root, which the kernel
    would let through), or not writable for us, or in a folder we cannot write."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists():
        if not path.is_file():
            raise BadInput(f"{path} is not a file", path=str(path), fix="point --config at a bots.yaml file")
        st = path.stat()
        if not st.st_mode & 0o222 or not os.access(path, os.W_OK):
            raise BadInput(f"{path} is read-only (mode {st.st_mode & 0o777:o}); nothing written", path=str(path),
                           fix=f"make it writable first (chmod u+w {path}) if it is meant to be edited")
        if st.st_uid != os.geteuid() and os.geteuid() != 0:
            raise BadInput(f"{path} belongs to another user (uid {st.st_uid}); replacing it would change its "
                           "owner; nothing written", path=str(path), fix="run setup-bot as the file's owner")
    while not folder.exists() and folder != folder.parent:   # a new file's folders are created
        folder = folder.parent
    if not os.access(folder, os.W_OK):
        raise BadInput(f"folder {folder} is not writable; nothing written", path=str(path),
                       fix="run as a user who may write there, or use --config elsewhere")


def _atomic_write(path: Path, text: str) -> None:
    """Temporary file in the same folder, fsync, then rename over the file; the previous
    version is kept beside it as `<name>.bak`, and the mode and owner carry over."""
    import shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    st = path.stat() if path.exists() else None
    mode = st.st_mode & 0o777 if st else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if st is not None:
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.chown(tmp, st.st_uid, st.st_gid)
            shutil.copy2(path, path.with_name(path.name + BACKUP_SUFFIX))
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(Path(tmp))
        raise
