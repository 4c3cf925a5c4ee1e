"""Feedback by transforms: the shipped `predictions_with_feedback` (every prediction and its
latest feedback, rebuilt by replay), and a project's own transform that derives outcomes
from domain events: a purchase by the same user within 30 minutes after a prediction is a
positive, and a prediction whose 30 minutes have passed without one is a negative."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel.project import Project
from flywheel.serving.derived_feedback import feedback_events
from flywheel.serving.events import FEEDBACK_SCHEMA, PREDICTION_SCHEMA
from flywheel.serving.feedback_table import PREDICTIONS_WITH_FEEDBACK
from tests.helpers import object_schema, write_schema

PURCHASE = "iglu:com.acme/purchase/jsonschema/1-0-0"
T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
WINDOW = dt.timedelta(minutes=30)

# The window ends 30 minutes after the prediction; "passed" is judged against the latest
# event time in the log, not the clock, so that a replay derives the same outcomes.
PURCHASE_FEEDBACK = """-- inputs: predictions=dev.flywheel/prediction, purchases=com.acme/purchase
-- materialized: table
with seen as (
    select greatest((select max(event_time) from predictions),
                    (select max(event_time) from purchases)) as upto
),
bought as (
    select p.event_id as prediction_id
    from predictions p join purchases b
      on p.entity_key = 'user_id' and b.user_id = p.entity_id
     and b.event_time >= p.event_time and b.event_time <= p.event_time + interval 30 minute
    group by p.event_id
)
select p.event_id as prediction_id,
       case when b.prediction_id is null then 0.0 else 1.0 end::double as outcome,
       p.event_time + interval 30 minute as event_time
from predictions p left join bought b on b.prediction_id = p.event_id, seen
where not p.shadow
  and (b.prediction_id is not null or p.event_time + interval 30 minute <= seen.upto)
