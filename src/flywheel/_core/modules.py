"""Importing a project's Python files (transforms, definitions, pipelines) by path."""

from __future__ import annotations

import importlib.util
import io
import sys
import tokenize
from pathlib import Path
from types import ModuleType

from flywheel._core.errors import FlywheelError
from flywheel._core.text import decode_text


def import_file(path: Path, prefix: str, error: type[FlywheelError]) -> ModuleType:
    """Run `path` as a module; a failure becomes one line of `error`."""
    check_source(path, error)
    module_name = f"{prefix}_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise error(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, FlywheelError | KeyboardInterrupt):
            raise
        raise import_error(path, exc, error) from exc
    return module


def check_source(path: Path, error: type[FlywheelError]) -> str:
    """The text of a Python file, refused in one line when Python could not read it: bytes
    that are not its encoding (UTF-8 unless a coding line says otherwise) or a NUL byte."""
    data = path.read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:  # not UTF-8 without a coding line, or a bad coding line
        decode_text(data, path, error)  # the first: say which byte, as for any file
        raise error(f"{path}: {exc}", hint="save it as UTF-8 and drop the coding line"
                    ) from None
    text = decode_text(data, path, error, "utf-8" if encoding == "utf-8-sig" else encoding)
    if "\0" in text:
        raise error(f"{path} holds a NUL byte (at character {text.index(chr(0))}), so it "
                    "is not Python source", hint="is it a binary file?")
    return text


def import_error(path: Path, exc: BaseException,
                 error: type[FlywheelError]) -> FlywheelError:
    """One line for an exception raised while importing the file at `path`."""
    if isinstance(exc, SyntaxError):
        where = exc.filename or str(path)
        return error(f"{where}:{exc.lineno}: {exc.msg}", hint="fix the module")
    if isinstance(exc, MemoryError | RecursionError):  # the parser's and compiler's stacks
        return error(f"{path}: nested too deeply for Python to compile",
                     hint="split the expression or the nested blocks")
    if isinstance(exc, SystemExit):
        return error(f"{path}: importing it called exit({exc.code!r})",
                     hint="a module that defines things must not exit when imported")
    return error(f"{path}: importing it failed: {type(exc).__name__}: {exc}")
