"""What runs inside a step's own process: import the step by reference, call it, answer.

Kept to the standard library (and the project-file importer) so that a child starts fast.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel._core.modules import import_file
from flywheel.pipelines.errors import PipelineError

PROJECT_PREFIX = "flywheel_pipeline"
"""Module-name prefix of project files imported by path (`pipelines/train.py`)."""


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """Where a function can be imported from in another interpreter."""

    module: str
    file: str | None
    qualname: str

    @classmethod
    def of(cls, function: Callable[..., Any]) -> FunctionRef:
        code = getattr(function, "__code__", None)
        return cls(getattr(function, "__module__", "") or "",
                   code.co_filename if code is not None else None,
                   getattr(function, "__qualname__", ""))

    def load(self) -> Callable[..., Any]:
        if self.module.startswith(PROJECT_PREFIX) and self.file:
            module: Any = import_file(Path(self.file), PROJECT_PREFIX, PipelineError)
        else:
            module = importlib.import_module(self.module)
        target: Any = module
        for part in self.qualname.split("."):
            target = getattr(target, part)
        return target  # type: ignore[no-any-return]


def run_child(conn: Any, ref: FunctionRef, kwargs: dict[str, Any]) -> None:
    """Call the step and send ("ok", value, "") or ("error", message, traceback)."""
    try:
        value = ref.load()(**kwargs)
    except BaseException as exc:
        conn.send(("error", _one_line(exc), traceback.format_exc()))
        return
    try:
        conn.send(("ok", value, ""))
    except Exception as exc:
        conn.send(("error", f"its output cannot be sent back: {_one_line(exc)}", ""))
    finally:
        conn.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
