"""Importing a project's Python files (transforms, definitions) by path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from flywheel._core.errors import FlywheelError


def import_file(path: Path, prefix: str, error: type[FlywheelError]) -> ModuleType:
    """Run `path` as a module; a failure becomes one line of `error`."""
    module_name = f"{prefix}_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise error(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except FlywheelError:
        raise
    except Exception as exc:
        raise error(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    return module
