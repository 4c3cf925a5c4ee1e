"""The server's ASGI fast path answers exactly as the FastAPI routes would.

`FastPath` takes `POST /v1/models/{deployment}/predict` and the Open Inference Protocol's
`POST /v2/models/{name}[/versions/{version}]/infer` before FastAPI routes them. These
tests prove that it does (the routes' body reader is broken and the answers still come),
and that for every input, good or bad, with tokens or without, its answer (status, body,
the headers a client acts on) is the route's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flywheel._core.hashing import sha256_text
from flywheel._core.metadata.tokens import TokenRecord
from flywheel.api import oip, predict
from flywheel.api.app import FlywheelApp, create_app
from flywheel.project import Project
from tests.api.support import AsgiClient

PREDICT = "/v1/models/purchase/predict"
INFER = "/v2/models/purchase/infer"
TOKENS = {"p-token": ("predict",), "f-token": ("feedback",), "a-token": ("admin",)}


def _without_fast_path(app: FlywheelApp) -> FlywheelApp:
    app.fast_path = None
    return app


@pytest.fixture
def both(models: Project) -> Iterator[tuple[AsgiClient, AsgiClient]]:
    """A client of the app as served, and one of the same app without the fast path."""
    for i, (token, scopes) in enumerate(TOKENS.items()):
        models.metadata.add_token(TokenRecord(f"t{i}", sha256_text(token), scopes))
    fast = create_app(models, require_tokens=True)
    plain = _without_fast_path(create_app(models, require_tokens=True))
    with AsgiClient(fast) as fast_client, AsgiClient(plain) as plain_client:
        yield fast_client, plain_client


async def _route_reached(*args: object) -> bytes:
    raise AssertionError("the FastAPI route was reached")


def _a_json_answer(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.content)
    body: dict[str, Any] = answer.json()
    return body


def test_the_fast_path_answers_without_the_route(models: Project,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(predict, "read_body", _route_reached)  # only the route reads so
    with AsgiClient(create_app(models)) as client:
        answer = client.post(PREDICT, json={"entities": {"user_id": ["u1"]}})
        assert _a_json_answer(answer)["predictions"][0]["member"] == "purchase"
        # Another method on the same path is FastAPI's, as before.
        assert client.get(PREDICT).status_code == 405


def test_inference_is_answered_without_the_route(models: Project,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oip, "read_body", _route_reached)  # only the route reads so
    with AsgiClient(create_app(models)) as client:
        for path in (INFER, "/v2/models/purchase/versions/1/infer"):
            answer = client.post(path, content=USERS, headers=JSON)
            assert _a_json_answer(answer)["model_name"] == "purchase"
        assert client.get(INFER).status_code == 405
        assert client.get("/v2/models/purchase").status_code == 200  # the app's, as before


def _answer(client: AsgiClient, path: str, body: bytes, headers: dict[str, str]
            ) -> tuple[int, Any, str | None, str | None]:
    got = client.post(path, content=body, headers=headers)
    payload = got.json()
    if got.status_code == 200 and "predictions" in payload:  # ids differ between calls
        payload = [{k: v for k, v in p.items() if k != "prediction_id"}
                   for p in payload["predictions"]]
    elif got.status_code == 200:
        payload["outputs"] = [o for o in payload["outputs"] if o["name"] != "prediction_id"]
    return (got.status_code, payload, got.headers.get("www-authenticate"),
            got.headers.get("content-type"))


JSON = {"Content-Type": "application/json"}
GOOD = b'{"entities": {"user_id": ["u1", "u2"]}}'
USERS = b'{"id": "7", "inputs": [{"name": "user_id", "shape": [2], "datatype": "BYTES", ' \
    b'"data": ["u1", "u2"]}]}'
COLUMNS = b'{"inputs": [{"name": "pages", "shape": [1], "datatype": "INT64", "data": [3]}, ' \
    b'{"name": "seconds", "shape": [1], "datatype": "FP64", "data": [4.5]}], ' \
    b'"outputs": [{"name": "probability"}]}'
P_TOKEN = {"Authorization": "Bearer p-token"}


@pytest.mark.parametrize(("path", "body", "headers"), [
    (PREDICT, GOOD, {**JSON, "Authorization": "Bearer p-token"}),
    (PREDICT, GOOD, {**JSON, "Authorization": "bearer a-token"}),
    (PREDICT, b'{"instances": [{"pages": 2, "seconds": 3.5}]}',
     {"Authorization": "Bearer p-token"}),
    (PREDICT, GOOD, JSON),
    (PREDICT, GOOD, {**JSON, "Authorization": "Bearer"}),
    (PREDICT, GOOD, {**JSON, "Authorization": "Basic p-token"}),
    (PREDICT, GOOD, {**JSON, "Authorization": "Bearer nope"}),
    (PREDICT, GOOD, {**JSON, "Authorization": "Bearer f-token"}),
    (PREDICT, GOOD, {"Content-Type": "text/plain", "Authorization": "Bearer p-token"}),
    (PREDICT, b"{", {**JSON, "Authorization": "Bearer p-token"}),
    (PREDICT, b'{"entities": {"user_id": ["ghost"]}}', {"Authorization": "Bearer p-token"}),
    (PREDICT, b'{"rows": []}', {"Authorization": "Bearer p-token"}),
    ("/v1/models/nope/predict", GOOD, {"Authorization": "Bearer p-token"}),
    ("/v1/models/a/b/predict", GOOD, {"Authorization": "Bearer p-token"}),
    ("/v1/models//predict", GOOD, {"Authorization": "Bearer p-token"}),
    (PREDICT, b"x" * (2 * 1024 * 1024), {**JSON, "Authorization": "Bearer p-token"}),
    (INFER, USERS, {**JSON, **P_TOKEN}),
    (INFER, COLUMNS, P_TOKEN),
    ("/v2/models/purchase/versions/1/infer", USERS, P_TOKEN),
    ("/v2/models/purchase/versions/2/infer", USERS, P_TOKEN),
    ("/v2/models/purchase/versions//infer", USERS, P_TOKEN),
    ("/v2/models/purchase/versions/1/2/infer", USERS, P_TOKEN),
    ("/v2/models/nope/infer", USERS, P_TOKEN),
    ("/v2/models//infer", USERS, P_TOKEN),
    ("/v2/models/a/b/infer", USERS, P_TOKEN),
    (INFER, USERS, JSON),
    (INFER, USERS, {"Authorization": "Bearer nope"}),
    (INFER, USERS, {"Authorization": "Bearer f-token"}),
    (INFER, USERS, {"Content-Type": "text/plain", **P_TOKEN}),
    (INFER, USERS, {"Inference-Header-Content-Length": "10", **P_TOKEN}),
    (INFER, b"{", P_TOKEN),
    (INFER, b'{"inputs": []}', P_TOKEN),
    (INFER, b'{"inputs": [{"name": "user_id", "shape": [1], "datatype": "BYTES", '
     b'"data": ["ghost"]}]}', P_TOKEN),
    (INFER, b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}], '
     b'"outputs": [{"name": "nope"}]}', P_TOKEN),
    (INFER, b"x" * (2 * 1024 * 1024), {**JSON, **P_TOKEN}),
])
def test_the_fast_path_answers_as_the_route(both: tuple[AsgiClient, AsgiClient], path: str,
                                            body: bytes, headers: dict[str, str]) -> None:
    fast, plain = both
    assert _answer(fast, path, body, headers) == _answer(plain, path, body, headers)


def test_a_body_streamed_past_the_limit_is_413(models: Project) -> None:
    limit = models.config.server.max_request_bytes

    async def chunks() -> Any:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    with AsgiClient(create_app(models)) as client:
        answer = client.post(PREDICT, content=chunks(), headers=JSON)
    assert answer.status_code == 413
    assert answer.json()["detail"].startswith("request body is more than")


def test_an_unexpected_error_is_a_logged_one_line_500(models: Project,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*args: object) -> bytes:
        raise RuntimeError("a bug in scoring")

    monkeypatch.setattr(predict.PredictHandler, "answer", broken)
    with AsgiClient(create_app(models)) as client:
        answer = client.post(PREDICT, json={"entities": {"user_id": ["u1"]}})
        assert answer.status_code == 500
        assert answer.json() == {"detail": "internal server error (a bug; see the server log)"}
        assert client.get("/healthz").status_code == 200  # the server goes on
    logged = [r for r in caplog.records if r.name == "flywheel.server"]
    assert logged and "unexpected error on POST" in logged[0].getMessage()
    assert logged[0].exc_info is not None and "a bug in scoring" in str(logged[0].exc_info[1])


def test_an_unexpected_error_in_inference_is_the_protocols_500(
        models: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object) -> bytes:
        raise RuntimeError("a bug in scoring")

    monkeypatch.setattr(oip.InferHandler, "answer", broken)
    with AsgiClient(create_app(models)) as client:
        answer = client.post(INFER, content=USERS, headers=JSON)
        assert answer.status_code == 500
        assert answer.json() == {"error": "internal server error (a bug; see the server log)"}
