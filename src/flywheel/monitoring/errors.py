"""What a monitors file can get wrong: one line naming the file and the place."""

from __future__ import annotations

from flywheel._core.errors import InputError

__all__ = ["MonitorSpecError"]


class MonitorSpecError(InputError):
    """A `monitors.yaml` (or `monitors.py`) that cannot be evaluated as written."""
