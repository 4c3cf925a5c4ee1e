"""What a run records about its training data and its own bookkeeping, read back by the
registry: the feature service and the entity rows' source (the `flywheel.training_data`
tag), and which metrics only count things (`flywheel.bookkeeping_metrics`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flywheel._core.hashing import canonical_json

TRAINING_DATA_TAG = "flywheel.training_data"
"""Canonical JSON: feature_service, entities {kind, text, tables}, feature_tables, rows,
and for a pipeline run its window (start, end) and the spec's `entities` text."""
BOOKKEEPING_TAG = "flywheel.bookkeeping_metrics"
"""Comma-separated metric keys that count or time the run itself, not the model."""
_STEP_STATUSES = ("pending", "running", "ran", "cached", "reused", "failed")


def training_tags(lineage: Mapping[str, Any]) -> dict[str, str]:
    """The tag that records a training set's lineage (see `HistoricalFeatures.lineage`)."""
    return {TRAINING_DATA_TAG: canonical_json(dict(lineage))}


def bookkeeping_tags(keys: list[str]) -> dict[str, str]:
    return {BOOKKEEPING_TAG: ",".join(sorted(keys))}


def training_data(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """The recorded training data of a run, or None when it recorded none (or it cannot
    be read: a tag someone else wrote)."""
    text = tags.get(TRAINING_DATA_TAG)
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def model_metrics(metrics: Mapping[str, float], tags: Mapping[str, str]) -> dict[str, float]:
    """A run's metrics without its bookkeeping (step counts, step durations)."""
    listed = tags.get(BOOKKEEPING_TAG)
    if listed is not None:
        skipped = set(listed.split(","))
    elif tags.get("flywheel.kind") == "pipeline":  # recorded before the tag existed
        skipped = {f"steps_{status}" for status in _STEP_STATUSES}
    elif "flywheel.step" in tags:
        skipped = {"seconds"}
    else:
        skipped = set()
    return {key: value for key, value in metrics.items() if key not in skipped}
