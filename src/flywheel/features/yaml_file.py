"""Feature definitions in YAML (`features.yaml`), for teams that keep them out of Python:

    entities:
      - {name: user, join_keys: [user_id]}
    feature_views:
      - name: visits
        entities: [user]
        source: user_visits
        ttl: 30d
        features: [pages, {name: seconds, dtype: float}]
    feature_services:
      - {name: score, features: ["visits:*"]}

The same classes as `definitions.py` come out, so the same checks apply; on-demand views
need a function and live in `definitions.py` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flywheel._core.text import read_yaml
from flywheel.features.definitions import (
    Entity,
    Feature,
    FeatureDefinitionError,
    FeatureService,
    FeatureView,
    parse_duration,
)

YAML_FILE = "features.yaml"
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Entity(_Strict):
    name: str
    join_keys: list[str]
    description: str = ""


class _Feature(_Strict):
    name: str
    dtype: str | None = None
    description: str = ""


class _View(_Strict):
    name: str
    entities: list[str]
    source: str
    features: list[str | _Feature]
    timestamp_column: str = "event_time"
    ttl: str | float | None = None
    created_column: str | None = None
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class _Service(_Strict):
    name: str
    features: list[str]
    description: str = ""


class _File(_Strict):
    entities: list[_Entity] = Field(default_factory=list)
    feature_views: list[_View] = Field(default_factory=list)
    feature_services: list[_Service] = Field(default_factory=list)


Declared = tuple[list[Entity], list[FeatureView], list[FeatureService]]


def load_yaml(path: Path) -> Declared:
    """The entities, views and services of a `features.yaml`; every mistake is one line
    naming the file and the place in it."""

    raw: Any = read_yaml(path, FeatureDefinitionError) or {}
    try:
        spec = _File.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise FeatureDefinitionError(f"{path}: {where}: {first['msg']}") from None
    try:
        return _build(spec)
    except FeatureDefinitionError as exc:
        raise FeatureDefinitionError(f"{path}: {exc.message}", hint=exc.hint) from None


def _build(spec: _File) -> Declared:
    entities = {e.name: Entity(name=e.name, join_keys=e.join_keys, description=e.description)
                for e in spec.entities}
    views = []
    for v in spec.feature_views:
        unknown = [name for name in v.entities if name not in entities]
        if unknown:
            raise FeatureDefinitionError(f"feature view {v.name}: no entity named "
                                         f"{', '.join(unknown)}",
                                         hint="declare it under entities:")
        features = [f if isinstance(f, str) else
                    Feature(name=f.name, dtype=f.dtype, description=f.description)
                    for f in v.features]
        views.append(FeatureView(
            name=v.name, entities=[entities[name] for name in v.entities], source=v.source,
            features=features, timestamp_column=v.timestamp_column,
            ttl=None if v.ttl is None else parse_duration(v.ttl),
            created_column=v.created_column, description=v.description, owner=v.owner,
            tags=v.tags))
    services = [FeatureService(name=s.name, features=s.features, description=s.description)
                for s in spec.feature_services]
    return list(entities.values()), views, services
