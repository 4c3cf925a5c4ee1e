"""`POST /v1/features/online`: values of a materialised view, one-line 4xx, the `read` scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel.api.app import create_app
from flywheel.project import Project
from tests.api.support import AsgiClient, client_with_tokens
from tests.helpers import VISIT, write_visits_project

URL = "/v1/features/online"

DEFINITIONS = '''
import datetime as dt
from flywheel.features import Entity, FeatureService, FeatureView

user = Entity(name="user", join_keys=["user_id"])
visits = FeatureView(name="visits", entities=[user], source="user_visits",
                     features=["pages", "seconds"], ttl=dt.timedelta(days=30))
score = FeatureService(name="score", features=["visits:*"])
'''


def visit(user: str, pages: int, days_ago: float) -> dict[str, object]:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    return {"schema": VISIT, "event_time": when.isoformat(),
            "data": {"user_id": user, "pages": pages, "seconds": pages * 1.5}}


def feature_project(root: Path, max_request_bytes: int | None = None) -> Project:
    """A project with one materialised view: u1 (recent), old (past the TTL)."""
    Project.init(root).close()
    if max_request_bytes is not None:
        path = root / "flywheel.yaml"
        config = yaml.safe_load(path.read_text())
        config.setdefault("server", {})["max_request_bytes"] = max_request_bytes
        path.write_text(yaml.safe_dump(config))
    write_visits_project(root, DEFINITIONS)
    project = Project.open(root)
    project.apply()
    assert project.ingest([visit("u1", 4, 1), visit("old", 9, 40)]).accepted == 2
    project.transform()
    assert project.features.materialize()[0].rows >= 1
    return project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:  # overrides the plain project of conftest
    project = feature_project(tmp_path / "p")
    try:
        yield project
    finally:
        project.close()


def test_values_of_known_and_unknown_entities(client: AsgiClient) -> None:
    response = client.post(URL, json={"entities": {"user_id": ["u1", "nobody", "old"]},
                                      "features": ["visits:pages", "visits:seconds"]})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "features": {"user_id": ["u1", "nobody", "old"], "pages": [4, None, None],
                     "seconds": [6.0, None, None]},
        "found": {"visits": [True, False, False]}}


def test_feature_service_and_view_wildcard(client: AsgiClient) -> None:
    by_service = client.post(URL, json={"entities": {"user_id": ["u1"]},
                                        "feature_service": "score"})
    wildcard = client.post(URL, json={"entities": {"user_id": ["u1"]},
                                      "features": ["visits:*"]})
    assert by_service.status_code == wildcard.status_code == 200
    assert by_service.json() == wildcard.json() == {
        "features": {"user_id": ["u1"], "pages": [4], "seconds": [6.0]},
        "found": {"visits": [True]}}


def test_no_entities_gives_empty_columns(client: AsgiClient) -> None:
    response = client.post(URL, json={"entities": {"user_id": []},
                                      "features": ["visits:pages"]})
    assert response.status_code == 200
    assert response.json() == {"features": {"user_id": [], "pages": []},
                               "found": {"visits": []}}


def test_numeric_entity_values_match_their_text(client: AsgiClient) -> None:
    response = client.post(URL, json={"entities": {"user_id": [1]},
                                      "features": ["visits:pages"]})
    assert response.status_code == 200
    assert response.json()["found"] == {"visits": [False]}


BAD_REQUESTS: list[tuple[str, Any, int, str]] = [
    ("unknown view", {"entities": {"user_id": ["u1"]}, "features": ["nope:pages"]},
     400, "'nope:pages' is not a feature reference"),
    ("unknown feature", {"entities": {"user_id": ["u1"]}, "features": ["visits:nope"]},
     400, "feature view visits has no feature 'nope'"),
    ("not a reference", {"entities": {"user_id": ["u1"]}, "features": ["pages"]},
     400, "'pages' is not a feature reference"),
    ("unknown service", {"entities": {"user_id": ["u1"]}, "feature_service": "nope"},
     400, "no feature service named 'nope'"),
    ("lengths differ", {"entities": {"user_id": ["u1"], "other": ["a", "b"]},
                        "features": ["visits:pages"]},
     400, "every entity key needs the same number of values"),
    ("missing join key", {"entities": {"account": ["a"]}, "features": ["visits:pages"]},
     400, "feature view visits needs entity key(s) user_id"),
    ("both", {"entities": {"user_id": ["u1"]}, "features": ["visits:pages"],
              "feature_service": "score"}, 422, "either `features` or `feature_service`"),
    ("neither", {"entities": {"user_id": ["u1"]}}, 422, "either"),
    ("empty features", {"entities": {"user_id": ["u1"]}, "features": []},
     422, "`features` is empty"),
    ("no join keys", {"entities": {}, "features": ["visits:pages"]},
     422, "`entities` names no join key"),
    ("entities missing", {"features": ["visits:pages"]}, 422, "invalid request"),
    ("entities not lists", {"entities": {"user_id": "u1"}, "features": ["visits:pages"]},
     422, "invalid request: Expected `array`"),
    ("nested entity value", {"entities": {"user_id": [{"a": 1}]},
                             "features": ["visits:pages"]}, 422, "invalid request"),
    ("features not strings", {"entities": {"user_id": ["u1"]}, "features": [1]},
     422, "invalid request"),
    ("unknown field", {"entities": {"user_id": ["u1"]}, "features": ["visits:pages"],
                       "feature": "x"}, 422, "invalid request"),
    ("array body", [1, 2], 422, "invalid request"),
]


@pytest.mark.parametrize(("body", "status", "detail"),
                         [case[1:] for case in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_are_one_line_4xx(client: AsgiClient, body: Any, status: int,
                                       detail: str) -> None:
    response = client.post(URL, json=body)
    assert response.status_code == status, response.text
    text = response.json()["detail"]
    assert detail in text
    assert "\n" not in text


@pytest.mark.parametrize("content", [b"", b"{", b"not json", b"\xff\xfe"])
def test_non_json_bodies_are_400(client: AsgiClient, content: bytes) -> None:
    response = client.post(URL, content=content,
                           headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("the body is not JSON")
    assert "\n" not in response.json()["detail"]


def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    project = feature_project(tmp_path / "small", max_request_bytes=1024)
    try:
        with AsgiClient(create_app(project)) as client:
            response = client.post(URL, json={"entities": {"user_id": ["u" * 2000]},
                                              "features": ["visits:pages"]})
    finally:
        project.close()
    assert response.status_code == 413
    assert "max_request_bytes" in response.json()["detail"]


def test_definitions_that_do_not_import_are_a_one_line_error(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    Project.init(root).close()
    (root / "definitions.py").write_text("raise RuntimeError('boom')\n")
    project = Project.open(root)  # not applied: apply would refuse the definitions
    try:
        with AsgiClient(create_app(project)) as client:
            response = client.post(URL, json={"entities": {"user_id": ["u1"]},
                                              "features": ["visits:pages"]})
    finally:
        project.close()
    assert 400 <= response.status_code < 500
    assert "importing it failed: RuntimeError: boom" in response.json()["detail"]


# Tokens -------------------------------------------------------------------------------
TOKENS = {"ingest-token": ("ingest",), "read-token": ("read",), "admin-token": ("admin",)}
BODY = {"entities": {"user_id": ["u1"]}, "features": ["visits:pages"]}


@pytest.fixture
def secured(project: Project) -> Iterator[AsgiClient]:
    with client_with_tokens(project, TOKENS) as client:
        yield client


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}])
def test_tokens_required_401(secured: AsgiClient, headers: dict[str, str]) -> None:
    response = secured.post(URL, json=BODY, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in response.json()["detail"]


def test_ingest_token_cannot_read_403(secured: AsgiClient) -> None:
    response = secured.post(URL, json=BODY, headers={"Authorization": "Bearer ingest-token"})
    assert response.status_code == 403
    assert response.json()["detail"].startswith("token 't0' lacks the 'read' scope")


@pytest.mark.parametrize("token", ["read-token", "admin-token"])
def test_read_and_admin_tokens_may_read(secured: AsgiClient, token: str) -> None:
    response = secured.post(URL, json=BODY, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["features"]["pages"] == [4]


def test_the_token_is_checked_before_the_body(secured: AsgiClient) -> None:
    response = secured.post(URL, content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 401


def test_route_is_documented(client: AsgiClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"][URL]["post"]
    assert operation["tags"] == ["features"]
    assert "entities" in operation["requestBody"]["content"]["application/json"]["schema"][
        "properties"]


def test_a_running_server_picks_up_edited_definitions(
        project: Project, caplog: pytest.LogCaptureFixture) -> None:
    body = {"entities": {"user_id": ["u1"]}, "feature_service": "pages_only"}
    with AsgiClient(create_app(project)) as client:
        project.features.reload_on_change(0)  # check on every read
        assert client.post(URL, json=body).status_code == 400  # no such service yet
        definitions = project.root / "definitions.py"
        definitions.write_text(DEFINITIONS + 'pages_only = FeatureService(name="pages_only", '
                               'features=["visits:pages"])\n')
        response = client.post(URL, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["features"] == {"user_id": ["u1"], "pages": [4]}
        definitions.write_text("this is not python\n")
        with caplog.at_level("WARNING", logger="flywheel.features"):
            still = client.post(URL, json=body)
        assert still.status_code == 200  # the definitions loaded last keep serving
        assert "not reloaded, still serving the previous ones" in caplog.text
