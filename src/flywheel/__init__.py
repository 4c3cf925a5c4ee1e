"""Flywheel: the whole loop of a production ML system in one package.

`import flywheel` stays fast: the public names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flywheel._core.version import VERSION as __version__

__all__ = [
    "BadRowsAlert",
    "Deployment",
    "Deployments",
    "FlywheelError",
    "IngestError",
    "IngestResult",
    "PredictionBatch",
    "PredictionRow",
    "Project",
    "__version__",
]

_LAZY = {
    "Project": "flywheel.project",
    "IngestResult": "flywheel.ingest.result",
    "IngestError": "flywheel.ingest.result",
    "FlywheelError": "flywheel._core.errors",
    "BadRowsAlert": "flywheel.ingest.alerts",
    "Deployment": "flywheel.serving.deployment",
    "Deployments": "flywheel.serving.deployments",
    "PredictionBatch": "flywheel.serving.results",
    "PredictionRow": "flywheel.serving.results",
}

if TYPE_CHECKING:
    from flywheel._core.errors import FlywheelError
    from flywheel.ingest.alerts import BadRowsAlert
    from flywheel.ingest.result import IngestError, IngestResult
    from flywheel.project import Project
    from flywheel.serving.deployment import Deployment
    from flywheel.serving.deployments import Deployments
    from flywheel.serving.results import PredictionBatch, PredictionRow


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'flywheel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
