"""The model registry: model versions, aliases with an audit trail, packaging and loading."""

from __future__ import annotations

from flywheel.registry.store import LoadedModel, ModelNotFoundError, ModelRegistry, ModelVersion
from flywheel.registry.uri import ModelUri, parse_uri

__all__ = [
    "LoadedModel",
    "ModelNotFoundError",
    "ModelRegistry",
    "ModelUri",
    "ModelVersion",
    "parse_uri",
]
