"""`/openapi.json` says what the routes take and answer, and the log names a failed commit."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flywheel.project import Project
from tests.api.support import AsgiClient
from tests.helpers import PAGE_VIEW, page_view

ERROR = {"$ref": "#/components/schemas/ErrorResponse"}


def _ops(client: AsgiClient) -> tuple[dict[str, Any], dict[str, Any]]:
    spec: dict[str, Any] = client.get("/openapi.json").json()
    return spec["paths"], spec["components"]["schemas"]


def _schema(operation: dict[str, Any], status: str) -> dict[str, Any]:
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"][
        "schema"]
    return schema


def test_tracker_bodies_and_parameters_are_described(client: AsgiClient) -> None:
    paths, _ = _ops(client)
    for prefix in ("", "/k/{key}"):
        tp2 = paths[f"{prefix}/com.snowplowanalytics.snowplow/tp2"]["post"]
        body = tp2["requestBody"]["content"]["application/json"]["schema"]
        assert body["required"] == ["schema", "data"]
        assert "payload_data" in body["properties"]["schema"]["pattern"]
        event = body["properties"]["data"]["items"]
        assert {"e", "eid", "aid", "ue_px", "ue_pr", "dtm"} <= set(event["properties"])
        pixel = paths[f"{prefix}/i"]["get"]
        query = {p["name"] for p in pixel["parameters"] if p["in"] == "query"}
        assert {"e", "eid", "aid", "ue_px", "ue_pr", "dtm", "p"} <= query
        assert "image/gif" in pixel["responses"]["200"]["content"]
    keyed = paths["/k/{key}/com.snowplowanalytics.snowplow/tp2"]["post"]
    assert keyed["requestBody"]["content"]["application/json"]["schema"]["properties"]["data"][
        "items"]["required"] == ["aid"]
    for status in ("401", "403", "413"):
        assert _schema(keyed, status) == ERROR
    assert _schema(keyed, "429") == ERROR
    assert "Retry-After" in keyed["responses"]["429"]["headers"]


def test_events_body_lists_the_registered_schemas(client: AsgiClient) -> None:
    paths, components = _ops(client)
    events = paths["/v1/events"]["post"]
    content = events["requestBody"]["content"]
    shapes = content["application/json"]["schema"]["items"]["anyOf"]
    [page_view_shape] = [s for s in shapes if s["properties"]["schema"] == {"const": PAGE_VIEW}]
    data = page_view_shape["properties"]["data"]
    assert data["required"] == ["user_id", "url"] and "self" not in data
    assert page_view_shape["additionalProperties"] is False
    assert content["application/x-ndjson"]["schema"]["minItems"] == 1
    assert _schema(events, "200") == {"$ref": "#/components/schemas/IngestResponse"}
    assert {"$ref": "#/components/schemas/IngestResponse"} in _schema(events, "400")["anyOf"]
    assert ERROR in _schema(events, "400")["anyOf"]
    for status in ("401", "403", "413", "415", "503"):
        assert _schema(events, status) == ERROR, status
    assert components["ErrorResponse"]["required"] == ["detail"]


def test_every_documented_error_is_the_one_line_body(client: AsgiClient) -> None:
    paths, _ = _ops(client)
    for path, item in paths.items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if int(status) < 400:
                    continue
                schema = answer["content"]["application/json"]["schema"]
                if path == "/v2" or path.startswith("/v2/"):  # the protocol's error object
                    assert schema["required"] == ["error"], (method, path, status)
                    continue
                assert schema == ERROR or ERROR in schema.get("anyOf", []), (method, path,
                                                                             status)


def test_a_failed_commit_names_its_cause_in_the_server_log(
        client: AsgiClient, project: Project, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project.log_store, "commit_group", disk_full)
    with caplog.at_level(logging.ERROR):
        response = client.post("/v1/events", json=[page_view(1)])
    assert response.status_code == 503
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("log commit failed" in m and "No space left on device" in m for m in logged)
    assert any(m.startswith("POST /v1/events answered 503: the log could not commit: "
                            "[Errno 28] No space left on device") for m in logged), logged
