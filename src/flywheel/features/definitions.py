"""Feature definitions, declared in a project's `definitions.py` with keyword arguments:

    user = Entity(name="user", join_keys=["user_id"])
    user_stats = FeatureView(name="user_stats", entities=[user], source="user_daily",
                             timestamp_column="day_end", ttl=timedelta(days=7),
                             features=["views", "carts"])
    purchase = FeatureService(name="purchase", features=["user_stats:views"])
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flywheel._core.errors import FlywheelError

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class FeatureDefinitionError(FlywheelError):
    """A feature definition is malformed or does not fit its source table."""


def _name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise FeatureDefinitionError(f"{kind} name '{name}' must be lowercase letters, digits "
                                     "and underscores, starting with a letter")
    return name


@dataclass(frozen=True, kw_only=True)
class Entity:
    name: str
    join_keys: Sequence[str]
    description: str = ""

    def __post_init__(self) -> None:
        _name("entity", self.name)
        object.__setattr__(self, "join_keys", tuple(self.join_keys))
        if not self.join_keys:
            raise FeatureDefinitionError(f"entity {self.name} needs at least one join key")


@dataclass(frozen=True, kw_only=True)
class FeatureView:
    name: str
    entities: Sequence[Entity]
    source: str
    """A derived table (the name of a transform)."""
    features: Sequence[str]
    timestamp_column: str = "event_time"
    ttl: dt.timedelta | None = None
    """A value older than this at the requested time is treated as missing (null)."""
    created_column: str | None = None
    """Breaks ties between rows of one key and timestamp: the latest created wins."""
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _name("feature view", self.name)
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "features", tuple(self.features))
        if not self.entities or not self.features:
            raise FeatureDefinitionError(f"feature view {self.name} needs entities and features")
        if self.ttl is not None and self.ttl <= dt.timedelta(0):
            raise FeatureDefinitionError(f"feature view {self.name}: ttl must be positive")
        if len(set(self.features)) != len(self.features):
            raise FeatureDefinitionError(f"feature view {self.name} lists a feature twice")

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(k for e in self.entities for k in e.join_keys)


@dataclass(frozen=True, kw_only=True)
class FeatureService:
    name: str
    features: Sequence[str]
    """`view:feature` references (or `view:*` for every feature of a view)."""
    description: str = ""

    def __post_init__(self) -> None:
        _name("feature service", self.name)
        object.__setattr__(self, "features", tuple(self.features))


@dataclass(frozen=True, slots=True)
class FeatureRegistry:
    entities: dict[str, Entity]
    views: dict[str, FeatureView]
    services: dict[str, FeatureService]

    def resolve(self, features: Sequence[str] | None = None,
                service: str | None = None) -> dict[str, list[str]]:
        """`view:feature` references (or a service's) -> {view: [features]}, checked."""
        if (features is None) == (service is None):
            raise FeatureDefinitionError("pass either features=[...] or feature_service=...")
        if service is not None:
            if service not in self.services:
                raise FeatureDefinitionError(f"no feature service named '{service}'",
                                             hint="`flywheel features list` shows them")
            features = self.services[service].features
        chosen: dict[str, list[str]] = {}
        for ref in features or ():
            view_name, sep, feature = ref.partition(":")
            view = self.views.get(view_name)
            if not sep or view is None:
                raise FeatureDefinitionError(
                    f"'{ref}' is not a feature reference", hint="write view:feature; "
                    f"views: {', '.join(sorted(self.views)) or 'none'}")
            names = list(view.features) if feature == "*" else [feature]
            for name in names:
                if name not in view.features:
                    raise FeatureDefinitionError(f"feature view {view_name} has no feature "
                                                 f"'{name}'")
                if name not in chosen.setdefault(view_name, []):
                    chosen[view_name].append(name)
        return chosen


def load_definitions(path: Path) -> FeatureRegistry:
    """Every Entity, FeatureView and FeatureService bound at the top of `path`."""
    if not path.is_file():
        return FeatureRegistry({}, {}, {})
    module_name = f"flywheel_definitions_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FeatureDefinitionError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except FlywheelError:
        raise
    except Exception as exc:
        raise FeatureDefinitionError(f"{path}: importing it failed: "
                                     f"{type(exc).__name__}: {exc}") from exc
    found = list(vars(module).values())
    registry = FeatureRegistry(
        {e.name: e for e in found if isinstance(e, Entity)},
        {v.name: v for v in found if isinstance(v, FeatureView)},
        {s.name: s for s in found if isinstance(s, FeatureService)})
    for service in registry.services.values():
        registry.resolve(features=service.features)  # every reference must resolve
    return registry
