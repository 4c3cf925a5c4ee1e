"""A project's feature definitions: `definitions.py` and `features.yaml`, read into one
registry, each name once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel._core.modules import import_file
from flywheel.features.definitions import (
    Entity,
    FeatureDefinitionError,
    FeatureRegistry,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)
from flywheel.features.yaml_file import YAML_FILE, load_yaml

DEFINITIONS_FILE = "definitions.py"


def load_definitions(folder: Path) -> FeatureRegistry:
    """Every Entity, FeatureView, FeatureService and on-demand view bound at the top of
    `folder/definitions.py`, plus those of `folder/features.yaml`; a name declared twice
    is an error."""
    found: list[Any] = []
    path = folder / DEFINITIONS_FILE
    if path.is_file():
        module = import_file(path, "flywheel_definitions", FeatureDefinitionError)
        found += list(vars(module).values())
    if (folder / YAML_FILE).is_file():
        entities, views, services = load_yaml(folder / YAML_FILE)
        found += [*entities, *views, *services]
    registry = FeatureRegistry(
        _unique("entity", [e for e in found if isinstance(e, Entity)]),
        _unique("feature view", [v for v in found if isinstance(v, FeatureView)]),
        _unique("feature service", [s for s in found if isinstance(s, FeatureService)]),
        _unique("on-demand view", [o for o in found if isinstance(o, OnDemandFeatureView)]))
    clash = set(registry.views) & set(registry.on_demand)
    if clash:
        raise FeatureDefinitionError(f"{', '.join(sorted(clash))} is both a feature view and "
                                     "an on-demand view")
    for service in registry.services.values():
        registry.plan(features=service.features)  # every reference must resolve
    for odv in registry.on_demand.values():
        registry.resolve(features=odv.sources)
    return registry


def _unique(kind: str, items: list[Any]) -> dict[str, Any]:
    """By name; one object bound to two names in definitions.py is the same definition,
    two different definitions of one name (say, in both files) are an error."""
    named: dict[str, Any] = {}
    for item in items:
        other = named.setdefault(item.name, item)
        if other is not item and other != item:
            raise FeatureDefinitionError(f"{kind} '{item.name}' is declared twice",
                                         hint="in definitions.py and features.yaml, or "
                                         "twice in one of them; keep one")
    return named
