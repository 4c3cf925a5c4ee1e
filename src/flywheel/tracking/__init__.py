"""Experiment tracking: runs with params, metrics, tags, artifacts and what they read."""

from __future__ import annotations

from flywheel.tracking.kinds import Kind, register_kind
from flywheel.tracking.query import format_filter, parse_filter, parse_order
from flywheel.tracking.run import Run
from flywheel.tracking.store import RunInfo, RunNotFoundError, RunStore

__all__ = [
    "Kind",
    "Run",
    "RunInfo",
    "RunNotFoundError",
    "RunStore",
    "format_filter",
    "parse_filter",
    "parse_order",
    "register_kind",
]
