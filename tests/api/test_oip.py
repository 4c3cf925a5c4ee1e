"""The Open Inference Protocol v2 routes: the specification's JSON shapes, and a real client
of the protocol (tritonclient) against a live server."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.api.app import create_app
from flywheel.project import Project
from tests.api.support import AsgiClient, live_server

INFER = "/v2/models/purchase/infer"


def _expected(models: Project, pages: float, seconds: float) -> float:
    batch = models.deployments.get("purchase").predict(
        instances=[{"pages": pages, "seconds": seconds}])
    probability: float = batch.rows[0].outputs["probability"]
    return probability


def test_health_and_server_metadata(api: AsgiClient) -> None:
    assert api.get("/v2/health/live").json() == {"live": True}
    assert api.get("/v2/health/ready").json() == {"ready": True}
    assert api.get("/v2").json() == {"name": "flywheel", "version": "0.1.0", "extensions": []}


def test_model_metadata_and_readiness(api: AsgiClient) -> None:
    metadata = api.get("/v2/models/purchase").json()
    assert metadata["name"] == "purchase" and metadata["versions"] == ["1"]
    assert isinstance(metadata["platform"], str)
    assert metadata["inputs"] == [{"name": "user_id", "datatype": "BYTES", "shape": [-1]},
                                  {"name": "pages", "datatype": "FP64", "shape": [-1]},
                                  {"name": "seconds", "datatype": "FP64", "shape": [-1]}]
    assert {o["name"]: o["datatype"] for o in metadata["outputs"]} == {
        "label": "BYTES", "probability": "FP64", "prediction_id": "BYTES", "member": "BYTES",
        "model_version": "INT64"}
    assert api.get("/v2/models/purchase/ready").json() == {"name": "purchase", "ready": True}
    assert api.get("/v2/models/purchase/versions/1/ready").json()["ready"] is True
    assert api.get("/v2/models/purchase/versions/1").json() == metadata
    for path in ("/v2/models/nope", "/v2/models/nope/ready", "/v2/models/purchase/versions/7"):
        answer = api.get(path)
        assert answer.status_code == 404 and set(answer.json()) == {"error"}, path


def test_infer_by_entity_keys_by_columns_and_by_one_matrix(models: Project, api: AsgiClient
                                                           ) -> None:
    by_entity = api.post(INFER, json={"id": "42", "inputs": [
        {"name": "user_id", "shape": [2], "datatype": "BYTES", "data": ["u3", "u5"]}]})
    assert by_entity.status_code == 200, by_entity.text
    body = by_entity.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("purchase", "1", "42")
    outputs = {o["name"]: o for o in body["outputs"]}
    assert set(outputs) == {"label", "probability", "prediction_id", "member", "model_version"}
    probability = outputs["probability"]
    assert (probability["datatype"], probability["shape"]) == ("FP64", [2])
    assert probability["data"] == pytest.approx([_expected(models, 3, 4.5),
                                                 _expected(models, 5, 7.5)])
    assert outputs["model_version"]["data"] == [1, 1]
    columns = api.post(INFER, json={"inputs": [
        {"name": "pages", "shape": [2, 1], "datatype": "INT64", "data": [[3], [5]]},
        {"name": "seconds", "shape": [2], "datatype": "FP32", "data": [4.5, 7.5]}],
        "outputs": [{"name": "probability"}]}).json()
    assert "id" not in columns and [o["name"] for o in columns["outputs"]] == ["probability"]
    assert columns["outputs"][0]["data"] == pytest.approx(probability["data"])
    matrix = api.post(INFER, json={"inputs": [
        {"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [3, 4.5, 5, 7.5]}],
        "outputs": [{"name": "probability"}]}).json()
    assert matrix["outputs"][0]["data"] == pytest.approx(probability["data"])


@pytest.mark.parametrize(("body", "status", "reason"), [
    # The specification's own request example: inputs this model does not have.
    ({"id": "42", "inputs": [
        {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
        {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]}],
      "outputs": [{"name": "output0"}]}, 400, "holds 3 element(s), data has 1"),
    ({"inputs": [{"name": "input0", "shape": [4], "datatype": "UINT32",
                  "data": [1, 2, 3, 4]}]}, 400, "unknown input(s) 'input0'"),
    ({"inputs": [{"name": "pages", "shape": [1], "datatype": "FP64", "data": [1]}]}, 400,
     "missing input(s) 'seconds'"),
    ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}, 400,
     "has 3 column(s); the deployment takes 2"),
    ({"inputs": [{"name": "user_id", "shape": [1], "datatype": "BYTES", "data": ["u1"]}],
      "outputs": [{"name": "output0"}]}, 400, "unknown output(s) 'output0'"),
    ({"inputs": [{"name": "user_id", "shape": [1], "datatype": "BYTES", "data": ["ghost"]}]},
     422, "ghost"),
    ({"inputs": [{"name": "user_id", "shape": [1], "datatype": "INT8", "data": [300]}]}, 400,
     "not an integer from -128 to 127"),
    ({"inputs": []}, 400, "`inputs` is empty"),
    ({"id": 42, "inputs": []}, 400, "not an inference request"),
    ({"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}] * 2}, 400,
     "sent twice"),
])
def test_bad_inference_requests_get_the_protocols_error_object(
        api: AsgiClient, body: object, status: int, reason: str) -> None:
    answer = api.post(INFER, json=body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and reason in answer.json()["error"]


def test_unknown_model_and_version_are_404_errors(api: AsgiClient) -> None:
    body = {"inputs": [{"name": "user_id", "shape": [1], "datatype": "BYTES", "data": ["u1"]}]}
    assert api.post("/v2/models/purchase/versions/1/infer", json=body).status_code == 200
    for path in ("/v2/models/nope/infer", "/v2/models/purchase/versions/2/infer"):
        answer = api.post(path, json=body)
        assert answer.status_code == 404 and "error" in answer.json()
    assert api.post(INFER, content=b"not json").json()["error"].startswith("the body is not")


def test_a_triton_client_works_unchanged(models: Project) -> None:
    import tritonclient.http as triton

    with live_server(create_app(models)) as url:
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        try:
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready("purchase")
            assert client.get_server_metadata()["name"] == "flywheel"
            assert client.get_model_metadata("purchase")["versions"] == ["1"]
            features = triton.InferInput("input-0", [2, 2], "FP32")
            features.set_data_from_numpy(np.array([[3, 4.5], [5, 7.5]], dtype=np.float32),
                                         binary_data=False)
            wanted = triton.InferRequestedOutput("probability", binary_data=False)
            result = client.infer("purchase", [features], outputs=[wanted], request_id="7")
            assert result.get_response()["id"] == "7"
            assert result.as_numpy("probability").tolist() == pytest.approx(
                [_expected(models, 3, 4.5), _expected(models, 5, 7.5)])
            users = triton.InferInput("user_id", [1], "BYTES")
            users.set_data_from_numpy(np.array([b"u3"], dtype=np.object_), binary_data=False)
            answer = client.infer("purchase", [users])
            assert answer.as_numpy("member").tolist() == ["purchase"]
            with pytest.raises(triton.InferenceServerException, match="unknown input"):
                client.infer("purchase", [triton.InferInput("nope", [1], "FP32")
                                          .set_data_from_numpy(np.zeros(1, np.float32),
                                                               binary_data=False)])
        finally:
            client.close()
