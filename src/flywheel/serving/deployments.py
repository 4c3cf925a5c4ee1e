"""`project.deployments`: the deployments of `deployments/*.yaml`, opened on first use.

The deployments of one process share one model pool (a model is loaded once, and one
watcher keeps every alias current) and one prediction log, drained at `close`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path

from flywheel._core.clock import utc_now
from flywheel.features.store import FeatureStore
from flywheel.ingest.ingestor import Ingestor
from flywheel.ingest.result import IngestResult
from flywheel.log.store import LogStore
from flywheel.registry import ModelRegistry
from flywheel.serving.check import check_spec
from flywheel.serving.deployment import Deployment
from flywheel.serving.errors import UnknownDeploymentError
from flywheel.serving.feedback import bandit_stats, logged_prediction, record_feedback
from flywheel.serving.pool import ModelPool
from flywheel.serving.predlog import IngestSink, LogSink, PredictionLog
from flywheel.serving.spec import DeploymentSpec, load_spec, spec_files

__all__ = ["DEPLOYMENTS_DIR", "Deployments"]

DEPLOYMENTS_DIR = "deployments"


class Deployments:
    def __init__(self, *, folder: Path, registry: ModelRegistry,
                 features: FeatureStore, ingestor: Ingestor,
                 log_store: LogStore, poll_seconds: float = 1.0,
                 log_sink: LogSink | None = None,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        """`log_sink`: where predictions are committed (default: by `ingestor`, in this
        process)."""
        self._folder = folder
        self._clock = clock
        """The event time of predictions (the wall clock; a simulation passes its own)."""
        self._registry = registry
        self._features = features
        self._ingestor = ingestor
        self._log_store = log_store
        self._pool = ModelPool(registry=registry, poll_seconds=poll_seconds)
        self._log = PredictionLog(sink=log_sink or IngestSink(ingestor=ingestor))
        self._open: dict[str, Deployment] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def prediction_log(self) -> PredictionLog:
        return self._log

    @property
    def pool(self) -> ModelPool:
        return self._pool

    def names(self) -> list[str]:
        return [p.stem for p in spec_files(self._folder)]

    def _path(self, name: str) -> Path | None:
        return next((p for p in spec_files(self._folder) if p.stem == name), None)

    def spec(self, name: str) -> DeploymentSpec:
        path = self._path(name) if isinstance(name, str) else None
        if path is None:
            known = ", ".join(self.names()) or f"none: add {DEPLOYMENTS_DIR}/NAME.yaml"
            raise UnknownDeploymentError(f"no deployment {str(name)[:100]!r} "
                                         f"(known: {known})")
        return load_spec(path, label=f"{DEPLOYMENTS_DIR}/{path.name}")

    def opened(self, name: str) -> Deployment | None:
        """The deployment `name` if it is open already (at once, without reading or loading
        anything), else None."""
        return self._open.get(name)

    def get(self, name: str) -> Deployment:
        """The deployment `deployments/NAME.yaml` describes, its models loaded."""
        found = self._open.get(name)
        if found is not None:
            return found
        with self._lock:
            if self._closed:
                raise RuntimeError("the deployments are closed")
            found = self._open.get(name)
            if found is None:
                spec = self.spec(name)
                found = Deployment(spec=spec, pool=self._pool, features=self._features,
                                   log=self._log, bandit_stats=self._bandit_stats,
                                   clock=self._clock)
                self._open[name] = found
        return found

    def _bandit_stats(self, deployment: str) -> dict[str, tuple[int, float]]:
        return bandit_stats(self._log_store, deployment)

    def check(self) -> list[DeploymentSpec]:
        """Every deployment file read and checked against the registry (`flywheel
        apply`); the first problem is a `DeploymentSpecError`."""
        specs = [load_spec(p, label=f"{DEPLOYMENTS_DIR}/{p.name}")
                 for p in spec_files(self._folder)]
        if specs:
            features = self._features.registry
            for spec in specs:
                check_spec(spec, self._registry, features)
        return specs

    def known_prediction(self, prediction_id: str) -> bool:
        """Is it in the log, or still on its way there from this process?"""
        return self._log.pending(prediction_id) or logged_prediction(self._log_store,
                                                                     prediction_id)

    def record_feedback(self, *, prediction_id: str, outcome: float,
                        time: str | dt.datetime | None = None,
                        source: str = "api") -> IngestResult:
        """Log the outcome of a known prediction; a bandit that made it learns at once."""
        result = record_feedback(ingestor=self._ingestor, known=self.known_prediction,
                                 prediction_id=prediction_id, outcome=outcome, time=time,
                                 source=source)
        if result.accepted:
            for deployment in list(self._open.values()):
                if deployment.observe_feedback(prediction_id, outcome):
                    break
        return result

    def close(self) -> None:
        """Answer what is queued, stop watching aliases, commit every prediction."""
        with self._lock:
            self._closed = True
            opened = list(self._open.values())
            self._open.clear()
        for deployment in opened:
            deployment.close()
        self._pool.close()
        self._log.close()
