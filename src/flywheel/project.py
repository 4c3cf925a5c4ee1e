"""Project: opens a folder and wires the stores together. A thin facade; the work is below."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from flywheel._core.artifacts import ArtifactStore
from flywheel._core.errors import InputError, ProjectNotFoundError
from flywheel._core.metadata.store import MetadataStore
from flywheel._core.online import OnlineStore
from flywheel._core.registry import resolve
from flywheel._core.settings import Settings
from flywheel.apply import ApplyReport, apply_project
from flywheel.config import CONFIG_FILE, STATE_DIR, ProjectConfig, load_config, resolve_sqlite_url
from flywheel.features.store import FeatureStore
from flywheel.ingest.alerts import BadRowsAlarm
from flywheel.ingest.ingestor import Ingestor, RegistryView
from flywheel.ingest.prepare import Limits
from flywheel.ingest.recover import FixUp, RecoverReport, recover
from flywheel.ingest.result import IngestResult
from flywheel.log.badrows import BAD_ROWS_TABLE
from flywheel.log.compaction import CompactionResult
from flywheel.log.dedupe import Receipts
from flywheel.log.store import LogStore
from flywheel.log.views import LogTableStats, log_stats, receipt_stats, tail
from flywheel.log.writer import LogWriter
from flywheel.pipelines.launch import Services, run_pipeline
from flywheel.pipelines.runner import OnDone, OnStart, PipelineRun
from flywheel.pipelines.tracking import RecordOutputs
from flywheel.registry import ModelRegistry
from flywheel.scaffold import init_project
from flywheel.schemas.documents import SchemaDocument
from flywheel.schemas.keys import LogTableRef
from flywheel.schemas.registry import SchemaRegistry
from flywheel.tracking import Run, RunStore
from flywheel.transforms.dag import TransformGraph, load_transforms
from flywheel.transforms.lineage import LineageNode, lineage
from flywheel.transforms.runner import TransformRun, TransformRunner
from flywheel.transforms.store import DerivedTables

if TYPE_CHECKING:
    from flywheel.serving import Deployments

__all__ = ["EventLog", "Project", "find_project_dir"]


def find_project_dir(start: str | Path | None = None) -> Path:
    """The folder holding `flywheel.yaml`: `start`, FLYWHEEL_PROJECT, or cwd and its parents."""
    origin = Path(start or Settings.from_env().project_dir or ".").resolve()
    for folder in (origin, *origin.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
        if start is not None:
            break
    raise ProjectNotFoundError(
        f"no {CONFIG_FILE} in {origin}" + ("" if start is not None else " or its parents"),
        hint="run `flywheel init` to create a project, or pass --project DIR",
    )


class Project:
    """A Flywheel project: configuration plus lazily opened stores."""

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.root = root
        self.config = config
        self.state_dir = root / STATE_DIR
        self._metadata: MetadataStore | None = None
        self._log_store: LogStore | None = None
        self._writer: LogWriter | None = None
        self._schemas: RegistryView | None = None
        self._ingestor: Ingestor | None = None
        self._alarm: BadRowsAlarm | None = None
        self._tables: DerivedTables | None = None
        self._features: FeatureStore | None = None
        self._online: OnlineStore | None = None
        self._artifacts: ArtifactStore | None = None
        self._runs: RunStore | None = None
        self._registry: ModelRegistry | None = None
        self._deployments: Deployments | None = None
        self._open_lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path | None = None) -> Project:
        root = find_project_dir(path)
        return cls(root, load_config(root))

    @classmethod
    def init(cls, path: str | Path, *, name: str | None = None) -> Project:
        return cls.open(init_project(Path(path), name=name))

    # Stores, opened on first use --------------------------------------------------
    @property
    def metadata(self) -> MetadataStore:
        with self._open_lock:
            if self._metadata is None:
                url = resolve_sqlite_url(self.config.metadata, self.root)
                store: MetadataStore = resolve("metadata", url)(url)
                store.migrate()  # the explicit first-open step; constructors do nothing
                self._metadata = store
            return self._metadata

    @property
    def log_store(self) -> LogStore:
        with self._open_lock:
            if self._log_store is None:
                storage = self.config.storage
                if "://" not in storage:
                    storage = str((self.root / storage).resolve())
                self._log_store = LogStore(storage, self.state_dir)
            return self._log_store

    @property
    def schemas(self) -> RegistryView:
        """The registered event schemas, reloaded when an unknown one is asked for."""
        with self._open_lock:
            if self._schemas is None:
                self._schemas = RegistryView(self._load_schemas)
            return self._schemas

    def _load_schemas(self) -> SchemaRegistry:
        records = self.metadata.list_schemas()
        return SchemaRegistry(SchemaDocument.from_record(r) for r in records)

    @property
    def alarm(self) -> BadRowsAlarm:
        with self._open_lock:
            if self._alarm is None:
                self._alarm = BadRowsAlarm(self.config.alerts.bad_rows, self.config.name)
            return self._alarm

    @property
    def ingestor(self) -> Ingestor:
        with self._open_lock:
            if self._ingestor is None:
                cfg = self.config.ingest
                self._writer = LogWriter(self.log_store, linger_ms=cfg.commit_linger_ms,
                                         compact_min_files=cfg.compact_min_files)
                limits = Limits(cfg.max_event_bytes, cfg.max_future_seconds * 1_000_000)
                self._ingestor = Ingestor(self.schemas, self._writer, limits, self.alarm)
            return self._ingestor

    # Public operations -----------------------------------------------------------
    def apply(self) -> ApplyReport:
        """Validate the definitions in the folder and register what is new."""
        return apply_project(root=self.root, catalog=self.metadata, log_store=self.log_store,
                             schemas=self.schemas, features=self.features, tables=self.tables,
                             deployments=lambda: self.deployments)

    def ingest(self, events: Iterable[Any], *, door: str = "sdk",
               on_progress: Callable[[int], None] | None = None) -> IngestResult:
        """Validate and durably append events; returns counts and per-event errors."""
        return self.ingestor.ingest(events, door=door, on_progress=on_progress)

    @property
    def log(self) -> EventLog:
        return EventLog(self)

    # Transforms ------------------------------------------------------------------
    @property
    def tables(self) -> DerivedTables:
        """Derived tables: `project.tables.read(name, version=...)`."""
        with self._open_lock:
            if self._tables is None:
                self._tables = DerivedTables(self.log_store.root)
            return self._tables

    def transform_graph(self) -> TransformGraph:
        """The project's transforms, loaded from `transforms/` and checked as a DAG."""
        known = [t.ref for t in self.schemas.current.tables]
        return TransformGraph(load_transforms(self.root / "transforms"),
                              sorted(set(known) | set(self.log_store.tables())))

    def transform(self, names: Iterable[str] | None = None, *, full_refresh: bool = False,
                  on_start: Callable[[str], None] | None = None,
                  on_done: Callable[[TransformRun], None] | None = None,
                  ) -> list[TransformRun]:
        """Build derived tables from the log: incrementally, or from offset 0."""
        runner = TransformRunner(self.transform_graph(), self.log_store, self.tables,
                                 self.metadata, order_hints=self.features.sort_orders())
        return runner.run(names, full_refresh=full_refresh, on_start=on_start,
                          on_done=on_done)

    def replay(self, *, on_start: Callable[[str], None] | None = None,
               on_done: Callable[[TransformRun], None] | None = None) -> list[TransformRun]:
        """Rebuild every derived table from the beginning of the log."""
        return self.transform(full_refresh=True, on_start=on_start, on_done=on_done)

    @property
    def features(self) -> FeatureStore:
        """The feature store: definitions from `definitions.py` and `features.yaml`,
        training sets, serving."""
        with self._open_lock:
            if self._features is None:
                self._features = FeatureStore(
                    self.root, self.tables,
                    lambda: list(self.transform_graph().order), lambda: self.metadata,
                    lambda: self.online, lambda events: self.ingest(events, door="push"))
            return self._features

    @property
    def online(self) -> OnlineStore:
        """The online feature store named by `online:` in flywheel.yaml."""
        with self._open_lock:
            if self._online is None:
                url = resolve_sqlite_url(self.config.online, self.root)
                self._online = resolve("online", url)(url)
            return self._online

    @property
    def artifacts(self) -> ArtifactStore:
        """Content-addressed artifacts (`artifacts:` in flywheel.yaml), verified on read."""
        with self._open_lock:
            if self._artifacts is None:
                url = self.config.artifacts
                if "://" not in url:
                    url = str((self.root / url).resolve())
                backend = resolve("artifacts", url)(url)
                self._artifacts = ArtifactStore(backend)
            return self._artifacts

    # Tracking --------------------------------------------------------------------
    @property
    def runs(self) -> RunStore:
        """Tracked runs: `project.runs.get(run_id)`, `project.runs.search(...)`."""
        with self._open_lock:
            if self._runs is None:
                self._runs = RunStore(lambda: self.metadata, lambda: self.artifacts, self.root,
                                      self.state_dir / "tmp")
            return self._runs

    def start_run(self, name: str, *, parent_id: str | None = None,
                  tags: Mapping[str, str] | None = None) -> Run:
        """Start a tracked run: `with project.start_run("train") as run: ...`."""
        return self.runs.start(name, parent_id=parent_id, tags=tags)

    # Pipelines -------------------------------------------------------------------
    def run(self, spec: str | Path | None = None, *, params: Mapping[str, Any] | None = None,
            cache: bool = True, resume: str | None = None, executor: str | None = None,
            on_start: OnStart | None = None, on_done: OnDone | None = None) -> PipelineRun:
        """Run a pipeline from its YAML run spec (`pipelines/train.yaml`, relative to the
        project), or resume a failed run by id; raises StepFailedError if a step fails."""
        services = Services(self.root, self.artifacts, self.state_dir / "tmp",
                            self.start_run, lambda: self.features, self._record_outputs())
        return run_pipeline(services, spec, params=params, use_cache=cache, resume=resume,
                            executor=executor, on_start=on_start, on_done=on_done)

    def _record_outputs(self) -> RecordOutputs:
        def record(items: list[tuple[str, str, Any]]) -> None:
            from flywheel._core.metadata.runs import RunArtifactRecord

            self.metadata.add_run_artifacts([
                RunArtifactRecord(run_id, name, out.digest, out.kind, out.size)
                for run_id, name, out in items])
        return record

    @property
    def registry(self) -> ModelRegistry:
        """The model registry: `register`, `set_alias`, `load("purchase@champion")`."""
        with self._open_lock:
            if self._registry is None:
                self._registry = ModelRegistry(lambda: self.metadata, lambda: self.metadata,
                                               lambda: self.artifacts,
                                               self.runs, self._service_columns)
            return self._registry

    @property
    def deployments(self) -> Deployments:
        """Served models: `project.deployments.get("purchase").predict(entities=...)`."""
        with self._open_lock:
            if self._deployments is None:
                from flywheel.serving import Deployments  # numpy and the models: on use

                self._deployments = Deployments(
                    folder=self.root / "deployments", registry=self.registry,
                    features=lambda: self.features, ingestor=lambda: self.ingestor,
                    log_store=lambda: self.log_store)
            return self._deployments

    def _service_columns(self, name: str) -> list[str]:
        services = self.features.registry.services
        if name not in services:
            known = ", ".join(sorted(services)) or "none"
            raise InputError(f"no feature service '{name}' (known: {known})",
                             hint="declare it in definitions.py")
        return list(self.features.registry.plan(service=name).shown)

    def lineage(self, table: str, version: int | None = None) -> LineageNode:
        """Where a derived table's version (default: newest) came from, down to offsets."""
        return lineage(self.metadata, table, version)

    def close(self) -> None:
        with self._open_lock:
            if self._deployments is not None:  # first: its predictions go to the writer
                self._deployments.close()
                self._deployments = None
            if self._writer is not None:
                self._writer.close()
                self._writer = None
                self._ingestor = None
            if self._log_store is not None:
                self._log_store.close()
                self._log_store = None
            if self._metadata is not None:
                self._metadata.close()
                self._metadata = None
            if self._online is not None:
                self._online.close()
                self._online = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class EventLog:
    """`project.log`: read, inspect and repair the event log."""

    def __init__(self, project: Project) -> None:
        self._project = project

    def tables(self) -> list[LogTableRef]:
        known = [t.ref for t in self._project.schemas.current.tables]
        return sorted(set(known) | set(self._project.log_store.tables()))

    def table(self, name: str) -> LogTableRef:
        """The log table `name` names; one the project does not have is an error."""
        known = self.tables()
        ref = LogTableRef.parse(name, known)
        if ref not in known:
            shown = ", ".join(map(str, known)) or "none yet: run `flywheel apply`"
            raise InputError(f"no log table {ref} in this project (known: {shown})",
                             hint="`flywheel log stats` lists the tables")
        return ref

    def read(self, table: str, *, as_of: int | None = None,
             columns: list[str] | None = None) -> Any:
        """A log table as an Arrow table, as of offset `as_of` (time travel)."""
        return self._project.log_store.read(self.table(table), as_of, columns)

    def stats(self) -> list[LogTableStats]:
        """Per log table: events stored, distinct bad rows by reason, files, last offset."""
        return log_stats(self._project.log_store, self.tables())

    def receipts(self) -> list[Receipts]:
        """Per log table and door: events received, accepted, rejected, duplicates
        (received = accepted + rejected + duplicates, repeats of a bad input included)."""
        return receipt_stats(self._project.log_store, self.tables())

    def tail(self, table: str, count: int = 10, *, as_of: int | None = None) -> Any:
        """The last `count` events committed, as of offset `as_of` (default: now)."""
        ref = self.table(table)
        if as_of is not None:
            self._project.log_store.read(ref, as_of, columns=["event_id"])  # checks the offset
        return tail(self._project.log_store, ref, count, as_of)

    def bad_rows(self) -> Any:
        """Rejected inputs as an Arrow table: one row per distinct input (door and bytes),
        with its reason and `receipts`, how many times it was received."""
        return self._project.log_store.read_bad_rows()

    def recover(self, fix: FixUp | None = None, *, reason: str | None = None,
                schema: str | None = None, dry_run: bool = False) -> RecoverReport:
        project = self._project
        return recover(project.log_store, project.metadata, project.ingestor, fix, reason,
                       schema, dry_run)

    def compact(self, table: str | None = None) -> dict[str, CompactionResult]:
        """Merge small files of log tables (default: all, bad rows included); safe beside
        any number of writing and compacting processes. Waits for a compaction of the
        same table in another process to finish first."""
        store = self._project.log_store
        refs = [self.table(table)] if table else store.tables()
        results = {str(ref): store.compact(store.handle(ref)) for ref in refs}
        if table is None and store.bad_rows().exists():
            results[BAD_ROWS_TABLE] = store.compact(store.bad_rows())
        return results
