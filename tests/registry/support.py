"""A project with a training pipeline: visits in the log, `user_visits` (features) and
`user_daily` (entity rows and labels) derived from them, and `pipelines/train.yaml`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flywheel.project import Project
from tests.helpers import VISIT, write_visits_project

DEFINITIONS = '''
from flywheel.features import Entity, FeatureService, FeatureView

user = Entity(name="user", join_keys=["user_id"])
visits = FeatureView(name="visits", entities=[user], source="user_visits",
                     features=["pages", "seconds"])
score = FeatureService(name="score", features=["visits:*"])
wide = FeatureService(name="wide", features=["visits:seconds", "visits:pages"])
pages_only = FeatureService(name="pages_only", features=["visits:pages"])
'''
USER_DAILY = ("-- inputs: user_visits\n"
              "select user_id, event_time + interval 1 second as day_end, pages > 2 as bought\n"
              "from user_visits\n")
STEPS = '''
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from flywheel.pipelines import Pipeline

COLUMNS = ["pages", "seconds"]


def features(training_set: pd.DataFrame) -> pd.DataFrame:
    return training_set.dropna()


def model(features: pd.DataFrame, c: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=c).fit(features[COLUMNS], features["label"])


def baseline(features: pd.DataFrame) -> DummyClassifier:
    return DummyClassifier().fit(features[COLUMNS], features["label"])


def accuracy(model: LogisticRegression, features: pd.DataFrame) -> float:
    return float(model.score(features[COLUMNS], features["label"]))


def rows(features: pd.DataFrame) -> int:
    return len(features)


pipeline = Pipeline("train", steps=[features, model, accuracy, rows])
both = Pipeline("both", steps=[features, model, baseline])
'''
QUERY = "select user_id, day_end as event_timestamp, bought as label from user_daily"
SPEC = f"""pipeline: pipelines/train.py:pipeline
params: {{c: 0.5}}
training_data:
  feature_service: score
  entities: {QUERY}
  start: 2026-01-01
  end: 2026-03-01
"""
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def write_training_project(root: Path) -> None:
    write_visits_project(root, DEFINITIONS)
    (root / "transforms" / "user_daily.sql").write_text(USER_DAILY)
    (root / "pipelines").mkdir(exist_ok=True)
    (root / "pipelines" / "train.py").write_text(STEPS)
    (root / "pipelines" / "train.yaml").write_text(SPEC)


def write_spec(root: Path, name: str, text: str) -> Path:
    path = root / "pipelines" / name
    path.write_text(text)
    return path


def ingest(project: Project, days: range) -> None:
    """One visit a day from 2026-01-01, three users in turn, then `transform`."""
    events = [{"schema": VISIT, "event_time": (START + dt.timedelta(days=d)).isoformat(),
               "data": {"user_id": f"u{d % 3}", "pages": d, "seconds": d * 1.5}}
              for d in days]
    assert project.ingest(events).accepted == len(events)
    project.transform()
