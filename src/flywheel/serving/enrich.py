"""From a request to feature columns: entities enriched from the online store (the union
of the members' feature services, in one round trip), or raw instances as sent.

Entities the online store has no live value for are flagged per row (the views that had
none) and take the deployment's declared defaults, or are refused, naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flywheel._core.errors import FlywheelError
from flywheel.features.store import FeatureStore
from flywheel.serving.errors import BadPredictRequestError, MissingEntitiesError
from flywheel.serving.spec import DeploymentSpec

__all__ = ["Enricher", "Frame", "check_request"]

_MAX_ROWS = 10_000


@dataclass(slots=True)
class Frame:
    """Feature columns of one request's rows, with what each row lacked."""

    columns: dict[str, list[Any]]
    count: int
    missing: list[list[str]]
    entity_key: str | None
    entity_ids: list[str | None]

    def matrix(self, columns: Sequence[str], rows: Sequence[int] | None = None,
               ) -> np.ndarray:
        """The rows (default: all) as a float array in `columns` order (null -> NaN)."""
        chosen = range(self.count) if rows is None else rows
        try:
            picked = [self.columns[c] for c in columns]
        except KeyError as exc:
            raise BadPredictRequestError(f"no feature {exc.args[0]!r} in the request",
                                         hint="each instance needs every input column of "
                                         "the members") from None
        try:
            return np.array([[col[i] for col in picked] for i in chosen], dtype=float)
        except (TypeError, ValueError):
            bad = next(c for c, col in zip(columns, picked, strict=True)
                       if not all(_numeric(col[i]) for i in chosen))
            raise BadPredictRequestError(f"feature {bad!r} is not a number in every row",
                                         hint="models are scored on numeric features") \
                from None

    def feature_rows(self, columns: Sequence[str]) -> list[dict[str, Any]]:
        """Each row's values of `columns` (those it has), as JSON can carry them: built
        column by column, since this runs for every prediction logged."""
        names = [c for c in columns if c in self.columns]
        if not names:
            return [{} for _ in range(self.count)]
        picked = [_plain_column(self.columns[c]) for c in names]
        return [dict(zip(names, values, strict=True)) for values in zip(*picked, strict=True)]


def check_request(entities: Mapping[str, Sequence[Any]] | None,
                  instances: Sequence[Mapping[str, Any]] | None,
                  request_data: Mapping[str, Sequence[Any]] | None) -> int:
    """The request's row count, after the checks that need no store: one of entities or
    instances, even columns, at most `_MAX_ROWS` rows."""
    if (entities is None) == (instances is None):
        raise BadPredictRequestError("send either entities or instances",
                                     hint='e.g. {"entities": {"user_id": ["u1"]}}')
    if entities is not None:
        if not isinstance(entities, Mapping) or not entities:
            raise BadPredictRequestError("entities must map an entity key to its values",
                                         hint='e.g. {"user_id": ["u1", "u2"]}')
        lengths = set()
        for key, values in entities.items():
            if not isinstance(key, str) or isinstance(values, str | bytes) or not isinstance(
                    values, Sequence):
                raise BadPredictRequestError(f"entities[{key!r}] must be a list of values")
            lengths.add(len(values))
        if len(lengths) != 1:
            raise BadPredictRequestError("every entity key needs the same number of values")
        count = lengths.pop()
    else:
        assert instances is not None
        if isinstance(instances, str | bytes | Mapping) or not isinstance(instances, Sequence):
            raise BadPredictRequestError("instances must be a list of feature rows")
        if not all(isinstance(row, Mapping) for row in instances):
            raise BadPredictRequestError("each instance must map feature names to values")
        count = len(instances)
    if count == 0:
        raise BadPredictRequestError("nothing to predict: no rows in the request")
    if count > _MAX_ROWS:
        raise BadPredictRequestError(f"{count} rows in one request; at most {_MAX_ROWS}")
    for key, values in (request_data or {}).items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or len(
                values) != count:
            raise BadPredictRequestError(f"request_data[{key!r}] needs one value per row "
                                         f"({count})")
    return count


class Enricher:
    """The reads of one deployment: which features, which defaults, which entity key."""

    def __init__(self, *, spec: DeploymentSpec, features: FeatureStore,
                 services: Sequence[str]) -> None:
        self._spec = spec
        self._features = features
        registry = features.registry
        unknown = [s for s in services if s not in registry.services]
        if unknown:
            raise BadPredictRequestError(f"deployment {spec.name}: no feature service "
                                         f"{', '.join(unknown)}")
        refs: list[str] = []
        for service in services:
            refs.extend(r for r in registry.services[service].features if r not in refs)
        self._refs = refs
        self._by_view = registry.plan(refs).lookups if refs else {}

    def entities(self, entities: Mapping[str, Sequence[Any]],
                 request_data: Mapping[str, Sequence[Any]] | None, count: int) -> Frame:
        if not self._refs:
            raise BadPredictRequestError(f"deployment {self._spec.name} reads no feature "
                                         "service: send instances (feature rows)")
        try:
            answer = self._features.get_online_features(
                entities=entities, features=self._refs, request_data=request_data)
        except FlywheelError as exc:
            raise BadPredictRequestError(f"deployment {self._spec.name}: {exc.message}",
                                         hint=exc.hint) from None
        columns = answer.columns
        missing: list[list[str]] = [[] for _ in range(count)]
        for view, found in answer.found.items():
            for row, live in enumerate(found):
                if not live:
                    missing[row].append(view)
        keys = list(entities)
        ids = [",".join(_text(entities[k][i]) for k in keys) for i in range(count)]
        if any(missing):
            self._default(columns, missing, ids)
        return Frame(columns, count, missing, self._spec.entity or ",".join(keys), list(ids))

    def _default(self, columns: dict[str, list[Any]], missing: list[list[str]],
                 ids: list[str]) -> None:
        spec = self._spec
        if spec.on_missing == "refuse":
            raise MissingEntitiesError(spec.name, [ids[i] for i, m in enumerate(missing) if m])
        for row, views in enumerate(missing):
            for view in views:
                for feature in self._by_view.get(view, ()):
                    if feature in columns:
                        columns[feature][row] = spec.defaults.get(feature)

    def instances(self, instances: Sequence[Mapping[str, Any]], count: int) -> Frame:
        names: dict[str, None] = {}
        for row in instances:
            names.update(dict.fromkeys(row))
        columns = {n: [row.get(n) for row in instances] for n in names}
        key = self._spec.entity
        ids: list[str | None] = ([None if v is None else _text(v) for v in columns[key]]
                                 if key is not None and key in columns else [None] * count)
        return Frame(columns, count, [[] for _ in range(count)],
                     key if key in columns else None, ids)


def _numeric(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool)) \
        or isinstance(value, bool | np.number)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _plain_column(values: list[Any]) -> list[Any]:
    """`values` with NaN as None and numpy scalars as Python values; the column itself
    when it needs neither. One C-level sum tells for the usual column (ints and finite
    floats, as the stores answer): a NaN makes it NaN, a numpy scalar makes it numpy,
    anything else (strings, None) refuses it."""
    try:
        total = sum(values)
    except TypeError:
        return [_plain(v) for v in values]
    if type(total) in (int, float) and total == total:
        return values
    return [_plain(v) for v in values]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None  # NaN is not JSON
    return value.item() if isinstance(value, np.generic) else value
