"""Errors of pipelines: a bad definition or run spec (exit 2), a step that failed (exit 1)."""

from __future__ import annotations

from typing import Any

from flywheel._core.errors import FlywheelError


class PipelineError(FlywheelError):
    """A pipeline, its run spec or its params are wrong; nothing has run."""


class StepFailedError(FlywheelError):
    """A step raised, or its process died. The run is recorded and can be resumed."""

    http_status = 500

    def __init__(self, message: str, *, run_id: str, step: str, run: Any = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint or f"fix it, then `flywheel run --resume {run_id}`")
        self.run_id = run_id
        self.step = step
        self.run = run
        """The `PipelineRun` as far as it went."""


class EmptyTrainingSetError(PipelineError):
    """The training data gave no rows: the run is recorded as failed, no step ran."""

    def __init__(self, message: str, *, run_id: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.run_id = run_id
