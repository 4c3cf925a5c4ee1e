"""`POST /v1/models/{deployment}/predict`, `POST /v1/feedback`, `GET /metrics`, and their
token scopes, in process."""

from __future__ import annotations

import pytest

from flywheel.project import Project
from tests.api.serving import PREDICTIONS, logged_ids
from tests.api.support import AsgiClient, client_with_tokens

PREDICT = "/v1/models/purchase/predict"


def test_predict_answers_the_deployments_predictions(models: Project, api: AsgiClient) -> None:
    answer = api.post(PREDICT, json={"entities": {"user_id": ["u3", "u5"]}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = models.deployments.get("purchase").predict(entities={"user_id": ["u3", "u5"]})
    assert body["deployment"] == "purchase" and len(body["predictions"]) == 2
    for got, want in zip(body["predictions"], expected.rows, strict=True):
        assert (got["member"], got["model"], got["version"], got["missing"]) == (
            "purchase", "purchase", 1, [])
        assert got["outputs"]["probability"] == pytest.approx(want.outputs["probability"])
    rows = api.post(PREDICT, json={"instances": [{"pages": 5, "seconds": 7.5}]}).json()
    assert rows["predictions"][0]["outputs"]["probability"] == pytest.approx(
        body["predictions"][1]["outputs"]["probability"])  # u5: 5 pages, 7.5 seconds
    models.deployments.close()
    ids = {p["prediction_id"] for p in body["predictions"] + rows["predictions"]}
    assert ids <= set(logged_ids(models))


@pytest.mark.parametrize(("path", "body", "status", "reason"), [
    ("/v1/models/nope/predict", {"entities": {"user_id": ["u1"]}}, 404,
     "no deployment 'nope' (known: purchase)"),
    (PREDICT, {"entities": {"user_id": ["u1", "ghost", "nobody"]}}, 422, "ghost, nobody"),
    (PREDICT, {"entities": {"user_id": ["u1"]}, "instances": [{}]}, 400, "not both"),
    (PREDICT, {}, 400, "send either `entities` or `instances`"),
    (PREDICT, {"instances": [{"pages": 1}]}, 400, "seconds"),
    (PREDICT, {"instances": [{"pages": "many", "seconds": 1}]}, 400, "'pages' is not a number"),
    (PREDICT, {"entities": {"user_id": "u1"}}, 400, "invalid request"),
    (PREDICT, {"entity": {}}, 400, "invalid request"),
    (PREDICT, b"{", 400, "not JSON"),
    (PREDICT, {"entities": {"user_id": ["u1"]}, "time": "yesterday"}, 400, "RFC 3339"),
    (PREDICT, {"entities": {"user_id": ["u1"]}, "time": "2024-01-01T00:00:00"}, 400,
     "with an offset"),
    (PREDICT, {"entities": {"user_id": ["u1"]}, "time": "2999-01-01T00:00:00Z"}, 400,
     "ahead of the clock"),
])
def test_bad_requests_are_4xx_with_one_line(api: AsgiClient, path: str, body: object,
                                            status: int, reason: str) -> None:
    sent = {"content": body} if isinstance(body, bytes) else {"json": body}
    answer = api.post(path, **sent)
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert reason in detail and "\n" not in detail


def test_a_replayed_request_is_logged_at_its_own_time(models: Project,
                                                      api: AsgiClient) -> None:
    answer = api.post(PREDICT, json={"entities": {"user_id": ["u3"]},
                                     "time": "2024-03-01T12:30:00+01:00"})
    assert answer.status_code == 200, answer.text
    pid = answer.json()["predictions"][0]["prediction_id"]
    models.deployments.close()
    logged = models.log.read(PREDICTIONS, columns=["event_id", "event_time"]).to_pylist()
    (when,) = [row["event_time"] for row in logged if row["event_id"] == pid]
    assert when.isoformat() == "2024-03-01T11:30:00+00:00"


def test_feedback_joins_a_known_prediction(models: Project, api: AsgiClient) -> None:
    prediction = api.post(PREDICT, json={"entities": {"user_id": ["u2"]}}).json()
    pid = prediction["predictions"][0]["prediction_id"]
    stored = api.post("/v1/feedback", json={"prediction_id": pid, "outcome": 1,
                                            "time": "2024-01-01T00:00:00Z"})
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"prediction_id": pid, "stored": True}
    unknown = api.post("/v1/feedback", json={"prediction_id": "never-made", "outcome": 1})
    assert unknown.status_code == 404 and "never-made" in unknown.json()["detail"]
    for bad in ({"prediction_id": pid}, {"prediction_id": pid, "outcome": "yes"},
                {"prediction_id": pid, "outcome": 1, "extra": 1},
                {"prediction_id": " ", "outcome": 0}):
        assert api.post("/v1/feedback", json=bad).status_code == 400, bad
    late = api.post("/v1/feedback", json={"prediction_id": pid, "outcome": 0, "time": "soon"})
    assert late.status_code == 400 and "bad rows" in late.json()["detail"]
    feedback = models.log.read("dev.flywheel/feedback").to_pylist()
    assert [(f["prediction_id"], f["outcome"]) for f in feedback] == [(pid, 1.0)]
    assert str(feedback[0]["event_time"]).startswith("2024-01-01")


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_errors_rows_and_the_log(models: Project, api: AsgiClient
                                                        ) -> None:
    for _ in range(3):
        assert api.post(PREDICT, json={"entities": {"user_id": ["u1", "u2"]}}).is_success
    api.post(PREDICT, json={"entities": {"user_id": ["ghost"]}})
    api.post("/v1/models/nope/predict", json={"entities": {"user_id": ["u1"]}})
    models.deployments.prediction_log.flush(10)
    answer = api.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    labels = {"deployment": "purchase", "member": "purchase", "model_version": "1"}
    assert _value(text, "flywheel_predictions_total", **labels) == 6
    assert _value(text, "flywheel_prediction_batch_rows_count", **labels) == 3
    assert _value(text, "flywheel_predict_latency_seconds_count", **labels) == 3
    assert _value(text, "flywheel_predict_requests_total", deployment="purchase") == 4
    assert _value(text, "flywheel_predict_errors_total", deployment="purchase",
                  status="422") == 1
    assert _value(text, "flywheel_predict_errors_total", deployment="(unknown)",
                  status="404") == 1
    assert _value(text, "flywheel_log_events_total", table=f"{PREDICTIONS}/v1",
                  door="predict", outcome="stored") == 6
    assert _value(text, "flywheel_log_commits_total", table=f"{PREDICTIONS}/v1") >= 1
    assert 'flywheel_bad_rows_total' in text


def test_scopes_predict_and_feedback(models: Project) -> None:
    tokens = {"p-token": ("predict",), "f-token": ("feedback",), "r-token": ("read",)}
    with client_with_tokens(models, tokens) as client:
        def send(path: str, token: str | None, body: object) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return client.post(path, json=body, headers=headers).status_code

        body = {"entities": {"user_id": ["u1"]}}
        assert send(PREDICT, None, body) == 401
        assert send(PREDICT, "f-token", body) == 403
        answer = client.post(PREDICT, json=body, headers={"Authorization": "Bearer p-token"})
        pid = answer.json()["predictions"][0]["prediction_id"]
        feedback = {"prediction_id": pid, "outcome": 1}
        assert send("/v1/feedback", "p-token", feedback) == 403
        assert send("/v1/feedback", "f-token", feedback) == 200
        infer = {"inputs": [{"name": "user_id", "shape": [1], "datatype": "BYTES",
                             "data": ["u1"]}]}
        assert send("/v2/models/purchase/infer", "r-token", infer) == 403
        assert send("/v2/models/purchase/infer", "p-token", infer) == 200
        refused = client.get("/v2/models/purchase")
        assert refused.status_code == 401 and "error" in refused.json()
        assert client.get("/v2/health/live").json() == {"live": True}  # probes need none
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer r-token"}).is_success
