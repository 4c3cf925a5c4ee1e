"""`POST /v1/events`: arrays and NDJSON, raw bytes kept, statuses, limits, error mapping."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from flywheel._core.errors import BackendError, InputError
from flywheel.api.app import create_app
from flywheel.api.errors import install_error_handlers
from flywheel.ingest.body import EmptyBodyError, split_body
from flywheel.project import Project
from tests.api.support import AsgiClient, count_log_rows, make_project
from tests.helpers import PAGE_VIEW, page_view


def _bad_raws(project: Project) -> list[bytes]:
    return [bytes(r) for r in project.log.bad_rows().column("raw").to_pylist()]


def test_array_keeps_raw_bytes_and_reports_counts(client: AsgiClient, project: Project) -> None:
    body = (b'[ {"schema": "%s", "data": {"user_id": "u1", "url": "/a"}, "event_id": "a"},\n'
            b'  {"schema": "%s",   "data": {"user_id": 7}} , 5 ]' % (PAGE_VIEW.encode(),
                                                                    PAGE_VIEW.encode()))
    response = client.post("/v1/events", content=body)
    assert response.status_code == 200
    payload = response.json()
    assert (payload["accepted"], payload["rejected"], payload["duplicates"]) == (1, 2, 0)
    assert [(e["index"], e["kind"]) for e in payload["errors"]] == [
        (1, "schema_violation"), (2, "bad_envelope")]
    assert sorted(_bad_raws(project)) == sorted(
        [b'{"schema": "%s",   "data": {"user_id": 7}}' % PAGE_VIEW.encode(), b"5"])
    assert count_log_rows(project) == 1


def test_ndjson_skips_blank_lines_and_keeps_each_line(client: AsgiClient,
                                                      project: Project) -> None:
    lines = [json.dumps(page_view(1, event_id="n1")), "", "   ", "{not json",
             json.dumps(page_view(2, event_id="n2"))]
    response = client.post("/v1/events", content="\r\n".join(lines).encode() + b"\n",
                           headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200
    payload = response.json()
    assert (payload["accepted"], payload["rejected"]) == (2, 1)
    assert payload["errors"][0]["index"] == 1 and payload["errors"][0]["kind"] == "not_json"
    assert _bad_raws(project) == [b"{not json"]


def test_split_body_rules() -> None:
    assert split_body(b"  \n [1, {\"a\": [2]}]") == [b"1", b'{"a": [2]}']
    assert split_body(b"[1, 2") == [b"[1, 2"]
    assert split_body(b"\xef\xbb\xbf{}\n\n{}") == [b"{}", b"{}"]
    assert split_body(b"x\r\n\t\r\ny") == [b"x", b"y"]
    assert split_body(b"[]") == []
    with pytest.raises(EmptyBodyError):
        split_body(b" \r\n\t ")


def test_every_event_rejected_is_400_and_stored(client: AsgiClient, project: Project) -> None:
    response = client.post("/v1/events", json=[{"schema": "iglu:com.nope/x/jsonschema/1-0-0",
                                                "data": {}}, "text"])
    assert response.status_code == 400
    payload = response.json()
    assert payload["rejected"] == 2 and payload["accepted"] == 0
    assert "bad rows" in payload["detail"]
    assert project.log.bad_rows().num_rows == 2


def test_malformed_array_is_one_bad_row_of_the_whole_body(client: AsgiClient,
                                                          project: Project) -> None:
    body = b'[{"schema": "x", "data": {}}, {"oops"'
    response = client.post("/v1/events", content=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["kind"] == "not_json"
    assert _bad_raws(project) == [body]


@pytest.mark.parametrize("body", [b"", b"  \n\t\r\n"])
def test_empty_body_is_400_and_stores_nothing(client: AsgiClient, project: Project,
                                              body: bytes) -> None:
    response = client.post("/v1/events", content=body)
    assert response.status_code == 400
    assert "empty" in response.json()["detail"] and "\n" not in response.json()["detail"]
    assert project.log.bad_rows().num_rows == 0


def test_resending_is_safe(client: AsgiClient, project: Project) -> None:
    events = [page_view(i, event_id=f"id-{i}") for i in range(5)]
    first = client.post("/v1/events", json=events).json()
    again = client.post("/v1/events", json=events)
    assert first["accepted"] == 5
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 5)
    assert count_log_rows(project) == 5


def test_deep_nesting_is_a_bad_row_not_a_crash(client: AsgiClient, project: Project) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    assert client.post("/v1/events", content=deep).status_code == 400
    response = client.post("/v1/events", content=b'{"a": 1}\n' + deep)
    assert response.status_code == 400
    assert [e["kind"] for e in response.json()["errors"]] == ["bad_envelope", "not_json"]


def test_invalid_utf8_inside_strings_is_a_bad_row(client: AsgiClient, project: Project) -> None:
    # msgspec raises UnicodeDecodeError here, not DecodeError
    body = b'[{"\x80schema": 1}, {"schema": "\xff", "data": {}}]'
    response = client.post("/v1/events", content=body)
    assert response.status_code == 400
    assert [e["kind"] for e in response.json()["errors"]] == ["not_json", "not_json"]
    assert client.post("/v1/events", content=b'"\xc3"\n{"a": "\xe2\x82"}').status_code == 400
    assert project.log.bad_rows().num_rows == 4


@pytest.fixture
def small_project(tmp_path: Path) -> Iterator[Project]:
    project = make_project(tmp_path / "small", server={"max_request_bytes": 1024})
    try:
        yield project
    finally:
        project.close()


def test_too_large_by_content_length(small_project: Project) -> None:
    with AsgiClient(create_app(small_project)) as client:
        response = client.post("/v1/events", content=b"[" + b" " * 2000 + b"]")
    assert response.status_code == 413
    assert "max_request_bytes" in response.json()["detail"]
    assert small_project.log.bad_rows().num_rows == 0


def test_too_large_when_streamed_without_length(small_project: Project) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 200

    with AsgiClient(create_app(small_project)) as client:
        response = client.post("/v1/events", content=chunks())
    assert response.status_code == 413
    assert "1024" in response.json()["detail"]


def test_log_unavailable_is_503_with_retry_after(client: AsgiClient, project: Project,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project.log_store, "commit_group", disk_full)
    response = client.post("/v1/events", json=[page_view(1)])
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    detail = response.json()["detail"]
    assert detail.startswith("the log could not commit: [Errno 28] No space left on device")
    assert "\n" not in detail
    monkeypatch.undo()
    assert client.post("/v1/events", json=[page_view(1)]).status_code == 200  # recovers


@pytest.mark.parametrize(("error", "status"), [(BackendError("metadata is down"), 503),
                                               (InputError("no\nway"), 400)])
def test_flywheel_errors_keep_their_status(client: AsgiClient, project: Project,
                                           monkeypatch: pytest.MonkeyPatch,
                                           error: Exception, status: int) -> None:
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(project.ingestor, "begin_raw", failing)
    response = client.post("/v1/events", json=[page_view(1)])
    assert response.status_code == status
    assert "\n" not in response.json()["detail"]


def test_request_validation_errors_are_one_line_422() -> None:
    app = FastAPI()

    @app.get("/n")
    async def number(n: int) -> int:
        return n

    install_error_handlers(app)
    with AsgiClient(app) as client:
        response = client.get("/n", params={"n": "many"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query.n: ")


def test_unknown_route_and_method(client: AsgiClient) -> None:
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/events").status_code == 405


def test_the_event_loop_stays_free_while_a_commit_waits(client: AsgiClient, project: Project,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    entered = threading.Event()
    real = project.log_store.commit_group

    def slow(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(project.log_store, "commit_group", slow)
    statuses: list[int] = []
    sender = threading.Thread(
        target=lambda: statuses.append(client.post("/v1/events", json=[page_view(1)])
                                       .status_code))
    sender.start()
    try:
        assert entered.wait(10)
        assert client.get("/healthz").json() == {"status": "ok"}
    finally:
        release.set()
        sender.join(10)
    assert statuses == [200]


def test_healthz_and_docs(client: AsgiClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    operations = [(path, method, op) for path, ops in spec["paths"].items()
                  for method, op in ops.items()]
    assert {(p, m) for p, m, _ in operations} >= {
        ("/v1/events", "post"), ("/com.snowplowanalytics.snowplow/tp2", "post"),
        ("/i", "get"), ("/healthz", "get")}
    assert all(op.get("summary") for _, _, op in operations)


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/html"])
def test_a_body_not_declared_as_json_is_415_and_stores_nothing(
        client: AsgiClient, project: Project, content_type: str) -> None:
    """What a cross-site page can send without a preflight is refused before the body is read."""
    response = client.post("/v1/events", content=json.dumps([page_view(1)]).encode(),
                           headers={"content-type": content_type})
    assert response.status_code == 415
    assert "application/x-ndjson" in response.json()["detail"]
    assert count_log_rows(project) == 0 and project.log.bad_rows().num_rows == 0
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "application/x-ndjson", "application/vnd.acme+json"])
def test_json_media_types_are_accepted(client: AsgiClient, content_type: str) -> None:
    response = client.post("/v1/events", content=json.dumps(page_view(1)).encode(),
                           headers={"content-type": content_type})
    assert response.status_code == 200, response.text
