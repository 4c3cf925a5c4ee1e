"""The error of a transform definition that cannot be used."""

from __future__ import annotations

from flywheel._core.errors import FlywheelError


class TransformDefinitionError(FlywheelError):
    """A transform is malformed, or its inputs do not form a valid DAG."""
