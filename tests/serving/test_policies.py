"""Each policy through `Deployment.predict`: what answers, and what the log holds."""

from __future__ import annotations

import json
import math
import random

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from flywheel.project import Project
from flywheel.serving import MissingEntitiesError, UnknownDeploymentError
from tests.serving.support import deploy, features_of, logged, users

PREDICTIONS = "dev.flywheel/prediction"


def model(project: Project, uri: str) -> object:
    return project.registry.load(uri).model


def test_single_scores_the_entities_online_features(served: Project) -> None:
    deploy(served, "purchase", "model: purchase@champion\n")
    deployment = served.deployments.get("purchase")
    batch = deployment.predict(entities={"user_id": ["u3", "u5"]})
    champion = model(served, "purchase@champion")
    for row, user in zip(batch.rows, (3, 5), strict=True):
        expected = champion.predict_proba(features_of(user))[0][1]  # type: ignore[attr-defined]
        assert row.outputs["probability"] == pytest.approx(expected)
        assert (row.member, row.model, row.version, row.missing) == ("purchase", "purchase", 1,
                                                                     [])
    assert deployment.members[0].inputs == ["pages", "seconds"] and deployment.ready()
    answer = batch.to_dict()
    assert answer["deployment"] == "purchase" and len(answer["predictions"]) == 2
    assert set(answer["predictions"][0]) == {"prediction_id", "member", "model", "version",
                                             "outputs", "missing"}
    instance = deployment.predict(instances=[{"pages": 5, "seconds": 7.5}]).rows[0]
    assert instance.outputs["probability"] == pytest.approx(batch.rows[1].outputs["probability"])
    served.deployments.close()
    rows = {r["event_id"]: r for r in logged(served, PREDICTIONS)}
    first = rows[batch.rows[0].prediction_id]
    assert (first["entity_key"], first["entity_id"], first["shadow"]) == ("user_id", "u3", False)
    assert json.loads(first["features"]) == {"pages": 3, "seconds": 4.5}
    assert json.loads(first["outputs"]) == batch.rows[0].outputs and first["latency_ms"] > 0


def test_missing_entities_are_refused_or_scored_with_the_defaults(served: Project) -> None:
    deploy(served, "strict", "model: purchase@champion\n")
    with pytest.raises(MissingEntitiesError, match="nobody, ghost") as caught:
        served.deployments.get("strict").predict(entities={"user_id": ["u1", "nobody",
                                                                       "ghost"]})
    assert caught.value.http_status == 422 and caught.value.missing == ["nobody", "ghost"]
    deploy(served, "lenient", "model: purchase@champion\ndefaults: {pages: 4, seconds: 6}\n")
    rows = served.deployments.get("lenient").predict(entities={"user_id": ["u4", "nobody"]}).rows
    assert rows[0].missing == [] and rows[1].missing == ["visits"]
    assert rows[1].outputs == rows[0].outputs  # u4 has 4 pages and 6 seconds
    with pytest.raises(UnknownDeploymentError, match="known: lenient, strict"):
        served.deployments.get("nope")


def test_weighted_averages_the_members_outputs(served: Project) -> None:
    deploy(served, "spend", "policy: weighted\nmembers:\n"
           "  - {name: a, model: spend@champion, weight: 0.25}\n"
           "  - {name: b, model: spend@challenger, weight: 0.75}\n")
    row = served.deployments.get("spend").predict(entities={"user_id": ["u6"]}).rows[0]
    a = model(served, "spend@champion").predict(features_of(6))[0]  # type: ignore[attr-defined]
    b = model(served, "spend@challenger").predict(features_of(6))[0]  # type: ignore[attr-defined]
    assert row.outputs["value"] == pytest.approx(0.25 * a + 0.75 * b)
    assert row.member == "weighted" and row.outputs["members"]["b"]["value"] == pytest.approx(b)


def test_stacking_is_the_meta_model_over_the_members_outputs(served: Project) -> None:
    inputs = pd.DataFrame({"a.probability": [0.1, 0.9, 0.3, 0.8],
                           "b.probability": [0.2, 0.7, 0.6, 0.1]})
    meta = LogisticRegression().fit(inputs, [0, 1, 0, 1])
    served.registry.register("stack", model=meta, alias="champion")
    deploy(served, "stacked", "policy: stacking\nmeta_model: stack@champion\nmembers:\n"
           "  - {name: a, model: purchase@champion}\n  - {name: b, model: purchase@challenger}\n")
    assert [s.name for s in served.deployments.check()] == ["stacked"]
    rows = served.deployments.get("stacked").predict(entities={"user_id": ["u2", "u6"]}).rows
    for row in rows:
        given = pd.DataFrame({"a.probability": [row.outputs["members"]["a"]["probability"]],
                              "b.probability": [row.outputs["members"]["b"]["probability"]]})
        assert row.outputs["probability"] == pytest.approx(meta.predict_proba(given)[0][1])
        assert (row.member, row.model, row.version) == ("stacking", "stack", 1)


CANARY = """policy: canary
members:
  - {name: champion, model: purchase@champion}
  - {name: challenger, model: purchase@challenger}
canary: {share: 0.2}
defaults: {pages: 1, seconds: 1.5}
"""


def test_canary_sends_its_share_and_sticks_to_each_entity(served: Project) -> None:
    deploy(served, "canary", CANARY)
    deployment = served.deployments.get("canary")
    entities = [f"user-{i}" for i in range(2_000)]
    first = {r.entity_id: r.member for r in deployment.predict(
        entities={"user_id": entities}).rows}
    count, share = len(entities), 0.2
    sigma = math.sqrt(count * share * (1 - share))
    assert abs(list(first.values()).count("challenger") - count * share) < 5 * sigma
    shuffled = random.Random(3).sample(entities, 500)
    again = deployment.predict(entities={"user_id": shuffled}).rows
    assert all(r.member == first[r.entity_id] for r in again)
    versions = {r.member: r.version for r in again}
    assert versions == {"champion": 1, "challenger": 2}


def test_shadow_is_logged_and_never_returned(served: Project) -> None:
    deploy(served, "shadowed", "policy: shadow\nmembers:\n"
           "  - {name: champion, model: purchase@champion}\n"
           "  - {name: shadow, model: purchase@challenger}\n")
    deployment = served.deployments.get("shadowed")
    answered = [row for _ in range(5)
                for row in deployment.predict(entities={"user_id": users(8)}).rows]
    assert {(r.member, r.version) for r in answered} == {("champion", 1)}
    served.deployments.close()
    rows = logged(served, PREDICTIONS)
    shadows = [r for r in rows if r["shadow"]]
    assert {(r["member"], r["model_version"]) for r in shadows} == {("shadow", 2)}
    assert len(shadows) == len(answered) == len(rows) - len(shadows)
    returned = {r.prediction_id for r in answered}
    assert returned.isdisjoint(r["event_id"] for r in shadows)
    assert sorted(r["entity_id"] for r in shadows) == sorted(r.entity_id or "" for r in answered)
    challenger = model(served, "purchase@challenger")
    one = next(r for r in shadows if r["entity_id"] == "u3")
    expected = challenger.predict_proba(features_of(3))[0][1]  # type: ignore[attr-defined]
    assert json.loads(one["outputs"])["probability"] == pytest.approx(expected)
