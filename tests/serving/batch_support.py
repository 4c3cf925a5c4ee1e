"""A project to score in batches: visits in the log, the `user_visits` feature table built
from them, `user_daily` entity rows (with labels) and a LightGBM model over the `score`
feature service registered as purchase@champion."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel.project import Project
from tests.helpers import VISIT, write_visits_project

DEFINITIONS = '''
from flywheel.features import Entity, FeatureService, FeatureView

user = Entity(name="user", join_keys=["user_id"])
visits = FeatureView(name="visits", entities=[user], source="user_visits",
                     features=["pages", "seconds"])
score = FeatureService(name="score", features=["visits:*"])
'''
USER_DAILY = ("-- inputs: user_visits\n"
              "select user_id, event_time + interval 30 minute as event_timestamp,\n"
              "       pages > 4 as bought\nfrom user_visits\n")
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
USERS = 12


def write_batch_project(root: Path) -> None:
    write_visits_project(root, DEFINITIONS)
    (root / "transforms" / "user_daily.sql").write_text(USER_DAILY)


def visits(count: int, seed: int = 7, offset: int = 0) -> list[dict[str, Any]]:
    """`count` visits of USERS users, one an hour from START (+ `offset` hours)."""
    rng = random.Random(seed)
    return [{"schema": VISIT,
             "event_time": (START + dt.timedelta(hours=offset + i)).isoformat(),
             "data": {"user_id": f"u{rng.randrange(USERS)}", "pages": rng.randrange(10),
                      "seconds": round(rng.uniform(0, 300), 1)}}
            for i in range(count)]


def entity_rows(count: int, seed: int = 3, hours: int = 200) -> pa.Table:
    """Entity rows at random times, of known users and of one never seen."""
    rng = random.Random(seed)
    users = [f"u{rng.randrange(USERS + 1)}" for _ in range(count)]  # u12: no visits
    times = [START + dt.timedelta(minutes=rng.randrange(hours * 60)) for _ in range(count)]
    return pa.table({"user_id": pa.array(users, pa.string()),
                     "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
                     "row": pa.array(range(count), pa.int64())})


def train_and_register(project: Project) -> Any:
    """A LightGBM classifier trained on the training set of `user_daily`, registered as
    purchase@champion (version 1)."""
    import lightgbm

    training = project.features.get_historical_features(
        "select user_id, event_timestamp, bought from user_daily",
        feature_service="score").to_pandas()
    model = lightgbm.LGBMClassifier(n_estimators=8, min_child_samples=3, verbose=-1)
    model.fit(training[["pages", "seconds"]], training["bought"])
    return project.registry.register("purchase", model=model, feature_service="score",
                                     alias="champion")


def build(root: Path, count: int = 150) -> Project:
    write_batch_project(root)
    project = Project.open(root)
    project.apply()
    assert project.ingest(visits(count)).accepted == count
    project.transform()
    train_and_register(project)
    return project
