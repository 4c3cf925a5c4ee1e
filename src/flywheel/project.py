"""Project: opens a folder and wires the stores together. A thin facade; the work is below."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from flywheel._core.artifacts import ArtifactStore
from flywheel._core.errors import FlywheelError, ProjectNotFoundError
from flywheel._core.metadata.schemas import SchemaCatalog
from flywheel._core.metadata.store import MetadataStore
from flywheel._core.metadata.table_versions import TableVersionRecord
from flywheel._core.online import OnlineStore
from flywheel._core.registry import resolve
from flywheel._core.settings import Settings
from flywheel.apply import ApplyReport, apply_project
from flywheel.config import CONFIG_FILE, STATE_DIR, ProjectConfig, load_config, resolve_sqlite_url
from flywheel.features.store import FeatureStore
from flywheel.ingest.access import Tokens
from flywheel.ingest.alerts import BadRowsAlarm
from flywheel.ingest.event_log import EventLog
from flywheel.ingest.file_report import FileIngestReport
from flywheel.ingest.files import FileColumns, OnNote, OpenProgress, ingest_file
from flywheel.ingest.ingestor import Ingestor, RegistryView
from flywheel.ingest.inputs import Format
from flywheel.ingest.prepare import Limits
from flywheel.ingest.result import IngestResult
from flywheel.log.store import LogStore
from flywheel.log.writer import LogWriter
from flywheel.pipelines.launch import Services, run_pipeline
from flywheel.pipelines.runner import OnDone, OnStart, PipelineRun
from flywheel.registry import ModelRegistry
from flywheel.scaffold import init_project
from flywheel.schemas.documents import SchemaDocument
from flywheel.schemas.registry import SchemaRegistry
from flywheel.serving.feedback_table import project_transforms
from flywheel.tracking import Run, RunStore
from flywheel.transforms.dag import TransformGraph
from flywheel.transforms.lineage import LineageNode, lineage
from flywheel.transforms.runner import TransformRun, TransformRunner
from flywheel.transforms.store import DerivedTables

if TYPE_CHECKING:
    from flywheel.monitoring.history import AlertHistory
    from flywheel.monitoring.report import MonitorReport
    from flywheel.monitoring.runner import MonitorEvaluation, MonitorRunner
    from flywheel.monitoring.spec import MonitorsFile
    from flywheel.serving import Deployments
    from flywheel.serving.batch import BatchPrediction
    from flywheel.serving.batch import Progress as BatchProgress

__all__ = ["Project", "find_project_dir"]

_T = TypeVar("_T")


class _Closable(Protocol):
    def close(self) -> None: ...


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
    """A Flywheel project: its configuration and its stores, each opened on first use.

    Stores are handed to what uses them as objects, typed as the capability each uses;
    they connect (and the metadata store migrates) only when first used, so wiring costs
    nothing."""

    def __init__(self, *, root: Path, config: ProjectConfig) -> None:
        self.root = root
        self.config = config
        self.state_dir = root / STATE_DIR
        self._opened: dict[str, object] = {}
        self._closers: dict[str, Callable[[], None]] = {}
        self._open_lock = threading.RLock()
        self._log_predictions_in_a_process = False

    @classmethod
    def open(cls, path: str | Path | None = None) -> Project:
        root = find_project_dir(path)
        return cls(root=root, config=load_config(root))

    @classmethod
    def init(cls, path: str | Path, *, name: str | None = None) -> Project:
        return cls.open(init_project(Path(path), name=name))

    def _once(self, name: str, make: Callable[[], _T], *, closes: bool = False) -> _T:
        """The store `name`, made by `make` the first time it is asked for; `closes`:
        `Project.close` closes it."""
        with self._open_lock:
            if name not in self._opened:
                made = make()
                self._opened[name] = made
                if closes:
                    self._closers[name] = cast(_Closable, made).close
            return cast(_T, self._opened[name])

    # Stores ----------------------------------------------------------------------
    @property
    def metadata(self) -> MetadataStore:
        """Every metadata capability, over the database of `metadata:` in flywheel.yaml."""
        def make() -> MetadataStore:
            url = resolve_sqlite_url(self.config.metadata, self.root)
            store: MetadataStore = resolve("metadata", url)(url)
            store.migrate(deferred=True)
            return store
        return self._once("metadata", make, closes=True)

    @property
    def log_store(self) -> LogStore:
        def make() -> LogStore:
            storage = self.config.storage
            if "://" not in storage:
                storage = str((self.root / storage).resolve())
            return LogStore(root=storage, state_dir=self.state_dir)
        return self._once("log_store", make, closes=True)

    @property
    def schemas(self) -> RegistryView:
        """The registered event schemas, reloaded when an unknown one is asked for."""
        def make() -> RegistryView:
            catalog: SchemaCatalog = self.metadata
            return RegistryView(lambda: SchemaRegistry(
                SchemaDocument.from_record(r) for r in catalog.list_schemas()))
        return self._once("schemas", make)

    @property
    def alarm(self) -> BadRowsAlarm:
        return self._once("alarm", lambda: BadRowsAlarm(self.config.alerts.bad_rows,
                                                        self.config.name))

    @property
    def writer(self) -> LogWriter:
        """The group-commit writer every door of this process appends through."""
        cfg = self.config.ingest
        return self._once("writer", lambda: LogWriter(
            self.log_store, linger_ms=cfg.commit_linger_ms,
            compact_min_files=cfg.compact_min_files), closes=True)

    @property
    def ingestor(self) -> Ingestor:
        cfg = self.config.ingest
        limits = Limits(cfg.max_event_bytes, cfg.max_future_seconds * 1_000_000)
        return self._once("ingestor", lambda: Ingestor(
            registry=self.schemas, writer=self.writer, limits=limits, alarm=self.alarm))

    @property
    def tables(self) -> DerivedTables:
        """Derived tables: `project.tables.read(name, version=...)`."""
        return self._once("tables", lambda: DerivedTables(self.log_store.root))

    @property
    def online(self) -> OnlineStore:
        """The online feature store named by `online:` in flywheel.yaml."""
        def make() -> OnlineStore:
            url = resolve_sqlite_url(self.config.online, self.root)
            store: OnlineStore = resolve("online", url)(url)
            return store
        return self._once("online", make, closes=True)

    @property
    def artifacts(self) -> ArtifactStore:
        """Content-addressed artifacts (`artifacts:` in flywheel.yaml), verified on read."""
        def make() -> ArtifactStore:
            url = self.config.artifacts
            if "://" not in url:
                url = str((self.root / url).resolve())
            return ArtifactStore(resolve("artifacts", url)(url))
        return self._once("artifacts", make)

    # The SDK ---------------------------------------------------------------------
    @property
    def log(self) -> EventLog:
        """Read, inspect and repair the event log."""
        return self._once("log", lambda: EventLog(
            store=self.log_store, schemas=self.schemas, recoveries=self.metadata,
            ingestor=self.ingestor))

    @property
    def tokens(self) -> Tokens:
        """Bearer tokens and publishable keys for the HTTP doors."""
        return self._once("tokens", lambda: Tokens(store=self.metadata))

    @property
    def features(self) -> FeatureStore:
        """The feature store: definitions from `definitions.py` and `features.yaml`,
        training sets, serving."""
        return self._once("features", lambda: FeatureStore(
            folder=self.root, tables=self.tables,
            transform_names=lambda: list(self.transform_graph().order),
            versions=self.metadata, online=self.online, ingestor=self.ingestor))

    @property
    def runs(self) -> RunStore:
        """Tracked runs: `project.runs.get(run_id)`, `project.runs.search(...)`."""
        return self._once("runs", lambda: RunStore(
            storage=self.metadata, artifacts=self.artifacts, root=self.root,
            scratch=self.state_dir / "tmp"))

    @property
    def registry(self) -> ModelRegistry:
        """The model registry: `register`, `set_alias`, `load("purchase@champion")`."""
        return self._once("registry", lambda: ModelRegistry(
            models=self.metadata, versions=self.metadata, artifacts=self.artifacts,
            runs=self.runs, features=self.features))

    @property
    def deployments(self) -> Deployments:
        """Served models: `project.deployments.get("purchase").predict(entities=...)`."""
        def make() -> Deployments:
            from flywheel.serving import Deployments  # numpy and the models: on use

            sink = None
            if self._log_predictions_in_a_process:
                from flywheel.serving.log_process import ProcessSink

                sink = ProcessSink(opener=_IngestorOf(str(self.root)))
            return Deployments(folder=self.root / "deployments", registry=self.registry,
                               features=self.features, ingestor=self.ingestor,
                               log_store=self.log_store, log_sink=sink)
        return self._once("deployments", make, closes=True)

    def log_predictions_in_a_process(self) -> None:
        """Commit the predictions of `deployments` in a committer process of their own
        (what a server does, `server.prediction_log: process`), not in this one's threads.
        Call it before `deployments` is first used: opened deployments keep their log."""
        with self._open_lock:
            if "deployments" in self._opened:
                raise FlywheelError("the deployments are open already, with their prediction "
                                 "log in this process",
                                 hint="call log_predictions_in_a_process() before the first "
                                 "use of project.deployments")
            self._log_predictions_in_a_process = True

    @property
    def alerts(self) -> AlertHistory:
        """What monitors set off: `project.alerts.list(monitor=..., since="1d")`, and the
        retraining decisions (`project.alerts.decisions()`)."""
        def make() -> AlertHistory:
            from flywheel.monitoring.history import AlertHistory

            return AlertHistory(store=self.metadata)
        return self._once("alerts", make)

    @property
    def monitors(self) -> MonitorsFile:
        """The monitors of `monitors.yaml` (or `monitors.py`), read again on every call."""
        from flywheel.monitoring.spec import load_monitors

        return load_monitors(self.root)

    def monitor_runner(self, *, alerts: bool = True) -> MonitorRunner:
        """Evaluates the project's monitors; `alerts`: red results set off their actions
        (and retraining policies)."""
        from flywheel.monitoring.retraining import alert_sink
        from flywheel.monitoring.runner import MonitorRunner

        monitors = self.monitors
        sink = alert_sink(self, actions=monitors.actions,
                          retraining=monitors.retraining) if alerts else None
        return MonitorRunner(monitors=monitors, sources=self, versions=self.metadata,
                             lock_dir=self.state_dir / "locks", sink=sink)

    def run_monitors(self, names: Iterable[str] | None = None, *, full: bool = False,
                     alerts: bool = True, on_start: Callable[[str], None] | None = None,
                     on_done: Callable[[MonitorEvaluation], None] | None = None,
                     ) -> list[MonitorEvaluation]:
        """Evaluate monitors once: the complete windows they have not kept yet."""
        return self.monitor_runner(alerts=alerts).run(names, full=full, on_start=on_start,
                                                      on_done=on_done)

    def monitor(self, names: Iterable[str] | None = None, *, alerts: bool = True,
                ) -> MonitorReport:
        """Evaluate monitors, then report on their whole history (what is red, since when;
        `report.write_html(path)` for the plots)."""
        chosen = list(names or [])
        self.run_monitors(chosen, alerts=alerts)
        return self.monitor_report(chosen)

    def monitor_report(self, names: Iterable[str] | None = None) -> MonitorReport:
        """The report of the results monitors have kept, without evaluating them."""
        from flywheel._core.clock import utc_now
        from flywheel.monitoring.report import MonitorReport

        runner = self.monitor_runner(alerts=False)
        specs = {spec.name: spec for spec in runner.specs(names)}
        return MonitorReport.from_results({name: runner.results(name) for name in specs},
                                          specs=specs, generated_at=utc_now())

    def apply(self) -> ApplyReport:
        """Validate the definitions in the folder and register what is new."""
        return apply_project(root=self.root, catalog=self.metadata, log_store=self.log_store,
                             schemas=self.schemas, features=self.features, tables=self.tables,
                             deployments=self.deployments)

    def ingest(self, events: Iterable[Any], *, door: str = "sdk",
               on_progress: Callable[[int], None] | None = None) -> IngestResult:
        """Validate and durably append events; returns counts and per-event errors."""
        return self.ingestor.ingest(events, door=door, on_progress=on_progress)

    def ingest_file(self, source: str | Path, *, schema: str | None = None,
                    fmt: Format | str | None = None, time_column: str | None = None,
                    id_column: str | None = None, time_now: bool = False,
                    on_progress: OpenProgress | None = None,
                    on_note: OnNote | None = None) -> FileIngestReport:
        """Ingest an NDJSON, CSV or Parquet file (`-`: NDJSON from standard input); rejects
        go to bad rows. `schema` types the rows of CSV (and of Parquet without schema/data
        columns): a key, or `vendor/name` for its newest version."""
        columns = FileColumns(time_column=time_column, id_column=id_column, time_now=time_now)
        return ingest_file(str(source), ingestor=self.ingestor, index=self.log_store.index,
                           schemas=self.schemas, fmt=fmt, schema=schema, columns=columns,
                           progress=on_progress, on_note=on_note)

    def transform_graph(self) -> TransformGraph:
        """The project's transforms, loaded from `transforms/`, and those Flywheel ships
        (`predictions_with_feedback`), checked as a DAG."""
        known = self.log.tables()
        return TransformGraph(project_transforms(self.root / "transforms", known,
                                                 self.log_store), known)

    def transform(self, names: Iterable[str] | None = None, *, full_refresh: bool = False,
                  on_start: Callable[[str], None] | None = None,
                  on_done: Callable[[TransformRun], None] | None = None,
                  ) -> list[TransformRun]:
        """Build derived tables from the log: incrementally, or from offset 0."""
        runner = TransformRunner(graph=self.transform_graph(), log_store=self.log_store,
                                 tables=self.tables, versions=self.metadata,
                                 order_hints=self.features.sort_orders())
        return runner.run(names, full_refresh=full_refresh, on_start=on_start,
                          on_done=on_done)

    def replay(self, *, on_start: Callable[[str], None] | None = None,
               on_done: Callable[[TransformRun], None] | None = None,
               on_monitor: Callable[[MonitorEvaluation], None] | None = None,
               ) -> list[TransformRun]:
        """Rebuild every derived table from the beginning of the log, then every monitor's
        results table (without setting off alerts: those windows were alerted on)."""
        runs = self.transform(full_refresh=True, on_start=on_start, on_done=on_done)
        if self.monitors.monitors:
            self.run_monitors(full=True, alerts=False, on_done=on_monitor)
        return runs

    def predict_batch(self, *, model: str, input: str | Path, output: str | Path,
                      as_of: dt.datetime | str | None = None,
                      chunk_size: int | None = None,
                      timestamp_column: str = "event_timestamp", with_features: bool = False,
                      on_progress: BatchProgress | None = None) -> BatchPrediction:
        """Score a derived table or a file of entity rows with a registered model, the
        features of each row point in time, and write a Parquet file (or `table:NAME`);
        see `flywheel.serving.batch.predict_batch` (chunks of 100,000 rows by default)."""
        from flywheel.serving.batch import DEFAULT_CHUNK_SIZE, BatchSources, predict_batch

        sources = BatchSources(registry=self.registry, features=self.features,
                               tables=self.tables, versions=self.metadata,
                               transforms=lambda: list(self.transform_graph().order))
        return predict_batch(sources, model=model, input=input, output=output, as_of=as_of,
                             chunk_size=DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size,
                             timestamp_column=timestamp_column, with_features=with_features,
                             on_progress=on_progress)

    def lineage(self, table: str, version: int | None = None) -> LineageNode:
        """Where a derived table's version (default: newest) came from, down to offsets."""
        return lineage(self.metadata, table, version)

    def table_versions(self, table: str) -> list[TableVersionRecord]:
        """Every recorded version of a derived table: how it was built, from which offsets."""
        return self.metadata.table_versions(table)

    def start_run(self, name: str, *, parent_id: str | None = None,
                  tags: Mapping[str, str] | None = None) -> Run:
        """Start a tracked run: `with project.start_run("train") as run: ...`."""
        return self.runs.start(name, parent_id=parent_id, tags=tags)

    def run(self, spec: str | Path | None = None, *, params: Mapping[str, Any] | None = None,
            cache: bool = True, resume: str | None = None, executor: str | None = None,
            on_start: OnStart | None = None, on_done: OnDone | None = None) -> PipelineRun:
        """Run a pipeline from its YAML run spec (`pipelines/train.yaml`, relative to the
        project), or resume a failed run by id; raises StepFailedError if a step fails."""
        services = Services(root=self.root, artifacts=self.artifacts,
                            scratch=self.state_dir / "tmp", start_run=self.start_run,
                            features=self.features, record_outputs=self.runs.record_outputs)
        return run_pipeline(services, spec, params=params, use_cache=cache, resume=resume,
                            executor=executor, on_start=on_start, on_done=on_done)

    def close(self) -> None:
        """Drain the writer (every acknowledged event is committed), then close the stores;
        a store used again afterwards is opened again."""
        with self._open_lock:
            closers, self._closers, self._opened = self._closers, {}, {}
        # Deployments first (their predictions go to the writer), then the writer.
        for name in ("deployments", "writer", "log_store", "metadata", "online"):
            close = closers.get(name)
            if close is not None:
                close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class _IngestorOf:
    """The ingestor of the project at `root`, opened in a prediction log's committer
    process (sent there pickled); leaving it closes the project, draining its writer."""

    root: str

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Ingestor]:
        with Project.open(self.root) as project:
            yield project.ingestor
