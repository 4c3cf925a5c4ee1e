"""The token policy: 401 without a valid token, 403 without the scope, cached lookups."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flywheel._core.hashing import sha256_text
from flywheel._core.metadata.tokens import TokenRecord
from flywheel.api.app import create_app
from flywheel.api.auth import TokenAuth, TokenCache
from flywheel.project import Project
from tests.api.support import AsgiClient, client_with_tokens
from tests.helpers import page_view

TOKENS = {"ingest-token": ("ingest",), "read-token": ("read", "predict"),
          "admin-token": ("admin",)}
TP2_BODY = {"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
            "data": []}


@pytest.fixture
def secured(project: Project) -> Iterator[AsgiClient]:
    with client_with_tokens(project, TOKENS) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dTpw"},
                                     {"Authorization": "Bearer"}, _bearer("nope")])
def test_missing_or_invalid_token_is_401(secured: AsgiClient, project: Project,
                                         headers: dict[str, str]) -> None:
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/events", {"json": [page_view(1)]}),
        ("POST", "/com.snowplowanalytics.snowplow/tp2", {"json": TP2_BODY}),
        ("GET", "/i", {"params": {"e": "pv"}})]
    for method, path, kwargs in requests:
        response = secured.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        detail = response.json()["detail"]
        assert "token" in detail and "\n" not in detail
    assert project.log.bad_rows().num_rows == 0


def test_wrong_scope_is_403(secured: AsgiClient) -> None:
    response = secured.post("/v1/events", json=[page_view(1)], headers=_bearer("read-token"))
    assert response.status_code == 403
    assert response.json()["detail"].startswith("token 't1' lacks the 'ingest' scope")


@pytest.mark.parametrize("token", ["ingest-token", "admin-token"])
def test_ingest_and_admin_tokens_may_ingest(secured: AsgiClient, token: str) -> None:
    response = secured.post("/v1/events", json=[page_view(1)], headers=_bearer(token))
    assert response.status_code == 200 and response.json()["accepted"] == 1
    tp2 = secured.post("/com.snowplowanalytics.snowplow/tp2", json=TP2_BODY,
                       headers=_bearer(token))
    assert tp2.status_code == 200
    pixel = secured.get("/i", headers={"authorization": f"bearer {token}"})
    assert pixel.status_code == 200


def test_open_routes_need_no_token(secured: AsgiClient) -> None:
    assert secured.get("/healthz").json() == {"status": "ok"}
    spec = secured.get("/openapi.json").json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    preflight = secured.request("OPTIONS", "/com.snowplowanalytics.snowplow/tp2",
                                headers={"Origin": "https://shop.example"})
    assert preflight.status_code == 200


def test_no_tokens_needed_on_loopback(client: AsgiClient) -> None:
    assert client.post("/v1/events", json=[page_view(1)]).status_code == 200


def test_lookups_are_cached(project: Project) -> None:
    project.metadata.add_token(TokenRecord("t", sha256_text("secret"), ("ingest",)))
    calls: list[str] = []
    real = project.metadata.find_token

    def counting(digest: str) -> TokenRecord | None:
        calls.append(digest)
        return real(digest)

    project.metadata.find_token = counting  # type: ignore[method-assign,assignment]
    with AsgiClient(create_app(project, require_tokens=True)) as client:
        for _ in range(5):
            assert client.post("/v1/events", json=[page_view(1)],
                               headers=_bearer("secret")).status_code == 200
    assert calls == [sha256_text("secret")]


def test_cache_expiry_negative_ttl_and_bound() -> None:
    now = [0.0]
    store = {"a": TokenRecord("a", "a", ("ingest",))}
    calls: list[str] = []

    def lookup(digest: str) -> TokenRecord | None:
        calls.append(digest)
        return store.get(digest)

    cache = TokenCache(lookup, ttl=30, negative_ttl=5, max_entries=3, clock=lambda: now[0])
    assert cache.get("a") is not None and cache.get("a") is not None
    assert cache.get("b") is None and cache.get("b") is None
    assert calls == ["a", "b"]
    now[0] = 6  # past the negative ttl: a token created meanwhile is found
    store["b"] = TokenRecord("b", "b", ("read",))
    assert cache.get("b") is not None
    now[0] = 31  # "a" expired: looked up again (a deleted token stops working)
    del store["a"]
    assert cache.get("a") is None
    for key in ("c", "d", "e", "f"):
        cache.get(key)
    assert len(cache._entries) <= 3


def test_a_revoked_token_is_refused_within_a_second_by_default() -> None:
    now = [0.0]
    store = {"a": TokenRecord("a", "a", ("ingest",))}
    cache = TokenCache(store.get, clock=lambda: now[0])
    assert cache.get("a") is not None
    del store["a"]  # `flywheel token revoke`, seen by this process's cache...
    now[0] = 0.9
    assert cache.get("a") is not None  # ...not yet
    now[0] = 1.0
    assert cache.get("a") is None  # a second later it is refused


def test_unknown_scope_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        TokenAuth(None).require("everything")
