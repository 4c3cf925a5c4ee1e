"""`project.registry`: model versions registered from runs, aliases with an audit trail,
and loading a model by URI as an object with `predict(frame)`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flywheel._core.artifacts import ArtifactStore
from flywheel._core.errors import FlywheelError, InputError
from flywheel._core.hashing import canonical_json
from flywheel._core.metadata.models import AliasChange, ModelStore, ModelVersionRecord
from flywheel._core.metadata.table_versions import TableVersions
from flywheel.registry.flavors import detect_flavor, input_columns, predict
from flywheel.registry.from_run import (
    check_service,
    columns_or_none,
    finished_run,
    metrics_of,
    run_lineage,
    run_model,
    trained_on,
)
from flywheel.registry.uri import ModelUri, check_alias, check_name, parse_uri
from flywheel.tracking import RunInfo, RunStore
from flywheel.tracking.kinds import pickled, unpickled


class ModelNotFoundError(FlywheelError):
    http_status = 404


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version: its artifact, signature, metrics, lineage and aliases."""

    name: str
    version: int
    run_id: str | None
    artifact_sha256: str
    flavor: str
    signature: dict[str, Any]
    metrics: dict[str, float]
    lineage: dict[str, Any]
    created_at: dt.datetime | None
    aliases: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model ready to predict: `predict(frame)` takes Arrow, pandas, Polars or a dict."""

    version: ModelVersion
    model: Any

    def predict(self, frame: Any) -> Any:
        return predict(self.model, self.version.flavor, frame,
                       self.version.signature.get("inputs"))


class ModelRegistry:
    """Versions, aliases (with who moved them, when and why) and loading by URI."""

    def __init__(self, models: Callable[[], ModelStore], versions: Callable[[], TableVersions],
                 artifacts: Callable[[], ArtifactStore], runs: RunStore,
                 service_columns: Callable[[str], list[str]]) -> None:
        self._models = models
        self._versions = versions
        """Table versions, to trace a run's training data down to log offsets."""
        self._artifacts = artifacts
        self._runs = runs
        self._service_columns = service_columns

    def register(self, name: str, *, run_id: str | None = None, artifact: str | None = None,
                 model: Any = None, feature_service: str | None = None,
                 output_schema: Mapping[str, Any] | None = None,
                 metrics: Mapping[str, float] | None = None,
                 inputs: list[str] | None = None, alias: str | None = None) -> ModelVersion:
        """Register the next version of `name`: a model object, or from a finished run
        (an id or a unique prefix) its pickled `artifact`, by default its one artifact
        with `predict` (a pipeline's model step). From a run, the feature service
        defaults to its training data's, metrics to its own (bookkeeping left out), and
        lineage follows every table version it read down to log offsets. `alias` points
        an alias (say `challenger`) at the new version, audited like `set_alias`."""
        check_name(name)
        if alias is not None:
            check_alias(alias)  # before anything is stored
        if artifact is not None and model is not None:
            raise InputError("pass artifact=NAME (of the run) or model=OBJECT, not both")
        if run_id is None and model is None:
            raise InputError("pass run_id= (the model is one of its artifacts) or "
                             "model=OBJECT", hint="e.g. register('purchase', run_id=run.id)")
        run = finished_run(self._runs, run_id) if run_id is not None else None
        if model is None:
            assert run is not None
            chosen = run_model(self._runs, run, artifact)
            digest, model, artifact = chosen.sha256, chosen.model, chosen.artifact
        else:
            digest = self._artifacts().put_bytes(pickled(model))
        flavor = detect_flavor(model)
        columns = inputs if inputs is not None else input_columns(model, flavor)
        signature = self._signature(run, feature_service, columns, output_schema)
        chosen_metrics = dict(metrics) if metrics is not None else (
            metrics_of(run) if run is not None else {})
        record = ModelVersionRecord(
            name=name, version=0, run_id=run.id if run else None, artifact_sha256=digest,
            flavor=flavor, signature=_json(signature, "signature"),
            metrics=_json({k: float(v) for k, v in chosen_metrics.items()}, "metrics"),
            lineage=_json(run_lineage(self._versions, run, artifact) if run else {},
                          "lineage"))
        added = self._version(self._models().add_model_version(record), {})
        if alias is None:
            return added
        source = f"run {run.id}" if run is not None else "an object"
        self.set_alias(name, alias, version=added.version,
                       reason=f"registered from {source}")
        return dataclasses.replace(added, aliases=[alias])

    def _signature(self, run: RunInfo | None, given: str | None, inputs: list[str] | None,
                   output_schema: Mapping[str, Any] | None) -> dict[str, Any]:
        """The model's input contract. A service other than the training data's must
        serve what the model read; both are kept."""
        trained = trained_on(run) if run is not None else None
        service = given if given is not None else trained
        columns = self._service_columns(service) if service is not None else None
        if given is not None and trained is not None and given != trained:
            assert columns is not None
            check_service(given, columns, trained,
                          columns_or_none(self._service_columns, trained), inputs)
        return {"feature_service": service, "features": columns, "inputs": inputs,
                "output_schema": dict(output_schema) if output_schema else None,
                "trained_on": trained}

    def set_alias(self, name: str, alias: str, *, version: int, reason: str | None = None,
                  actor: str | None = None) -> AliasChange:
        """Point `name@alias` at `version`; the change is kept in the audit trail."""
        check_name(name)
        check_alias(alias)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InputError(f"version {version!r} is not a version number")
        return self._models().set_alias(name, alias, version, reason=reason,
                                          actor=actor or _actor())

    def remove_alias(self, name: str, alias: str, *, reason: str | None = None,
                     actor: str | None = None) -> AliasChange:
        return self._models().set_alias(check_name(name), check_alias(alias), None,
                                          reason=reason, actor=actor or _actor())

    def aliases_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Every alias change of a model, oldest first: when, from, to, why, by whom."""
        return self._models().alias_history(check_name(name), alias)

    def alias_versions(self, names: Iterable[str] | None = None,
                       ) -> dict[tuple[str, str], int]:
        """(model, alias) -> version, of these models (default: all): one small query,
        cheap enough to poll."""
        every = self._models().aliases()
        if names is None:
            return every
        wanted = set(names)
        return {key: version for key, version in every.items() if key[0] in wanted}

    def newest_version(self, name: str) -> int | None:
        records = self._models().model_versions(check_name(name))
        return records[-1].version if records else None

    def models(self) -> dict[str, list[ModelVersion]]:
        """Every model's versions, oldest first."""
        store = self._models()
        aliases = store.aliases()
        found: dict[str, list[ModelVersion]] = {}
        for record in store.model_versions():
            found.setdefault(record.name, []).append(self._version(record, aliases))
        return found

    def versions(self, name: str) -> list[ModelVersion]:
        store = self._models()
        records = store.model_versions(check_name(name))
        if not records:
            raise self._unknown(name)
        aliases = store.aliases(name)
        return [self._version(record, aliases) for record in records]

    def get(self, uri: str | ModelUri) -> ModelVersion:
        """The version a URI names: `name@alias`, `name/version` or `name` (the newest)."""
        target = uri if isinstance(uri, ModelUri) else parse_uri(uri)
        store = self._models()
        aliases = store.aliases(target.name)
        version = target.version
        if target.alias is not None:
            version = aliases.get((target.name, target.alias))
            if version is None:
                raise ModelNotFoundError(f"model '{target.name}' has no alias "
                                         f"'{target.alias}'",
                                         hint=f"see `flywheel models show {target.name}`")
        if version is None:
            return self.versions(target.name)[-1]
        record = store.get_model_version(target.name, version)
        if record is None:
            raise ModelNotFoundError(f"model '{target.name}' has no version {version}",
                                     hint=f"see `flywheel models show {target.name}`")
        return self._version(record, aliases)

    def load(self, uri: str | ModelUri) -> LoadedModel:
        """The model a URI names, its bytes verified by sha256 before they are unpickled."""
        version = self.get(uri)
        return LoadedModel(version, unpickled(self._artifacts().get_bytes(
            version.artifact_sha256)))

    def _version(self, record: ModelVersionRecord,
                 aliases: Mapping[tuple[str, str], int]) -> ModelVersion:
        return ModelVersion(
            name=record.name, version=record.version, run_id=record.run_id,
            artifact_sha256=record.artifact_sha256, flavor=record.flavor,
            signature=json.loads(record.signature), metrics=json.loads(record.metrics),
            lineage=json.loads(record.lineage), created_at=record.created_at,
            aliases=sorted(alias for (name, alias), version in aliases.items()
                           if name == record.name and version == record.version))

    @staticmethod
    def _unknown(name: str) -> ModelNotFoundError:
        return ModelNotFoundError(f"no model '{name}'", hint="see `flywheel models list`")


def _json(value: Any, what: str) -> str:
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the model's {what} is not JSON: {exc}") from None


def _actor() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None  # no user name in this environment (a container without one)
