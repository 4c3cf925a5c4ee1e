"""Errors as one line on stderr, and the exit codes: 2 for the user's errors, 1 otherwise.

The root group (`FlywheelGroup`) is the one place where any exception becomes a line.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

DEBUG_ENV = "FLYWHEEL_DEBUG"
"""Print tracebacks of unexpected errors. Read here because only the CLI hides tracebacks."""


class Interrupted(Exception):
    """Ctrl-C inside a command (Typer would otherwise turn it into a silent exit 130)."""


class FlywheelGroup(TyperGroup):
    """The root group: runs a command and turns every error into one line on stderr."""

    # `ctx` is Typer's own (vendored) click Context; Any keeps the override compatible.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise Interrupted() from exc

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        handler = _OneLine(logging.WARNING)
        logger = logging.getLogger("flywheel")
        logger.addHandler(handler)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False,
                                  windows_expand_args=windows_expand_args, **extra)
            code = result if type(result) is int else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # the one place where any error becomes one line
            code = report_error(exc)
        finally:
            logger.removeHandler(handler)
        if standalone_mode:
            sys.exit(code)
        return code


def report_error(exc: BaseException) -> int:
    """Print `error: ...` on one line and return the exit code: 2 for the user's errors
    (bad input, usage, a missing file), 1 for anything unexpected."""
    from flywheel._core.errors import FlywheelError
    from flywheel._core.text import first_line

    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if type(exc).__name__ == "NoArgsIsHelpError":
        return 0  # Typer has already printed the help
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return 1
    if isinstance(exc, FlywheelError):
        return _fail(exc.one_line())
    if isinstance(exc, typer.TyperException):  # usage errors: bad option, missing argument
        ctx = getattr(exc, "ctx", None)
        where = f" — see `{ctx.command_path} --help`" if ctx is not None else ""
        return _fail(exc.format_message() + where)
    if isinstance(exc, Interrupted | KeyboardInterrupt | typer.Abort):
        return _fail(str(exc) or "interrupted")
    if isinstance(exc, OSError):
        return _fail(_os_error(exc))
    validation = _pydantic_message(exc)
    if validation is not None:
        return _fail(validation)
    if _debug():
        traceback.print_exception(exc, file=sys.stderr)
    first = first_line(str(exc), None)
    return _fail(f"unexpected {type(exc).__name__}: {first} "
                 f"(set {DEBUG_ENV}=1 for the traceback)", code=1)


def _debug() -> bool:
    from flywheel._core.settings import Settings

    return Settings.from_env().debug


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    return code


def _os_error(exc: OSError) -> str:
    reason = {FileNotFoundError: "no such file or folder",
              PermissionError: "permission denied",
              IsADirectoryError: "is a folder, not a file"}.get(type(exc))
    reason = reason or exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _pydantic_message(exc: BaseException) -> str | None:
    if "pydantic" not in sys.modules:  # nothing raised it; do not pay for the import
        return None
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return None
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"invalid value at {where}: {first['msg']}"


def _silence_stdout() -> None:
    # The reader went away (say, `| head`); make the interpreter's final flush quiet too.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


class _OneLine(logging.Handler):
    """Library log records as one line each (`warning: ...`), tracebacks only in debug."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = " ".join(record.getMessage().split())
            sys.stderr.write(f"{record.levelname.lower()}: {message}\n")
            if record.exc_info and _debug():
                traceback.print_exception(*record.exc_info, file=sys.stderr)
        except Exception:  # a log line must never break a command
            self.handleError(record)

