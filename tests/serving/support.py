"""A served project: visits in the log, the `visits` view materialised online for users
u0..u{USERS-1}, and small scikit-learn models registered over its `score` service."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.linear_model import LinearRegression, LogisticRegression

from flywheel._core.errors import LogUnavailableError
from flywheel.project import Project
from flywheel.serving.events import PREDICTION_SCHEMA
from tests.helpers import VISIT, write_visits_project

DEFINITIONS = '''
from flywheel.features import Entity, FeatureService, FeatureView

user = Entity(name="user", join_keys=["user_id"])
visits = FeatureView(name="visits", entities=[user], source="user_visits",
                     features=["pages", "seconds"])
score = FeatureService(name="score", features=["visits:*"])
'''
USERS = 40
COLUMNS = ["pages", "seconds"]


def pages_of(user: int) -> int:
    return user % 7


def training_frame() -> pd.DataFrame:
    pages = [i % 9 for i in range(200)]
    return pd.DataFrame({"pages": pages, "seconds": [p * 1.5 + (i % 5) for i, p in
                                                     enumerate(pages)]})


def classifier(c: float = 1.0, *, threshold: int = 2) -> LogisticRegression:
    frame = training_frame()
    return LogisticRegression(C=c).fit(frame[COLUMNS], frame["pages"] > threshold)


def regressor(scale: float = 1.0) -> LinearRegression:
    frame = training_frame()
    return LinearRegression().fit(frame[COLUMNS], frame["pages"] * scale + frame["seconds"])


def write_served_project(root: Path) -> Project:
    """The project, its features online; no model registered yet."""
    write_visits_project(root, DEFINITIONS)
    (root / "deployments").mkdir(exist_ok=True)
    project = Project.open(root)
    project.apply()
    now = dt.datetime.now(dt.UTC)
    events = [{"schema": VISIT, "event_time": (now - dt.timedelta(hours=1)).isoformat(),
               "data": {"user_id": f"u{u}", "pages": pages_of(u),
                        "seconds": pages_of(u) * 1.5}} for u in range(USERS)]
    assert project.ingest(events).accepted == USERS
    project.transform()
    project.features.materialize()
    return project


def deploy(project: Project, name: str, text: str) -> None:
    (project.root / "deployments" / f"{name}.yaml").write_text(text)


def features_of(user: int) -> pd.DataFrame:
    return pd.DataFrame({"pages": [pages_of(user)], "seconds": [pages_of(user) * 1.5]})


def users(count: int, start: int = 0) -> list[str]:
    return [f"u{(start + i) % USERS}" for i in range(count)]


def logged(project: Project, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = project.log.read(table).to_pylist()
    return rows


class SlowModel:
    """A regressor that takes `seconds` per call, whatever the batch size: a model whose
    cost is per call, as most are at small batches."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, frame: Any) -> Any:
        import time

        import numpy as np

        time.sleep(self.seconds)
        return np.asarray(frame["pages"], dtype=float) * 2


class DelayedModel:
    """A regressor that sleeps for the seconds written in the file `delay` on each call:
    a model that can turn slow while it is served."""

    def __init__(self, delay: str) -> None:
        self.delay = delay

    def predict(self, frame: Any) -> Any:
        import time

        import numpy as np

        time.sleep(float(Path(self.delay).read_text()))
        return np.asarray(frame["pages"], dtype=float) * 2


def register_models(project: Project) -> Project:
    """`purchase` (a classifier) and `spend` (a regressor), each with a champion (v1) and
    a challenger (v2), over the feature service `score`."""
    registry = project.registry
    registry.register("purchase", model=classifier(1.0), feature_service="score",
                      alias="champion")
    registry.register("purchase", model=classifier(0.01, threshold=4), feature_service="score",
                      alias="challenger")
    registry.register("spend", model=regressor(1.0), feature_service="score", alias="champion")
    registry.register("spend", model=regressor(3.0), feature_service="score",
                      alias="challenger")
    return project


class FlakyIngestor:
    """An ingestor whose first `failures` commits fail on the log's side (503), as a log
    whose storage is away for a moment; the commits after are the real ingestor's."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.left = failures
        self.attempts = 0

    def begin_raw(self, *args: Any, **kwargs: Any) -> Any:
        self.attempts += 1
        if self.left > 0:
            self.left -= 1
            raise LogUnavailableError("injected: the log's storage is away")
        return self.inner.begin_raw(*args, **kwargs)


@dataclass(frozen=True)
class FlakyIngestorOf:
    """Opens, in a committer process, the project's ingestor behind `FlakyIngestor`."""

    root: str
    failures: int

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Any]:
        with Project.open(self.root) as project:
            yield FlakyIngestor(project.ingestor, self.failures)


def predictions(count: int) -> list[dict[str, Any]]:
    found = []
    for _ in range(count):
        pid = str(uuid.uuid4())
        found.append({"schema": PREDICTION_SCHEMA, "event_id": pid,
                      "event_time": "2026-05-01T10:00:00.000000+00:00",
                      "data": {"prediction_id": pid, "deployment": "purchase",
                               "member": "purchase", "model": "purchase", "model_version": 1,
                               "features": {"pages": 3}, "outputs": {"probability": 0.5},
                               "latency_ms": 1.0, "shadow": False, "defaulted": False}})
    return found
