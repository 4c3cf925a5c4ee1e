"""Models in production, free of HTTP: deployments, routing policies, micro-batching, the
prediction log and batch scoring. The HTTP routes that expose them live in `flywheel.api`.

The public names are imported on first use: numpy and the model libraries load only when
something is served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "BadPredictRequestError",
    "Deployment",
    "DeploymentSpec",
    "DeploymentSpecError",
    "Deployments",
    "MemberSpec",
    "MemberState",
    "MissingEntitiesError",
    "PredictionBatch",
    "PredictionRow",
    "UnknownDeploymentError",
    "UnknownPredictionError",
]

_LAZY = {
    "Deployment": "flywheel.serving.deployment",
    "Deployments": "flywheel.serving.deployments",
    "BadPredictRequestError": "flywheel.serving.errors",
    "DeploymentSpecError": "flywheel.serving.errors",
    "MissingEntitiesError": "flywheel.serving.errors",
    "UnknownDeploymentError": "flywheel.serving.errors",
    "UnknownPredictionError": "flywheel.serving.errors",
    "MemberState": "flywheel.serving.results",
    "PredictionBatch": "flywheel.serving.results",
    "PredictionRow": "flywheel.serving.results",
    "DeploymentSpec": "flywheel.serving.spec",
    "MemberSpec": "flywheel.serving.spec",
}

if TYPE_CHECKING:
    from flywheel.serving.deployment import Deployment
    from flywheel.serving.deployments import Deployments
    from flywheel.serving.errors import (
        BadPredictRequestError,
        DeploymentSpecError,
        MissingEntitiesError,
        UnknownDeploymentError,
        UnknownPredictionError,
    )
    from flywheel.serving.results import MemberState, PredictionBatch, PredictionRow
    from flywheel.serving.spec import DeploymentSpec, MemberSpec


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'flywheel.serving' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
