"""What a run ran on: Python, the platform, the versions of the packages that shape a
model, and the git commit of the project (with whether the work tree had changes)."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "flywheel-mlops", "numpy", "pandas", "polars", "pyarrow", "duckdb", "scipy",
    "scikit-learn", "lightgbm", "xgboost", "xgboost-cpu", "catboost", "torch", "tensorflow",
)
"""Distributions whose versions are recorded when installed."""
_GIT_TIMEOUT_S = 5.0
_GIT_REUSE_S = 1.0


@dataclass(frozen=True, slots=True)
class GitState:
    commit: str | None
    dirty: bool | None


@cache
def python_environment() -> dict[str, Any]:
    """Python, platform and package versions: fixed for the life of the process."""
    packages: dict[str, str] = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "executable": sys.executable,
        "packages": packages,
    }


def git_state(folder: Path) -> GitState:
    """HEAD's commit and whether tracked files differ from it; both None outside git."""
    commit = _git(folder, "rev-parse", "--verify", "HEAD")
    if commit is None:
        return GitState(None, None)
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return GitState(commit, None if status is None else status != "")


class GitProbe:
    """`git_state` of one folder, asked at most once a second: many runs started
    together (the steps of a pipeline) share one answer instead of two processes each."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._last: tuple[float, GitState] | None = None

    def state(self) -> GitState:
        now = time.monotonic()
        if self._last is None or now - self._last[0] > _GIT_REUSE_S:
            self._last = (now, git_state(self._folder))
        return self._last[1]


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              text=True, timeout=_GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git on this machine, or it hangs: the run is recorded without it
    return done.stdout.strip() if done.returncode == 0 else None