"""


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def prediction(pid: str, user: str, minutes: float, *, shadow: bool = False
               ) -> dict[str, Any]:
    return {"schema": PREDICTION_SCHEMA, "event_id": pid, "event_time": at(minutes),
            "data": {"prediction_id": pid, "deployment": "purchase", "member": "main",
                     "model": "purchase", "model_version": 1, "entity_key": "user_id",
                     "entity_id": user, "features": {"pages": 3}, "outputs":
                     {"label": True, "probability": 0.7}, "latency_ms": 1.5,
                     "shadow": shadow, "defaulted": False}}


def purchase(user: str, minutes: float) -> dict[str, Any]:
    return {"schema": PURCHASE, "event_time": at(minutes),
            "data": {"user_id": user, "amount": 10.0}}


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    write_schema(project_dir, PURCHASE, object_schema(
        {"user_id": {"type": "string"}, "amount": {"type": "number"}}, ["user_id"]))
    (project_dir / "transforms").mkdir(exist_ok=True)
    (project_dir / "transforms" / "purchase_feedback.sql").write_text(PURCHASE_FEEDBACK)
    opened = Project.open(project_dir)
    opened.apply()
    try:
        yield opened
    finally:
        opened.close()


def rows_by_id(project: Project, table: str) -> dict[str, dict[str, Any]]:
    return {r["prediction_id"]: r for r in project.tables.read(table).to_pylist()}


def test_the_shipped_table_joins_a_project_once_it_has_a_prediction(
        project: Project) -> None:
    assert PREDICTIONS_WITH_FEEDBACK not in project.apply().transforms  # serves nothing yet
    assert project.ingest([prediction("p1", "alice", 0)], door="predict").accepted == 1
    assert PREDICTIONS_WITH_FEEDBACK in project.apply().transforms
    runs = {run.name: run for run in project.transform()}
    assert runs[PREDICTIONS_WITH_FEEDBACK].rows_out == 1
    table = project.tables.read(PREDICTIONS_WITH_FEEDBACK)
    assert {"prediction_id", "deployment", "model_version", "entity_id", "outcome",
            "feedback_at", "feedback_source", "feedback_count"} <= set(table.column_names)


def test_predictions_join_their_latest_feedback(project: Project) -> None:
    events = [prediction("p1", "alice", 0), prediction("p2", "bob", 1),
              prediction("p3", "carol", 2)]
    feedback = [
        {"schema": FEEDBACK_SCHEMA, "event_time": at(5),
         "data": {"prediction_id": "p1", "outcome": 0.0}},
        {"schema": FEEDBACK_SCHEMA, "event_time": at(9),  # later in time: this one counts
         "data": {"prediction_id": "p1", "outcome": 1.0}},
        {"schema": FEEDBACK_SCHEMA, "event_time": at(4),
         "data": {"prediction_id": "p2", "outcome": 0.25}},
    ]
    assert project.ingest(events, door="predict").accepted == 3
    assert project.ingest(feedback, door="api").accepted == 3
    project.transform()
    joined = rows_by_id(project, PREDICTIONS_WITH_FEEDBACK)
    assert set(joined) == {"p1", "p2", "p3"}
    assert (joined["p1"]["outcome"], joined["p1"]["feedback_count"]) == (1.0, 2)
    assert joined["p1"]["feedback_at"] == T0 + dt.timedelta(minutes=9)
    assert joined["p1"]["feedback_source"] == "api"
    assert joined["p2"]["outcome"] == 0.25
    assert (joined["p3"]["outcome"], joined["p3"]["feedback_count"]) == (None, 0)
    assert joined["p3"]["entity_id"] == "carol" and joined["p3"]["model_version"] == 1
    before = project.tables.content_hash(PREDICTIONS_WITH_FEEDBACK)
    project.replay()
    assert project.tables.content_hash(PREDICTIONS_WITH_FEEDBACK) == before
    traced = project.lineage(PREDICTIONS_WITH_FEEDBACK)
    assert {node.name for node in traced.inputs} == {"dev.flywheel/prediction",
                                                     "dev.flywheel/feedback"}


def test_a_purchase_within_30_minutes_is_a_positive_outcome(project: Project) -> None:
    assert project.ingest([
        prediction("bought", "alice", 0),           # alice buys 10 minutes later
        prediction("late", "bob", 0),               # bob buys, but after 31 minutes
        prediction("before", "carol", 20),          # carol bought before she was scored
        prediction("other", "dave", 0),             # only someone else bought
        prediction("pending", "erin", 50),          # her 30 minutes have not passed yet
        prediction("shadowed", "alice", 0, shadow=True),
    ], door="predict").accepted == 6
    assert project.ingest([purchase("alice", 10), purchase("bob", 31),
                           purchase("carol", 15), purchase("zed", 60)]).accepted == 4
    project.transform()
    outcomes = {pid: row["outcome"] for pid, row in rows_by_id(project,
                                                               "purchase_feedback").items()}
    assert outcomes == {"bought": 1.0, "late": 0.0, "before": 0.0, "other": 0.0}
    assert all(isinstance(value, float) for value in outcomes.values())

    assert project.ingest([purchase("zed", 81)]).accepted == 1  # erin's window has passed
    project.transform()
    derived = rows_by_id(project, "purchase_feedback")
    assert derived["pending"]["outcome"] == 0.0
    assert derived["pending"]["event_time"] == T0 + dt.timedelta(minutes=80)


def test_derived_outcomes_are_logged_as_feedback_once_and_join_the_predictions(
        project: Project) -> None:
    assert project.ingest([prediction("bought", "alice", 0), prediction("idle", "bob", 0)],
                          door="predict").accepted == 2
    assert project.ingest([purchase("alice", 12), purchase("zed", 45)]).accepted == 2
    project.transform()
    events = feedback_events(project.tables.read("purchase_feedback"),
                             source="purchase_feedback")
    assert project.ingest(events, door="purchase_feedback").accepted == 2
    again = project.ingest(feedback_events(project.tables.read("purchase_feedback"),
                                           source="purchase_feedback"),
                           door="purchase_feedback")
    assert (again.accepted, again.duplicates) == (0, 2)
    assert project.log.read("dev.flywheel/feedback").num_rows == 2  # stored once
    project.transform()
    joined = rows_by_id(project, PREDICTIONS_WITH_FEEDBACK)
    assert {pid: row["outcome"] for pid, row in joined.items()} == {"bought": 1.0,
                                                                    "idle": 0.0}
    assert {row["feedback_source"] for row in joined.values()} == {"purchase_feedback"}
    assert all(row["feedback_count"] == 1 for row in joined.values())


def test_a_late_purchase_turns_a_negative_into_a_positive(project: Project) -> None:
    """A purchase logged after its window was judged (late data) changes the derived
    outcome; logged again, the new outcome is a new event and becomes the latest."""
    assert project.ingest([prediction("p", "alice", 0)], door="predict").accepted == 1
    assert project.ingest([purchase("zed", 40)]).accepted == 1
    project.transform()
    first = feedback_events(project.tables.read("purchase_feedback"), source="derived")
    assert [e["data"]["outcome"] for e in first] == [0.0]
    project.ingest(first, door="derived")
    assert project.ingest([purchase("alice", 25)]).accepted == 1  # late, but in the window
    project.transform()
    second = feedback_events(project.tables.read("purchase_feedback"), source="derived")
    assert [e["data"]["outcome"] for e in second] == [1.0]
    assert second[0]["event_id"] != first[0]["event_id"]
    project.ingest(second, door="derived")
    project.transform()
    joined = rows_by_id(project, PREDICTIONS_WITH_FEEDBACK)["p"]
    assert (joined["outcome"], joined["feedback_count"]) == (1.0, 2)


def test_a_project_transform_of_the_same_name_takes_the_shipped_ones_place(
        project: Project, project_dir: Path) -> None:
    (project_dir / "transforms" / f"{PREDICTIONS_WITH_FEEDBACK}.sql").write_text(
        "-- inputs: predictions=dev.flywheel/prediction\n"
        "select event_id as prediction_id, 'mine' as kind from predictions\n")
    assert project.ingest([prediction("p1", "alice", 0)], door="predict").accepted == 1
    project.transform()
    assert project.tables.read(PREDICTIONS_WITH_FEEDBACK).to_pylist() == [
        {"prediction_id": "p1", "kind": "mine"}]


def test_the_loop_served_predictions_feedback_and_a_purchase_join_in_the_table(
        served: Project) -> None:
    """A deployment answers, its predictions go to the log, feedback comes by the API for
    one and from a purchase for another: predictions_with_feedback holds them all."""
    from tests.serving.support import deploy

    deploy(served, "purchase", "model: purchase@champion\n")
    write_schema(served.root, PURCHASE, object_schema(
        {"user_id": {"type": "string"}, "amount": {"type": "number"}}, ["user_id"]))
    (served.root / "transforms" / "purchase_feedback.sql").write_text(PURCHASE_FEEDBACK)
    served.apply()
    answer = served.deployments.get("purchase").predict(entities={"user_id": ["u1", "u2",
                                                                              "u3"]})
    ids = [row.prediction_id for row in answer.rows]
    served.deployments.close()  # every prediction committed
    served.deployments.record_feedback(prediction_id=ids[0], outcome=1.0)
    scored_at = served.log.read("dev.flywheel/prediction").column("event_time")[1].as_py()
    later = (scored_at + dt.timedelta(minutes=5)).isoformat()
    assert served.ingest([{"schema": PURCHASE, "event_time": later,
                           "data": {"user_id": "u2", "amount": 3.0}}]).accepted == 1
    served.transform()
    derived = feedback_events(served.tables.read("purchase_feedback"),
                              source="purchase_feedback")
    assert [(e["data"]["prediction_id"], e["data"]["outcome"]) for e in derived] == [
        (ids[1], 1.0)]  # u2 bought; u1 and u3 are still inside their 30 minutes
    served.ingest(derived, door="purchase_feedback")
    served.transform()
    joined = rows_by_id(served, PREDICTIONS_WITH_FEEDBACK)
    assert set(joined) == set(ids)
    assert (joined[ids[0]]["outcome"], joined[ids[0]]["feedback_source"]) == (1.0, "api")
    assert (joined[ids[1]]["outcome"], joined[ids[1]]["feedback_source"]) == (
        1.0, "purchase_feedback")
    assert joined[ids[2]]["outcome"] is None
    assert {row["entity_id"] for row in joined.values()} == {"u1", "u2", "u3"}
    assert {row["model_version"] for row in joined.values()} == {1}
