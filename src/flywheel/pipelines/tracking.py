"""What the runner needs of experiment tracking: the shape of `flywheel.tracking.Run`.

A pipeline run is one tracking run; each step is a child run of it (`parent_id`), with
the step's params, its status and cache hit as tags, its duration as a metric, and the
digest of its output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Run(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_artifact(self, name: str, value: Any, *, kind: str | None = None) -> str: ...

    def log_inputs(self, table_versions: Mapping[str, int]) -> None: ...

    def finish(self, status: str = "finished") -> None: ...


class StartRun(Protocol):
    def __call__(self, name: str, *, parent_id: str | None = None,
                 tags: Mapping[str, str] | None = None) -> Run: ...
