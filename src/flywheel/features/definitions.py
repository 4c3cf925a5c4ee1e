"""Feature definitions, declared in a project's `definitions.py` with keyword arguments:

    user = Entity(name="user", join_keys=["user_id"])
    user_stats = FeatureView(name="user_stats", entities=[user], source="user_daily",
                             timestamp_column="day_end", ttl=timedelta(days=7),
                             features=["views", "carts"])
    purchase = FeatureService(name="purchase", features=["user_stats:views"])
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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


DTYPE_FAMILIES: dict[str, str] = {
    "int": "is_integer", "float": "is_floating", "decimal": "is_decimal",
    "string": "is_string", "bool": "is_boolean", "timestamp": "is_timestamp",
    "date": "is_date", "list": "is_list",
}
"""Type families a feature may declare; any Arrow type name (`int32`, `float64`) works too."""


@dataclass(frozen=True, kw_only=True)
class Feature:
    """A feature with a declared type, checked against its source column at `apply`."""

    name: str
    dtype: str | None = None
    """A family (int, float, decimal, string, bool, timestamp, date, list) or an Arrow type
    name (int64, float32, ...); None takes whatever the source column holds."""
    description: str = ""

    def __post_init__(self) -> None:
        if self.dtype is not None and self.dtype not in DTYPE_FAMILIES:
            import pyarrow as pa

            try:
                pa.type_for_alias(self.dtype)
            except ValueError:
                raise FeatureDefinitionError(
                    f"feature {self.name}: unknown type '{self.dtype}'",
                    hint=f"use one of {', '.join(DTYPE_FAMILIES)} or an Arrow type name "
                    "such as int64 or float32") from None

    def accepts(self, arrow_type: Any) -> bool:
        """Whether a source column of `arrow_type` fits the declared type."""
        if self.dtype is None:
            return True
        import pyarrow as pa

        family = DTYPE_FAMILIES.get(self.dtype)
        if family == "is_string":
            return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))
        if family == "is_list":
            return bool(pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type))
        if family is not None:
            return bool(getattr(pa.types, family)(arrow_type))
        return bool(arrow_type == pa.type_for_alias(self.dtype))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def parse_duration(value: str | float) -> dt.timedelta:
    """A TTL: seconds as a number, or a number with a unit (`90s`, `15m`, `12h`, `30d`, `2w`)."""
    if isinstance(value, bool):
        raise FeatureDefinitionError(f"'{value}' is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise FeatureDefinitionError(f"'{value}' is not a duration",
                                         hint="write seconds, or e.g. 90s, 15m, 12h, 30d, 2w")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 1e-6 <= seconds <= 1e12:  # also refuses NaN
        raise FeatureDefinitionError(f"duration '{value}' must be at least a microsecond "
                                     "and finite")
    return dt.timedelta(seconds=seconds)



@dataclass(frozen=True, kw_only=True)
class FeatureView:
    name: str
    entities: Sequence[Entity]
    source: str
    """A derived table (the name of a transform)."""
    features: Sequence[str | Feature]
    """Feature names (columns of the source), or `Feature`s with a declared type."""
    timestamp_column: str = "event_time"
    ttl: dt.timedelta | str | float | None = None
    """A value older than this at the requested time is treated as missing (null): a
    timedelta, seconds, or a duration as in features.yaml (`90s`, `15m`, `12h`, `30d`)."""
    created_column: str | None = None
    """Breaks ties between rows of one key and timestamp: the latest created wins."""
    description: str = ""
    owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    specs: tuple[Feature, ...] = field(init=False, repr=False, compare=False)
    """Every feature as a `Feature` (declared type or None); `features` holds the names."""

    def __post_init__(self) -> None:
        _name("feature view", self.name)
        object.__setattr__(self, "entities", tuple(self.entities))
        specs = tuple(f if isinstance(f, Feature) else Feature(name=f) for f in self.features)
        object.__setattr__(self, "specs", specs)
        object.__setattr__(self, "features", specs)
        if not self.entities or not self.features:
            raise FeatureDefinitionError(f"feature view {self.name} needs entities and features")
        if self.ttl is not None and not isinstance(self.ttl, dt.timedelta):
            object.__setattr__(self, "ttl", parse_duration(self.ttl))
        if isinstance(self.ttl, dt.timedelta) and self.ttl <= dt.timedelta(0):
            raise FeatureDefinitionError(f"feature view {self.name}: ttl must be positive")
        if len(set(self.feature_names)) != len(self.features):
            raise FeatureDefinitionError(f"feature view {self.name} lists a feature twice")

    @property
    def max_age(self) -> dt.timedelta | None:
        """`ttl` as a timedelta (the constructor turns a duration string into one)."""
        assert self.ttl is None or isinstance(self.ttl, dt.timedelta)
        return self.ttl

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(k for e in self.entities for k in e.join_keys)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.specs)


@dataclass(frozen=True, kw_only=True)
class OnDemandFeatureView:
    """Features computed from looked-up features and request data by one Python function,
    the same function offline (per training row) and online (per request)."""

    name: str
    sources: Sequence[str]
    """`view:feature` references the function reads."""
    features: Sequence[str]
    """The names of what the function returns."""
    function: Callable[[dict[str, Any]], dict[str, Any]]
    request: Sequence[str] = ()
    """Fields that come with the request (columns of entity_df offline)."""

    def __post_init__(self) -> None:
        _name("on-demand feature view", self.name)
        for attr in ("sources", "features", "request"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        if not self.features:
            raise FeatureDefinitionError(f"on-demand view {self.name} needs features")

    def apply(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        """Run the function over rows of inputs; one column per output feature."""
        out: dict[str, list[Any]] = {f: [] for f in self.features}
        for row in rows:
            try:
                result = self.function(row)
            except Exception as exc:
                raise FeatureDefinitionError(
                    f"on-demand view {self.name} raised {type(exc).__name__}: {exc}") from exc
            self._check_result(result)
            for feature in self.features:
                out[feature].append(result[feature])
        return out

    def _check_result(self, result: Any) -> None:
        """What the function returns must be what it declares: a missing key would be
        served as a null that looks found, an extra one silently dropped."""
        if not isinstance(result, dict):
            raise FeatureDefinitionError(
                f"on-demand view {self.name} returned {type(result).__name__}, not a dict",
                hint=f"return {{{', '.join(repr(f) for f in self.features)}: ...}}")
        if set(result) != set(self.features):
            missing = sorted(set(self.features) - set(result))
            extra = sorted(set(result) - set(self.features), key=str)
            said = "; ".join(part for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"undeclared {', '.join(map(str, extra))}" if extra else "") if part)
            raise FeatureDefinitionError(
                f"on-demand view {self.name} returned other keys than it declares ({said})",
                hint="make the function return exactly its declared features")


def on_demand(*, name: str | None = None, sources: Sequence[str], features: Sequence[str],
              request: Sequence[str] = ()) -> Callable[[Callable[[dict[str, Any]], dict[str, Any]]],
                                                       OnDemandFeatureView]:
    """Declare an on-demand feature view from a function of one row of inputs."""

    def wrap(function: Callable[[dict[str, Any]], dict[str, Any]]) -> OnDemandFeatureView:
        return OnDemandFeatureView(name=name or function.__name__, sources=sources,
                                   features=features, request=request, function=function)

    return wrap


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
class Plan:
    """What to look up ({view: [features]}), which on-demand views to run after, and which
    looked-up columns were asked for (the rest only feed on-demand views)."""

    lookups: dict[str, list[str]]
    on_demand: dict[str, list[str]]
    shown: list[str]


@dataclass(frozen=True, slots=True)
class FeatureRegistry:
    entities: dict[str, Entity]
    views: dict[str, FeatureView]
    services: dict[str, FeatureService]
    on_demand: dict[str, OnDemandFeatureView] = field(default_factory=dict)

    def plan(self, features: Sequence[str] | None = None,
             service: str | None = None) -> Plan:
        """Like `resolve`, and on-demand features pull in the features they read."""
        if (features is None) == (service is None):
            raise FeatureDefinitionError("pass either features=[...] or feature_service=...")
        if service is not None and service in self.services:
            features, service = self.services[service].features, None
        plain: list[str] = []
        demanded: dict[str, list[str]] = {}
        for ref in features or ():
            view_name, _, feature = ref.partition(":")
            odv = self.on_demand.get(view_name)
            if odv is None:
                plain.append(ref)
                continue
            names = list(odv.features) if feature == "*" else [feature]
            for name in names:
                if name not in odv.features:
                    raise FeatureDefinitionError(f"on-demand view {view_name} has no feature "
                                                 f"'{name}'")
            demanded.setdefault(view_name, []).extend(names)
        lookups = self.resolve(plain or None, service) if (plain or service) else {}
        shown = [f for fs in lookups.values() for f in fs]
        needed = self.resolve([s for v in demanded for s in self.on_demand[v].sources]) \
            if demanded else {}
        for view, names in needed.items():
            merged = lookups.setdefault(view, [])
            merged.extend(n for n in names if n not in merged)
        return Plan(lookups, demanded, shown)

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
            names = list(view.feature_names) if feature == "*" else [feature]
            for name in names:
                if name not in view.feature_names:
                    raise FeatureDefinitionError(f"feature view {view_name} has no feature "
                                                 f"'{name}'")
                if name not in chosen.setdefault(view_name, []):
                    chosen[view_name].append(name)
        return chosen
