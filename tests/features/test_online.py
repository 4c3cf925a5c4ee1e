"""Materialisation and online reads: consistency with offline, incremental, TTL, push."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.features.online import OnlineFeatures
from flywheel.project import Project
from tests.helpers import VISIT, write_visits_project

DEFINITIONS = '''
import datetime as dt
from flywheel.features import Entity, FeatureService, FeatureView, on_demand

user = Entity(name="user", join_keys=["user_id"])
visits = FeatureView(name="visits", entities=[user], source="user_visits",
                     features=["pages", "seconds"], ttl=dt.timedelta(days={ttl_days}))
score = FeatureService(name="score", features=["visits:*"])


@on_demand(sources=["visits:pages", "visits:seconds"], request=["budget"],
           features=["pace", "over_budget"])
def pacing(row):
    pace = None if not row["pages"] else row["seconds"] / row["pages"]
    return {"pace": pace, "over_budget": row["seconds"] is not None
            and row["seconds"] > row["budget"]}
'''


def _now_minus(days: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat()


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_visits_project(project_dir)
    (project_dir / "definitions.py").write_text(DEFINITIONS.replace("{ttl_days}", "30"))
    with Project.open(project_dir) as project:
        project.apply()
        yield project


def visit(user: str, pages: int, days_ago: float) -> dict[str, object]:
    return {"schema": VISIT, "event_time": _now_minus(days_ago),
            "data": {"user_id": user, "pages": pages, "seconds": pages * 1.5}}


def test_online_equals_offline_at_now(project: Project) -> None:
    events = [visit(f"u{i % 7}", i, days_ago=(i * 13) % 40) for i in range(60)]
    assert project.ingest(events).accepted == 60
    project.transform()
    runs = project.features.materialize()
    assert runs[0].mode == "full" and runs[0].rows > 0
    users = [f"u{i}" for i in range(8)]  # u7 was never seen
    online = project.features.get_online_features(entities={"user_id": users},
                                                  feature_service="score")
    import pyarrow as pa

    now = dt.datetime.now(dt.UTC)
    offline = project.features.get_historical_features(
        pa.table({"user_id": users, "event_timestamp": [now] * len(users)}),
        feature_service="score").to_arrow()
    assert online.columns["pages"] == offline.column("pages").to_pylist()
    assert online.columns["seconds"] == offline.column("seconds").to_pylist()
    assert online.found["visits"][-1] is False  # the unknown user is flagged, not an error


def test_materialize_is_incremental_and_skips_when_nothing_changed(project: Project) -> None:
    project.ingest([visit("a", 1, 2), visit("b", 2, 2)])
    project.transform()
    assert project.features.materialize()[0].rows == 2
    assert project.features.materialize()[0].mode == "skipped"
    project.ingest([visit("a", 9, 0.5)])
    project.transform()
    run = project.features.materialize()[0]
    assert (run.mode, run.rows) == ("incremental", 1)
    values = project.features.get_online_features(entities={"user_id": ["a", "b"]},
                                                  features=["visits:pages"])
    assert values.columns["pages"] == [9, 2]
    project.ingest([visit("a", 5, 1.5)])  # late: older than what is online
    project.transform()
    project.features.materialize()
    assert project.features.get_online_features(
        entities={"user_id": ["a"]}, features=["visits:pages"]).columns["pages"] == [9]


def test_values_past_their_ttl_are_null_and_flagged(project: Project) -> None:
    project.ingest([visit("old", 3, 40), visit("new", 4, 1)])
    project.transform()
    project.features.materialize()
    values = project.features.get_online_features(entities={"user_id": ["old", "new"]},
                                                  features=["visits:pages"])
    assert values.columns["pages"] == [None, 4]
    assert values.found["visits"] == [False, True]


def test_push_updates_online_at_once_and_the_log(project: Project) -> None:
    project.ingest([visit("p", 1, 1)])
    project.transform()
    project.features.materialize()
    now = dt.datetime.now(dt.UTC)
    result = project.features.push("visits", [
        {"user_id": "p", "pages": 42, "seconds": 1.0, "event_time": now.isoformat()},
        {"user_id": "q", "pages": "not a number", "seconds": 1.0,
         "event_time": now.isoformat()}], schema=VISIT)
    assert (result.accepted, result.rejected) == (1, 1)
    online = project.features.get_online_features(entities={"user_id": ["p", "q"]},
                                                  features=["visits:pages"])
    assert online.columns["pages"] == [42, None]
    project.transform()  # offline catches up from the log
    table = project.tables.read("user_visits")
    assert 42 in table.column("pages").to_pylist()


def test_on_demand_features_are_the_same_offline_and_online(project: Project) -> None:
    import pyarrow as pa

    project.ingest([visit("a", 4, 1), visit("b", 0, 1)])
    project.transform()
    project.features.materialize()
    wanted = ["pacing:pace", "pacing:over_budget", "visits:pages"]
    online = project.features.get_online_features(
        entities={"user_id": ["a", "b", "zz"]}, features=wanted,
        request_data={"budget": [5.0, 5.0, 5.0]})
    offline = project.features.get_historical_features(
        pa.table({"user_id": ["a", "b", "zz"], "budget": [5.0, 5.0, 5.0],
                  "event_timestamp": [dt.datetime.now(dt.UTC)] * 3}),
        features=wanted).to_arrow()
    assert online.columns["pace"] == offline.column("pace").to_pylist() == [1.5, None, None]
    assert online.columns["over_budget"] == offline.column("over_budget").to_pylist() == [
        True, False, False]
    assert "seconds" not in online.columns and "seconds" not in offline.column_names
    assert online.columns["pages"] == [4, 0, None]


def test_a_reapplied_definition_changes_the_next_online_read(project: Project) -> None:
    project.ingest([visit("a", 4, 10)])
    project.transform()
    project.features.materialize()
    def read() -> OnlineFeatures:
        return project.features.get_online_features(entities={"user_id": ["a"]},
                                                    features=["visits:pages"])

    assert read().columns["pages"] == [4]
    # The same request shape again, after the TTL shrank below the value's age.
    (project.root / "definitions.py").write_text(DEFINITIONS.replace("{ttl_days}", "5"))
    project.apply()
    again = read()
    assert again.columns["pages"] == [None]
    assert again.found["visits"] == [False]


def test_request_shapes_are_checked_every_time(project: Project) -> None:
    from flywheel._core.errors import InputError

    features = project.features
    for _ in range(2):  # the second call hits the compiled reader
        with pytest.raises(InputError, match="same number of values"):
            features.get_online_features(entities={"user_id": ["a", "b"], "x": [1]},
                                         features=["visits:pages"])
        with pytest.raises(InputError, match="needs entity key"):
            features.get_online_features(entities={"account": ["a"]},
                                         features=["visits:pages"])


def test_request_data_over_http_and_the_cli(project: Project) -> None:
    import json

    from typer.testing import CliRunner

    from flywheel.api.app import create_app
    from flywheel.cli.main import app
    from tests.api.support import AsgiClient

    project.ingest([visit("a", 4, 6)])
    project.transform()
    project.features.materialize()
    body = {"entities": {"user_id": ["a", "a"]}, "features": ["pacing:over_budget"],
            "request_data": {"budget": [5, 10]}}
    with AsgiClient(create_app(project)) as client:
        answer = client.post("/v1/features/online", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["features"]["over_budget"] == [True, False]
        uneven = client.post("/v1/features/online",
                             json={**body, "request_data": {"budget": [5]}})
        assert uneven.status_code == 400
        assert "one value per entity (2)" in uneven.json()["detail"]
    result = CliRunner().invoke(app, ["-p", str(project.root), "features", "get",
                                      "-e", "user_id=a", "-f", "pacing:over_budget",
                                      "-r", "budget=5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["features"]["over_budget"] == [True]
