"""The `scalper` command line (Typer). Commands parse, call one service, render."""

from __future__ import annotations

import logging
import os
import sys

from scalper.cli.output import emit_json, err
from scalper.errors import ScalperError


def __getattr__(name: str):
    # `scalper.cli.app`, the typer app, is built on first use: a plain run-once never needs it
    if name == "app":
        from scalper.cli.typer_app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    # pydantic otherwise scans every installed package's entry points for plugins on the
    # first model build (~20-40 ms): run-once pays start-up cost every 45 s.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = sys.argv[1:] if argv is None else argv
    wants_json = "--json" in args
    try:
        from scalper.cli import plain

        line = plain.read(args)
        if line is not None:
            body, kwargs = line
            rv = body(**kwargs)
        else:
            from scalper.cli.typer_app import app

            rv = app(args=args, prog_name="scalper", standalone_mode=False)
    except ScalperError as exc:
        _fail(str(exc), exc.exit_code, wants_json)
    except SystemExit as exc:
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            # typer's click turned a broken pipe into exit 1 (it wraps stdout to say so): the
            # reader left after the work was done (`run-once --json | true`), which is no failure
            _stdout_to_devnull()
            sys.exit(0)
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # the reader left (`scalper report | head -1`): the work is done; say nothing more
        _stdout_to_devnull()
        sys.exit(0)
    except Exception as exc:
        typer = sys.modules.get("typer")   # only typer raises its own exceptions
        if typer is not None and isinstance(exc, typer.Exit):
            sys.exit(exc.exit_code)
        if typer is not None and isinstance(exc, typer.Abort):
            sys.exit(130)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            # a usage error from typer's click (typer vendors click in recent versions, so
            # the class depends on the typer version): click prints it, the contract says exit 2
            exc.show()
            sys.exit(2)
        # a bug or an unforeseen OS error: one line here, the traceback in the log
        where = _log_unexpected(args)
        _fail(f"unexpected {type(exc).__name__}: {exc} "
              f"({'traceback in ' + str(where) if where else 'no log file could be written'}; please report it)",
              1, wants_json)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
    sys.exit(rv if isinstance(rv, int) else 0)


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _log_unexpected(args: list[str]):
    """Write the current exception's traceback to the log file: the config's when it
    loads (a command may have failed before configuring it), else the user's cache
    folder. → the file's path, or None."""
    from scalper import logsetup

    log = logging.getLogger("scalper")
    where = None
    try:
        from scalper import wiring

        where = logsetup.configure(wiring.load(_config_option(args)))
    except Exception:
        pass
    if where is None:
        logsetup.attach(logsetup.fallback_path())
    where = logsetup.current_path()
    log.exception("unexpected failure: scalper %s", " ".join(args))
    return where


def _config_option(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a in ("--config", "-c") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return None


def _fail(message: str, code: int, wants_json: bool) -> None:
    from rich.markup import escape

    from scalper.logsetup import redact

    message = redact(message)
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if wants_json:
        emit_json({"ok": False, "error": message, "exit_code": code})
    sys.exit(code)

