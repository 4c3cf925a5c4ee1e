"""Each routing policy driven through `POST /v1/models/{deployment}/predict` (and feedback
through `POST /v1/feedback`): what answers, what is logged, how shares move."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from flywheel.api.app import create_app
from flywheel.project import Project
from tests.api.serving import PREDICTIONS, models_project
from tests.api.support import AsgiClient
from tests.serving.support import deploy, features_of, users


def predict(api: AsgiClient, deployment: str, ids: list[str]) -> list[dict[str, object]]:
    answer = api.post(f"/v1/models/{deployment}/predict", json={"entities": {"user_id": ids}})
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, object]] = answer.json()["predictions"]
    return rows


def test_weighted_answers_the_weighted_average(models: Project, api: AsgiClient) -> None:
    deploy(models, "spend", "policy: weighted\nmembers:\n"
           "  - {name: a, model: spend@champion, weight: 0.25}\n"
           "  - {name: b, model: spend@challenger, weight: 0.75}\n")
    row = predict(api, "spend", ["u6"])[0]
    a = models.registry.load("spend@champion").model.predict(features_of(6))[0]
    b = models.registry.load("spend@challenger").model.predict(features_of(6))[0]
    assert row["member"] == "weighted"
    assert row["outputs"]["value"] == pytest.approx(0.25 * a + 0.75 * b)  # type: ignore[index]


def test_stacking_answers_the_meta_models_output(models: Project, api: AsgiClient) -> None:
    inputs = pd.DataFrame({"a.probability": [0.1, 0.9, 0.3, 0.8],
                           "b.probability": [0.2, 0.7, 0.6, 0.1]})
    meta = LogisticRegression().fit(inputs, [0, 1, 0, 1])
    models.registry.register("stack", model=meta, alias="champion")
    deploy(models, "stacked", "policy: stacking\nmeta_model: stack@champion\nmembers:\n"
           "  - {name: a, model: purchase@champion}\n  - {name: b, model: purchase@challenger}\n")
    for row in predict(api, "stacked", ["u2", "u6"]):
        outputs: dict[str, dict[str, dict[str, float]]] = row["outputs"]  # type: ignore[assignment]
        given = pd.DataFrame({f"{m}.probability": [outputs["members"][m]["probability"]]
                              for m in ("a", "b")})
        assert row["outputs"]["probability"] == pytest.approx(  # type: ignore[index]
            meta.predict_proba(given)[0][1])
        assert (row["member"], row["model"], row["version"]) == ("stacking", "stack", 1)


def test_canary_shares_within_bounds_and_sticky(api: AsgiClient, models: Project) -> None:
    deploy(models, "canary", "policy: canary\nmembers:\n"
           "  - {name: champion, model: purchase@champion}\n"
           "  - {name: challenger, model: purchase@challenger}\n"
           "canary: {share: 0.2}\ndefaults: {pages: 1, seconds: 1.5}\n")
    ids = [f"user-{i}" for i in range(2_000)]
    first = dict(zip(ids, (r["member"] for r in predict(api, "canary", ids)), strict=True))
    sigma = math.sqrt(len(ids) * 0.2 * 0.8)
    assert abs(list(first.values()).count("challenger") - 0.2 * len(ids)) < 5 * sigma
    again = ids[::-7]
    assert [r["member"] for r in predict(api, "canary", again)] == [first[i] for i in again]


def test_shadow_is_logged_never_returned(models: Project, api: AsgiClient) -> None:
    deploy(models, "shadowed", "policy: shadow\nmembers:\n"
           "  - {name: champion, model: purchase@champion}\n"
           "  - {name: shadow, model: purchase@challenger}\n")
    answered = [r for _ in range(3) for r in predict(api, "shadowed", users(5))]
    assert {(r["member"], r["version"]) for r in answered} == {("champion", 1)}
    models.deployments.close()
    rows = models.log.read(PREDICTIONS).to_pylist()
    shadows = [r for r in rows if r["shadow"]]
    assert len(shadows) == len(answered) and {r["member"] for r in shadows} == {"shadow"}
    assert {r["prediction_id"] for r in answered}.isdisjoint(r["event_id"] for r in shadows)
    assert all("probability" in json.loads(r["outputs"]) for r in shadows)


BANDIT = """policy: bandit
members:
  - {name: a, model: purchase@champion}
  - {name: b, model: purchase@challenger}
bandit: {algorithm: thompson, floor: 0.05}
"""


def _share_of_b(api: AsgiClient, rounds: int, *, feedback: bool) -> float:
    rows = 0
    chosen = 0
    for i in range(rounds):
        for row in predict(api, "bandit", users(5, start=i)):
            rows += 1
            chosen += row["member"] == "b"
            if feedback:  # b's predictions succeed, a's fail
                outcome = 1 if row["member"] == "b" else 0
                sent = api.post("/v1/feedback", json={"prediction_id": row["prediction_id"],
                                                      "outcome": outcome})
                assert sent.status_code == 200, sent.text
    return chosen / rows


def test_bandit_moves_to_the_better_member_and_remembers(tmp_path: Path) -> None:
    project = models_project(tmp_path / "b")
    deploy(project, "bandit", BANDIT)
    with AsgiClient(create_app(project)) as api:
        # Before any feedback the members share evenly: 40 draws of one half.
        assert _share_of_b(api, 40, feedback=False) < 0.75
        _share_of_b(api, 30, feedback=True)
        # Then b takes all but a's floor (5%) and a's slim chance: about 95%.
        assert _share_of_b(api, 40, feedback=False) > 0.75
    project.close()
    with Project.open(tmp_path / "b") as restarted, AsgiClient(create_app(restarted)) as api:
        assert _share_of_b(api, 40, feedback=False) > 0.75  # recomputed from the log
