"""A tiny project to retrain: one visit a day per user, a label the pages decide, a
scikit-learn pipeline whose `features` step keeps the rows before `until`."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from flywheel.monitoring.policy import EvaluationSpec, RetrainingSpec
from flywheel.project import Project
from tests.helpers import VISIT, write_visits_project
from tests.registry.support import DEFINITIONS

USER_DAILY = ("-- inputs: user_visits\n"
              "select user_id, event_time + interval 1 second as day_end, pages > 4 as bought\n"
              "from user_visits\n")
STEPS = '''
import pandas as pd
from sklearn.linear_model import LogisticRegression

from flywheel.pipelines import Pipeline

COLUMNS = ["pages", "seconds"]


def features(training_set: pd.DataFrame, until: str | None = None) -> pd.DataFrame:
    rows = training_set.dropna()
    if until is not None:
        rows = rows[rows["event_timestamp"] < pd.Timestamp(until)]
    return rows


def model(features: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(features[COLUMNS], features["label"])


def rows(features: pd.DataFrame) -> int:
    return len(features)


pipeline = Pipeline("train", steps=[features, model, rows])
'''
SPEC = """pipeline: pipelines/train.py:pipeline
training_data:
  feature_service: score
  entities: select user_id, day_end as event_timestamp, bought as label from user_daily
"""
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAYS = 40
USERS = 3


def write_retraining_project(root: Path) -> None:
    write_visits_project(root, DEFINITIONS)
    (root / "transforms" / "user_daily.sql").write_text(USER_DAILY)
    (root / "pipelines").mkdir(exist_ok=True)
    (root / "pipelines" / "train.py").write_text(STEPS)
    (root / "pipelines" / "train.yaml").write_text(SPEC)


def ingest_visits(project: Project) -> None:
    """DAYS days of one visit per user; pages cycle so that every week has both labels."""
    events = [{"schema": VISIT,
               "event_time": (START + dt.timedelta(days=d, hours=u)).isoformat(),
               "data": {"user_id": f"u{u}", "pages": (d * 7 + u * 3) % 10,
                        "seconds": float((d * 5 + u) % 13)}}
              for d in range(DAYS) for u in range(USERS)]
    assert project.ingest(events).accepted == len(events)
    project.transform()


def policy(**changes: Any) -> RetrainingSpec:
    spec = RetrainingSpec(
        name="retrain_purchase", pipeline="pipelines/train.yaml", model="purchase",
        deployment=None,
        evaluation=EvaluationSpec(table="user_daily", label="bought", timestamp="day_end"),
        holdout=dt.timedelta(days=7), metric="auc", margin=0.01, min_rows=10)
    return dataclasses.replace(spec, **changes)
