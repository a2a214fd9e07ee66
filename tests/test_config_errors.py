"""A hand-edited bots.yaml gone wrong: every case exits 2 with file, line, field and fix,
and nothing beside the file changes (the ledger a good run made keeps its checksum).

The base file below is valid; each case edits a line of it (line numbers are the
file's, 1-based) and states the exact line and field the message must name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clikit import cli

BASE = """\
ledger: ledger.db
feed:
  type: builtin
paper:
  state: paper.db
accounts:
  - id: 1
    name: paper-1
    broker: paper
  - id: 2
    name: paper-2
    broker: paper
bots:
  - name: gold
    symbol: XAUUSD
    lookback: 100
    accounts: [1, 2]
    strategies: [price_action_pinbar, trend_pullback, doji_breakout, range_reversion]
    strategy_params:
      trend_pullback:
        rr: 1.5
    risk:
      max_concurrent: 2
      max_per_symbol: 1
      decision_min_score: 0.0
      daily_loss_limit_pct: 3
      kill_switch_loss_pct: 5
  - name: euro
    symbol: EURUSD
    accounts: [1]
"""
LINES = BASE.splitlines()
PLANTED = "S3cr3t-PLANTED-pw"


def edit(*changes: tuple[int, str | None]) -> str:
    """Replace line n (1-based) with text; None deletes it. Applied to the base as given."""
    lines = list(LINES)
    for n, text in sorted(changes, key=lambda c: -c[0]):
        if text is None:
            del lines[n - 1]
        else:
            lines[n - 1] = text
    return "\n".join(lines) + "\n"


def insert(after: int, *new: str) -> str:
    lines = list(LINES)
    lines[after:after] = list(new)
    return "\n".join(lines) + "\n"


@dataclass
class Case:
    name: str
    content: str | bytes
    line: int | None          # the exact line the message must name; None: none is knowable
    where: str | None         # the field path the message must name
    words: tuple[str, ...]    # the message must say these (what is wrong)
    fix: str                  # … and the fix must say this
    subprocess: bool = False  # also through `python -m scalper` end to end


BILLION_LAUGHS = """\
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
accounts: [{id: 1}]
bots: [{name: x, symbol: XAUUSD, accounts: [1], strategies: *f}]
"""

CASES = [
    # --- the file and its YAML ---------------------------------------------------------
    Case("yaml_syntax_error", edit((15, "    symbol: XAUUSD: oops")), 15, None,
         ("YAML syntax error", "mapping values are not allowed"), "indentation", subprocess=True),
    Case("unclosed_flow_list", edit((17, "    accounts: [1, 2")), 18, None,
         ("YAML syntax error",), "indentation"),
    Case("tab_indentation", edit((16, "\tlookback: 100")), 16, None, ("tab",), "spaces"),
    Case("empty_file", "", None, None, ("empty",), "accounts:"),
    Case("comments_only", "# bots file\n# (to be written)\n\n", None, None, ("only comments",), "accounts:"),
    Case("only_a_document_marker", "---\n", None, None, ("no settings",), "accounts:"),
    Case("top_level_list", "- id: 1\n- id: 2\n", 1, "(top level)", ("must be a mapping", "a list"), "accounts:"),
    Case("ten_megabytes", BASE + ("# padding\n" * 1_100_000), None, None, ("bytes", "limit"), "--config"),
    Case("not_utf8", edit((15, "    symbol: XAU\udcffUSD")).encode("utf-8", "surrogateescape"), 15, None,
         ("not UTF-8", "0xff"), "UTF-8"),
    Case("control_character", edit((15, "    symbol: XAU\x07USD")), 15, None, ("control character U+0007", "not allowed"), "delete"),
    Case("python_object_tag", edit((15, '    symbol: !!python/object/apply:os.system ["touch PWNED"]')), 15,
         "bots[0].symbol", ("!!python/object/apply:os.system", "not allowed"), "plain values", subprocess=True),
    Case("custom_local_tag", edit((16, "    lookback: !big 100")), 16, "bots[0].lookback", ("!big", "not allowed"),
         "plain values"),
    Case("duplicate_yaml_key", insert(16, "    lookback: 50"), 17, "bots[0].lookback",
         ("appears twice", "first on line 16"), "keep one", subprocess=True),
    Case("duplicate_top_level_key", insert(1, "ledger: other.db"), 2, "ledger", ("appears twice",), "keep one"),
    Case("two_documents", BASE + "---\nledger: x.db\n", 31, None, ("single document",), "---"),
    Case("undefined_alias", edit((17, "    accounts: *mine")), 17, None, ("undefined alias",), "anchor"),
    Case("alias_bomb", BILLION_LAUGHS, 6, "f", ("expand",), "write the values out"),
    # --- wrong types ----------------------------------------------------------------------
    Case("string_for_int", edit((23, "      max_concurrent: two")), 23, "bots[0].risk.max_concurrent",
         ("valid integer", "unable to parse string"), "whole number"),
    Case("float_for_int", edit((23, "      max_concurrent: 1.5")), 23, "bots[0].risk.max_concurrent",
         ("integer",), "whole number"),
    Case("list_for_mapping", edit((22, "    risk: [2, 1]"), (23, None), (24, None), (25, None), (26, None),
                                  (27, None)), 22, "bots[0].risk", ("should be a mapping", "not a list"), "mapping"),
    Case("mapping_for_list", edit((17, "    accounts: {id: 1}")), 17, "bots[0].accounts", ("should be a list, not a mapping",), "list"),
    Case("bool_for_number", edit((23, "      max_concurrent: yes")), 23, "bots[0].risk.max_concurrent",
         ("`true` is not a number",), "write a number"),
    Case("bool_in_account_list", edit((30, "    accounts: [true]")), 30, "bots[1].accounts[0]",
         ("`true` is not a number",), "write a number"),
    Case("infinite_number", insert(27, "      kill_switch_loss: .inf"), 28, "bots[0].risk.kill_switch_loss",
         ("finite",), "ordinary number"),
    Case("text_for_bool", insert(16, "    auto_trade: maybe"), 17, "bots[0].auto_trade", ("boolean",),
         "true or false"),
    # --- limits and ranges ----------------------------------------------------------------
    Case("zero_limit", edit((23, "      max_concurrent: 0")), 23, "bots[0].risk.max_concurrent",
         ("greater than 0",), "use a positive value", subprocess=True),
    Case("negative_limit", edit((24, "      max_per_symbol: -1")), 24, "bots[0].risk.max_per_symbol",
         ("greater than 0",), "use a positive value"),
    Case("decision_min_score_above_1", edit((25, "      decision_min_score: 1.5")), 25,
         "bots[0].risk.decision_min_score", ("less than or equal to 1",), "use 1 or less"),
    Case("daily_loss_pct_150", edit((26, "      daily_loss_limit_pct: 150")), 26,
         "bots[0].risk.daily_loss_limit_pct", ("less than or equal to 100",), "use 100 or less"),
    Case("kill_switch_pct_zero", edit((27, "      kill_switch_loss_pct: 0")), 27,
         "bots[0].risk.kill_switch_loss_pct", ("greater than 0",), "use a positive value"),
    Case("lookback_too_large", edit((16, "    lookback: 6000")), 16, "bots[0].lookback",
         ("less than or equal to 5000",), "use 5000 or less"),
    Case("lookback_too_small", edit((16, "    lookback: 10")), 16, "bots[0].lookback",
         ("greater than or equal to 15",), "use 15 or more"),
    Case("lookback_below_a_strategys_min_bars", edit((16, "    lookback: 40")), 16, "bots[0].lookback",
         ("trend_pullback", "min_bars=60", "lookback=40"), "raise lookback"),
    # --- unknown keys and names -----------------------------------------------------------
    Case("unknown_top_level_key", insert(1, "ledgr: other.db"), 2, "ledgr", ("unknown key `ledgr`",),
         "did you mean `ledger`"),
    Case("unknown_bot_key", edit((16, "    lookbak: 100")), 16, "bots[0].lookbak", ("unknown key `lookbak`",),
         "did you mean `lookback`"),
    Case("unknown_risk_key", edit((24, "      max_per_symbols: 1")), 24, "bots[0].risk.max_per_symbols",
         ("unknown key",), "did you mean `max_per_symbol`"),
    Case("unknown_strategy", edit((18, "    strategies: [price_action_pinbar, pinbar]")), 18,
         "bots[0].strategies[1]", ("unknown strategy 'pinbar'",), "did you mean 'price_action_pinbar'"),
    Case("strategy_listed_twice", edit((18, "    strategies: [doji_breakout, doji_breakout]")), 18,
         "bots[0].strategies[1]", ("listed twice",), "once"),
    Case("unknown_strategy_under_params", edit((20, "      trend_pulback:")), 20,
         "bots[0].strategy_params.trend_pulback", ("unknown strategy 'trend_pulback'",),
         "did you mean 'trend_pullback'"),
    Case("unknown_strategy_parameter", edit((21, "        rrr: 1.5")), 21,
         "bots[0].strategy_params.trend_pullback.rrr", ("unknown parameter 'rrr'",), "use one of: "),
    Case("param_reach_beyond_min_bars", edit((20, "      price_action_pinbar:"), (21, "        level_lookback: 50")),
         21, "bots[0].strategy_params.price_action_pinbar.level_lookback", ("reaches 51 bars", "min_bars is 30"),
         "raise min_bars to at least 51"),
    Case("min_bars_above_lookback", edit((21, "        min_bars: 150")), 21,
         "bots[0].strategy_params.trend_pullback.min_bars", ("min_bars=150 exceeds the bot's lookback=100",),
         "lower min_bars"),
    Case("negative_sl_buffer", edit((21, "        sl_buffer_atr: -0.1")), 21,
         "bots[0].strategy_params.trend_pullback.sl_buffer_atr", ("must be a number of at least 0",),
         "the default 0.1"),
    Case("bad_param_of_a_disabled_strategy", edit((18, "    strategies: [doji_breakout]"),
                                                  (21, "        rr: -2")), 21,
         "bots[0].strategy_params.trend_pullback.rr", ("rr=-2 is invalid",), "e.g. the default"),
    Case("bad_engine_mode", insert(15, "    engine_mode: turbo"), 16, "bots[0].engine_mode",
         ("Input should be 'scalper', 'legacy' or 'off'",), "use one of"),
    Case("bad_feed_type", edit((3, "  type: bloomberg")), 3, "feed.type", ("'builtin', 'csv' or 'mt5'",),
         "use one of"),
    Case("csv_feed_without_path", edit((3, "  type: csv")), 2, "feed", ("csv feed needs `path` or `files`",),
         "path: data/{symbol}.csv"),
    Case("bad_broker", edit((9, "    broker: ib")), 9, "accounts[0].broker", ("'paper' or 'mt5'",), "use one of"),
    Case("symbol_too_long", edit((15, "    symbol: " + "X" * 40)), 15, "bots[0].symbol", ("at most 29",),
         "shorten it to at most 29 characters"),
    Case("symbol_with_space", edit((15, "    symbol: XAU USD")), 15, "bots[0].symbol", ("must not contain spaces",), "exact symbol"),
    Case("bot_name_with_space", edit((14, "  - name: gold scalper")), 14, "bots[0].name", ("letters, digits", "no spaces"),
         "gold-scalper"),
    Case("version_2", insert(0, "version: 2"), 1, "version", ("Input should be 1",), "use one of"),
    # --- cross checks -----------------------------------------------------------------------
    Case("duplicate_bot_names", edit((28, "  - name: gold")), 28, "bots[1].name",
         ("'gold' is already used by bots[0]",), "rename one"),
    Case("duplicate_account_ids", edit((10, "  - id: 1")), 10, "accounts[1].id", ("id 1 is already used",),
         "own id"),
    Case("bot_on_missing_account", edit((30, "    accounts: [1, 3]")), 30, "bots[1].accounts[1]",
         ("account 3 is not defined", "defined: 1, 2"), "add an account with `id: 3`"),
    Case("bot_without_accounts", edit((30, None)), 28, "bots[1].accounts", ("required",), "add `accounts:`"),
    Case("bot_with_empty_accounts", edit((30, "    accounts: []")), 30, "bots[1].accounts", ("the list is empty",),
         "add at least one"),
    Case("undefined_correlation_group", insert(30, "    correlation_group: metals"), 31,
         "bots[1].correlation_group", ("'metals' is not defined",), "correlation_groups"),
    # --- secrets ------------------------------------------------------------------------------
    Case("password_in_file", insert(9, f"    password: {PLANTED}"), 10, "accounts[0].password",
         ("must not be written in bots.yaml",), "password_env"),
    Case("token_at_top_level", insert(1, f"api_token: {PLANTED}"), 2, "api_token",
         ("must not be written in bots.yaml",), "password_env"),
    Case("password_pasted_into_password_env", insert(9, f"    password_env: {PLANTED}"), 10,
         "accounts[0].password_env", ("NAME of an environment variable",), "MT5_PASSWORD_7"),
]
BAD = CASES
# Valid: parameters of a strategy not in `strategies` are checked too (see bad_param_of_a_disabled_strategy).
DISABLED_STRATEGY_PARAMS_OK = edit((18, "    strategies: [doji_breakout]"))


# --- the ledger a good run made, copied beside each bad file ------------------------------------
@pytest.fixture(scope="module")
def good_state(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("good")
    (d / "bots.yaml").write_text(BASE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for var in ("SCALPER_CONFIG", "SCALPER_LEDGER", "SCALPER_CRASH_AT", "SCALPER_PAPER_FAULTS"):
        env.pop(var, None)
    done = subprocess.run([sys.executable, "-m", "scalper", "run-once", "--config", str(d / "bots.yaml")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (d / "ledger.db").exists() and (d / "paper.db").exists()
    return d


def _snapshot(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def _prepare(tmp_path: Path, good: Path, content: str | bytes) -> Path:
    for p in good.iterdir():
        if p.is_file() and p.name != "bots.yaml":
            shutil.copy2(p, tmp_path / p.name)
    config = tmp_path / "bots.yaml"
    if isinstance(content, bytes):
        config.write_bytes(content)
    else:
        config.write_text(content, encoding="utf-8")
    return config


def _in_process(capsys, *args: str) -> tuple[int, str, str]:
    r = cli(capsys, *args)
    return r.code, r.out, r.err


def _assert_message(case: Case, config: Path, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    msg = lines[0][len("error: "):]
    head = str(config) + (f":{case.line}" if case.line is not None else "") + ": "
    assert msg.startswith(head), f"expected {head!r}…, got {msg!r}"
    if case.line is None:
        assert not re.match(re.escape(str(config)) + r":\d+:", msg), msg
    rest = msg[len(head):]
    if case.where is not None:
        assert rest.startswith(case.where + ": "), f"expected field {case.where!r}, got {rest!r}"
    for w in case.words:
        assert w in msg, f"{w!r} not in {msg!r}"
    assert " — fix: " in msg, msg
    assert case.fix in msg.split(" — fix: ", 1)[1], f"fix {case.fix!r} not in {msg!r}"
    assert "Traceback" not in err
    assert PLANTED not in err, "a secret written in the file was echoed"
    return msg


def test_there_are_at_least_30_bad_cases():
    assert len(BAD) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


def test_the_base_file_and_the_disabled_strategy_variant_are_valid(tmp_path, capsys, good_state):
    for content in (BASE, DISABLED_STRATEGY_PARAMS_OK):
        config = _prepare(tmp_path, good_state, content)
        code, out, err = _in_process(capsys, "run-once", "--dry-run", "--config", str(config))
        assert code == 0, err


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_bad_config_exits_2_naming_file_line_field_and_fix(case, tmp_path, capsys, good_state):
    config = _prepare(tmp_path, good_state, case.content)
    before = _snapshot(tmp_path)
    code, out, err = _in_process(capsys, "run-once", "--config", str(config))
    assert code == 2, (code, err)
    _assert_message(case, config, err)
    assert out == ""
    assert _snapshot(tmp_path) == before, "a file beside bots.yaml was changed, created or removed"
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


@pytest.mark.parametrize("case", [c for c in BAD if c.subprocess], ids=[c.name for c in BAD if c.subprocess])
def test_bad_config_end_to_end_through_python_m_scalper(case, tmp_path, good_state):
    config = _prepare(tmp_path, good_state, case.content)
    before = _snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCALPER_")}
    done = subprocess.run([sys.executable, "-m", "scalper", "run-once", "--config", str(config)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    _assert_message(case, config, done.stderr)
    assert done.stdout == ""
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / "PWNED").exists()


def test_json_mode_reports_the_same_message_on_stdout(tmp_path, capsys, good_state):
    import json

    case = next(c for c in CASES if c.name == "zero_limit")
    config = _prepare(tmp_path, good_state, case.content)
    code, out, err = _in_process(capsys, "run-once", "--json", "--config", str(config))
    assert code == 2
    doc = json.loads(out)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert doc["error"].startswith(f"{config}:23: bots[0].risk.max_concurrent: ")


def test_check_command_reports_a_bad_config_with_exit_2(tmp_path, capsys, good_state):
    case = next(c for c in CASES if c.name == "duplicate_yaml_key")
    config = _prepare(tmp_path, good_state, case.content)
    before = _snapshot(tmp_path)
    code, out, err = _in_process(capsys, "check", "--config", str(config))
    assert code == 2
    assert f"{config}:17: bots[0].lookback: " in (out + err).replace("\n", "")
    assert _snapshot(tmp_path) == before


def test_several_problems_name_the_first_in_the_file_and_list_the_others(tmp_path, capsys, good_state):
    config = _prepare(tmp_path, good_state, edit((16, "    lookback: 6000"), (23, "      max_concurrent: 0"),
                                                  (26, "      daily_loss_limit_pct: 150")))
    code, _, err = _in_process(capsys, "run-once", "--config", str(config))
    assert code == 2
    assert f"{config}:16: bots[0].lookback: " in err
    assert "then also check bots[0].risk.max_concurrent (line 23), bots[0].risk.daily_loss_limit_pct (line 26)" in err


def test_bare_off_engine_mode_means_off(tmp_path, capsys, good_state):
    """`engine_mode: off` unquoted is YAML for false: the trader meant off, and gets it."""
    from scalper.config import load_config

    config = _prepare(tmp_path, good_state, insert(15, "    engine_mode: off"))
    assert load_config(config).bots[0].engine_mode == "off"


def test_merge_keys_and_anchors_still_work(tmp_path):
    from scalper.config import load_config

    text = BASE.replace("    risk:\n      max_concurrent: 2", "    risk: &r\n      max_concurrent: 2") \
        + "    risk:\n      <<: *r\n      max_concurrent: 1\n"
    config = tmp_path / "bots.yaml"
    config.write_text(text)
    cfg = load_config(config)
    assert cfg.bots[1].risk.max_concurrent == 1 and cfg.bots[1].risk.daily_loss_limit_pct == 3


def test_setup_bot_refuses_to_edit_a_file_with_a_duplicate_key(tmp_path, capsys, good_state):
    case = next(c for c in CASES if c.name == "duplicate_yaml_key")
    config = _prepare(tmp_path, good_state, case.content)
    before = _snapshot(tmp_path)
    code, _, err = _in_process(capsys, "setup-bot", "--symbol", "EURUSD", "--config", str(config))
    assert code == 2
    assert f"{config}:17: bots[0].lookback: " in err
    assert _snapshot(tmp_path) == before
