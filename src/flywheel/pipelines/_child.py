"""What runs inside a step's own process: import the step by reference, call it, answer.

A fresh interpreter (`python -m flywheel.pipelines._child`), not a multiprocessing child:
nothing of the caller's main script runs again in it. Kept to the standard library and
the project-file importer, so that it starts fast.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
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


def main() -> None:
    """`python -m flywheel.pipelines._child`: a pickled (sys.path, ref, kwargs) on stdin,
    a pickled ("ok", value, "") or ("error", message, traceback) on stdout."""
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what the step prints goes to stderr, not into the answer
    try:
        path, ref, kwargs = pickle.load(sys.stdin.buffer)
        sys.path[:] = path
        value = ref.load()(**kwargs)
    except BaseException as exc:
        reply: tuple[str, Any, str] = ("error", one_line(exc), traceback.format_exc())
    else:
        reply = ("ok", value, "")
    try:
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        data = pickle.dumps(("error", f"its output cannot be sent back: {one_line(exc)}", ""))
    answer.write(data)
    answer.close()


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


if __name__ == "__main__":
    main()
