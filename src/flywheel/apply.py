"""`flywheel apply`: check every definition of a project folder, then register what is new.

Everything is checked before anything is registered: schemas (valid JSON Schema, the
versioning rules against what is registered), the transform DAG (cycles, missing
inputs), feature definitions against their source tables, deployments against the model
registry. The schemas Flywheel ships (predictions, feedback) are registered beside the
project's own. Then new schema versions are
registered, all or nothing, and every log table is created. Monitors (`monitors.yaml`) are
checked against the tables, feature views and deployments they name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flywheel._core.metadata.schemas import SchemaCatalog
from flywheel.features.definitions import FeatureRegistry
from flywheel.features.store import FeatureStore
from flywheel.ingest.ingestor import RegistryView
from flywheel.log.store import LogStore
from flywheel.monitoring.spec import (
    MonitorSpec,
    ProjectNames,
    check_actions,
    check_targets,
    load_monitors,
)
from flywheel.schemas.catalog import register_schemas
from flywheel.schemas.documents import SchemaDocument, load_folder
from flywheel.schemas.registry import check_documents
from flywheel.serving.events import shipped_schemas
from flywheel.serving.feedback_table import project_transforms
from flywheel.transforms.dag import TransformGraph
from flywheel.transforms.store import DerivedTables

if TYPE_CHECKING:
    from flywheel.serving import Deployments

__all__ = ["ApplyReport", "apply_project"]


@dataclass(frozen=True, slots=True)
class ApplyReport:
    registered: list[str]
    unchanged: list[str]
    tables: list[str]
    transforms: list[str]
    """In the order they run."""
    features: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, name, status) of each feature definition: status says whether it was checked
    against its built source table."""
    deployments: list[tuple[str, str]] = field(default_factory=list)
    """(name, policy) of each deployment, checked against the registry."""
    monitors: list[tuple[str, str, str]] = field(default_factory=list)
    """(name, kind, target) of each monitor of monitors.yaml, checked against the project."""


def apply_project(*, root: Path, catalog: SchemaCatalog, log_store: LogStore,
                  schemas: RegistryView, features: FeatureStore,
                  tables: DerivedTables,
                  deployments: Deployments | None = None) -> ApplyReport:
    """Validate the definitions under `root` and register what is new."""
    local = load_folder(root / "schemas")
    own = {d.key for d in local}
    local = sorted([*local, *(d for d in shipped_schemas() if d.key not in own)],
                   key=lambda d: d.key)
    registered = {d.key: d for d in (SchemaDocument.from_record(r)
                                     for r in catalog.list_schemas())}
    merged = dict(registered)
    for doc in local:
        merged.setdefault(doc.key, doc)
    check_documents(list(merged.values()))
    # Everything is checked before anything is registered.
    known = sorted({d.key.table for d in merged.values()} | set(log_store.tables()))
    graph = TransformGraph(project_transforms(root / "transforms", known, log_store), known)
    checked = features.check(graph.order)
    served = deployments.check() if deployments is not None else []
    monitors = _check_monitors(root, graph, checked, tables, [spec.name for spec in served])
    register_schemas(catalog, (d.record() for d in local))
    fresh = [str(d.key) for d in local if d.key not in registered]
    unchanged = [str(d.key) for d in local if d.key in registered]
    schemas.reload()
    created = []
    for spec in schemas.current.tables:
        log_store.handle(spec.ref).create(spec.arrow_schema)
        created.append(str(spec.ref))
    return ApplyReport(fresh, unchanged, created, list(graph.order),
                       _feature_report(checked, tables),
                       [(spec.name, spec.policy) for spec in served],
                       [(m.name, m.kind, str(m.target)) for m in monitors])


def _check_monitors(root: Path, graph: TransformGraph, features: FeatureRegistry,
                    tables: DerivedTables, deployments: list[str]) -> list[MonitorSpec]:
    """The monitors, their targets and columns checked (a table not built yet: its name)."""
    monitors = load_monitors(root)
    if not monitors.monitors:
        check_actions(monitors)
        return []
    names = ProjectNames(
        tables={name: tables.handle(name).schema().names if tables.version(name) is not None
                else None for name in graph.order},
        views={name: [f.name for f in view.specs] for name, view in features.views.items()},
        deployments=dict.fromkeys(deployments))
    check_targets(monitors, names)
    return list(monitors.monitors.values())


def _feature_report(registry: FeatureRegistry,
                    tables: DerivedTables) -> list[tuple[str, str, str]]:
    rows = [("entity", name, "ok") for name in sorted(registry.entities)]
    rows += [("feature view", name, "checked against its table"
              if tables.version(view.source) is not None
              else f"{view.source} not built yet: checked at the next apply")
             for name, view in sorted(registry.views.items())]
    rows += [("on-demand view", name, "ok") for name in sorted(registry.on_demand)]
    rows += [("feature service", name, "ok") for name in sorted(registry.services)]
    return rows
