"""Publishable keys: the tracker doors under /k/<key>/, their app ids, origins and rate."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel._core.errors import InputError
from flywheel._core.hashing import sha256_text
from flywheel._core.metadata.tokens import PUBLISHABLE, TokenRecord
from flywheel.api.app import create_app
from flywheel.api.snowplow import PIXEL
from flywheel.ingest.keys import (
    RateLimiter,
    TokenBucket,
    normalise_origin,
    parse_rate,
)
from flywheel.project import Project
from tests.api.support import AsgiClient, count_log_rows, live_server, make_project
from tests.helpers import PAGE_VIEW, page_view

KEY = "pk_test_key_0123456789"
SHOP = "https://shop.example"
TP2 = f"/k/{KEY}/com.snowplowanalytics.snowplow/tp2"
PIXEL_PATH = f"/k/{KEY}/i"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"


def _event(eid: str, aid: str | None = "shop") -> dict[str, Any]:
    inner = {"schema": PAGE_VIEW, "data": {"user_id": "u", "url": f"https://shop/{eid}"}}
    text = json.dumps({"schema": UNSTRUCT, "data": inner})
    params = {"e": "ue", "eid": eid, "p": "web",
              "ue_px": base64.urlsafe_b64encode(text.encode()).decode()}
    if aid is not None:
        params["aid"] = aid
    return params


def _batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"schema": PAYLOAD_DATA, "data": list(events)}


def _add_key(project: Project, name: str = "web", key: str = KEY, **limits: Any) -> None:
    limits.setdefault("app_ids", ("shop", "blog"))
    limits.setdefault("origins", (SHOP,))
    project.metadata.add_token(TokenRecord(name, sha256_text(key), (), kind=PUBLISHABLE,
                                           key=key, **limits))


def _stored(project: Project) -> tuple[int, int]:
    """(events in the log, bad rows)."""
    return count_log_rows(project), project.log.bad_rows().num_rows


@pytest.fixture
def keyed(project: Project) -> Iterator[AsgiClient]:
    _add_key(project)
    with AsgiClient(create_app(project)) as client:
        yield client


# What a key allows -------------------------------------------------------------------------
def test_a_listed_origin_and_app_id_are_stored_with_cors(keyed: AsgiClient,
                                                         project: Project) -> None:
    response = keyed.post(TP2, json=_batch(_event("a"), _event("b", aid="blog")),
                          headers={"Origin": SHOP})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["access-control-allow-credentials"] == "true"
    pixel = keyed.get(PIXEL_PATH, params=_event("c"))  # mobile trackers send no Origin
    assert pixel.status_code == 200 and pixel.content == PIXEL
    assert "access-control-allow-origin" not in pixel.headers
    assert _stored(project) == (3, 0)
    app_ids = project.log.read("com.example/page_view", columns=["app_id"]).column("app_id")
    assert sorted(app_ids.to_pylist()) == ["blog", "shop", "shop"]


def test_a_bad_event_of_a_listed_app_is_a_bad_row(keyed: AsgiClient, project: Project) -> None:
    response = keyed.post(TP2, json=_batch(_event("a"), {"e": "pv", "aid": "shop"}))
    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejected"]) == (1, 1)
    assert _stored(project) == (1, 1)


@pytest.mark.parametrize(("events", "words"), [
    ([_event("a"), _event("b", aid="other")], "event 1 has app id 'other'"),
    ([_event("a", aid=None)], "event 0 has no app id (aid)"),
    ([_event("a", aid="")], "event 0 has no app id (aid)"),
    ([_event("a"), [1, 2]], "event 1 is not a JSON object"),
])
def test_another_or_no_app_id_refuses_the_whole_request(keyed: AsgiClient, project: Project,
                                                        events: list[Any], words: str) -> None:
    response = keyed.post(TP2, json=_batch(*events), headers={"Origin": SHOP})
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert words in detail and "nothing was stored" in detail and "\n" not in detail
    assert response.headers["access-control-allow-origin"] == SHOP  # the tracker can read it
    pixel = keyed.get(PIXEL_PATH, params=_event("p", aid="other"))
    assert pixel.status_code == 403
    assert _stored(project) == (0, 0)


def test_nothing_accepted_before_is_lost(keyed: AsgiClient, project: Project) -> None:
    assert keyed.post(TP2, json=_batch(_event("a"))).status_code == 200
    assert keyed.post(TP2, json=_batch(_event("b", aid="x"))).status_code == 403
    assert _stored(project) == (1, 0)


@pytest.mark.parametrize("origin", ["https://evil.example", "http://shop.example", "null"])
def test_an_unlisted_origin_is_refused_without_cors(keyed: AsgiClient, project: Project,
                                                    origin: str) -> None:
    response = keyed.post(TP2, json=_batch(_event("a")), headers={"Origin": origin})
    assert response.status_code == 403
    assert "is not allowed by key 'web'" in response.json()["detail"]
    assert "access-control-allow-origin" not in response.headers
    preflight = keyed.request("OPTIONS", TP2, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    assert _stored(project) == (0, 0)


def test_preflight_is_answered_for_a_listed_origin(keyed: AsgiClient) -> None:
    preflight = keyed.request("OPTIONS", TP2, headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_a_key_without_origins_refuses_browsers(project: Project) -> None:
    _add_key(project, origins=())
    with AsgiClient(create_app(project)) as client:
        assert client.post(TP2, json=_batch(_event("a"))).status_code == 200
        browser = client.post(TP2, json=_batch(_event("b")), headers={"Origin": SHOP})
    assert browser.status_code == 403 and "no browser origin" in browser.json()["detail"]


def test_a_body_that_is_not_payload_data_stores_nothing(keyed: AsgiClient,
                                                        project: Project) -> None:
    for body in (b"not json", b'{"schema": "iglu:x/y/jsonschema/1-0-0", "data": []}', b" "):
        response = keyed.post(TP2, content=body)
        assert response.status_code == 400, body
        assert "\n" not in response.json()["detail"]
    assert _stored(project) == (0, 0)


# Which doors a key opens ------------------------------------------------------------------
@pytest.mark.parametrize("key", ["pk_unknown_0123456789", "ingest-token", " "])
def test_unknown_keys_and_bearer_tokens_in_the_path_are_refused(project: Project,
                                                                key: str) -> None:
    project.metadata.add_token(TokenRecord("ci", sha256_text("ingest-token"), ("ingest",)))
    with AsgiClient(create_app(project)) as client:
        response = client.post(f"/k/{key}/com.snowplowanalytics.snowplow/tp2",
                               json=_batch(_event("a")))
        pixel = client.get(f"/k/{key}/i", params=_event("b"))
    assert response.status_code == 401 == pixel.status_code
    assert "unknown or revoked publishable key" in response.json()["detail"]
    assert _stored(project) == (0, 0)


def test_a_key_opens_only_the_tracker_doors(project: Project) -> None:
    _add_key(project)
    bearer = {"Authorization": f"Bearer {KEY}"}
    with AsgiClient(create_app(project, require_tokens=True)) as client:
        for method, path, kwargs in [
            ("POST", "/v1/events", {"json": [page_view(1)]}),
            ("POST", "/com.snowplowanalytics.snowplow/tp2", {"json": _batch(_event("a"))}),
            ("GET", "/i", {"params": _event("b")}),
            ("POST", "/v1/features/online", {"json": {"entities": {"u": ["1"]},
                                                      "features": ["v:f"]}}),
        ]:
            response = client.request(method, path, headers=bearer, **kwargs)
            assert response.status_code == 403, path
            assert "publishable key, not a token" in response.json()["detail"]
        # Off loopback the keyed doors need no bearer token: the key is the credential.
        assert client.post(TP2, json=_batch(_event("c"))).status_code == 200
    assert _stored(project) == (1, 0)


def test_a_revoked_key_is_refused(project: Project) -> None:
    _add_key(project)
    with AsgiClient(create_app(project, token_ttl=0.0)) as client:
        assert client.get(PIXEL_PATH, params=_event("a")).status_code == 200
        assert project.metadata.delete_token("web")
        assert client.get(PIXEL_PATH, params=_event("b")).status_code == 401
    assert _stored(project) == (1, 0)


# Rate ---------------------------------------------------------------------------------------
def test_over_the_rate_is_429_with_retry_after(project: Project) -> None:
    _add_key(project, rate=0.1)  # 6/min: a burst of one event, then one every ten seconds
    with AsgiClient(create_app(project)) as client:
        first = client.post(TP2, json=_batch(_event("a"), _event("b")))
        second = client.post(TP2, json=_batch(_event("c")), headers={"Origin": SHOP})
        pixel = client.get(PIXEL_PATH, params=_event("d"))
    assert first.status_code == 200  # a batch larger than the burst passes when full...
    assert second.status_code == 429 == pixel.status_code  # ...and is repaid before the next
    assert int(second.headers["retry-after"]) >= 10
    detail = second.json()["detail"]
    assert "over its rate of 6/min" in detail and "per server process" in detail
    assert second.headers["access-control-allow-origin"] == SHOP
    assert _stored(project) == (2, 0)


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.01, 1000), steps=st.lists(
    st.tuples(st.floats(0, 5), st.integers(1, 500)), min_size=1, max_size=40))
def test_a_bucket_admits_no_more_than_its_rate(rate: float, steps: list[tuple[float,
                                                                                 int]]) -> None:
    now = [0.0]
    bucket = TokenBucket(rate, clock=lambda: now[0])
    admitted, largest = 0, 0
    for pause, events in steps:
        now[0] += pause
        wait = bucket.wait()
        if bucket.take(events) == 0:
            assert wait == 0
            admitted += events
            largest = max(largest, events)
        else:
            assert wait > 0
            now[0] += wait  # waiting as told is enough
            assert bucket.take(events) == 0
            admitted += events
            largest = max(largest, events)
    # Debt is bounded by one batch: the long-run rate holds.
    assert admitted <= bucket.capacity + rate * now[0] + largest - 1 + 1e-6 * admitted


def test_limiter_buckets_are_per_key_and_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    slow = TokenRecord("a", "h-a", (), kind=PUBLISHABLE, app_ids=("x",), rate=1.0)
    other = TokenRecord("b", "h-b", (), kind=PUBLISHABLE, app_ids=("x",), rate=1.0)
    free = TokenRecord("c", "h-c", (), kind=PUBLISHABLE, app_ids=("x",))
    limiter.take(slow, 1)
    with pytest.raises(InputError, match="over its rate of 1/s"):
        limiter.take(slow, 1)
    limiter.take(other, 1)  # another key has its own bucket
    for _ in range(1000):
        limiter.take(free, 100)  # no rate: no limit
    now[0] = 1.0
    limiter.take(slow, 1)


# Parsing what `flywheel token create` is given ------------------------------------------------
@pytest.mark.parametrize(("text", "per_second"), [
    ("50/s", 50.0), ("50", 50.0), ("600/min", 10.0), (" 1.5 / second ", 1.5), ("3/m", 0.05)])
def test_parse_rate(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@given(st.text(max_size=12))
def test_parse_rate_accepts_only_positive_rates(text: str) -> None:
    try:
        value = parse_rate(text)
    except InputError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert value > 0


@pytest.mark.parametrize(("text", "origin"), [
    ("https://Shop.Example", "https://shop.example"),
    ("https://shop.example/", "https://shop.example"),
    ("https://shop.example:443", "https://shop.example"),
    ("http://localhost:3000", "http://localhost:3000"),
    ("http://[::1]:8080", "http://[::1]:8080")])
def test_normalise_origin(text: str, origin: str) -> None:
    assert normalise_origin(text) == origin


@given(st.text(max_size=30) | st.builds(
    "{}://{}{}".format, st.sampled_from(["http", "https", "ftp"]),
    st.from_regex(r"[a-z0-9.-]{1,12}", fullmatch=True),
    st.sampled_from(["", "/", ":8080", ":99999", "/x", "?q"])))
def test_normalise_origin_is_idempotent_or_refuses(text: str) -> None:
    try:
        origin = normalise_origin(text)
    except InputError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert normalise_origin(origin) == origin


# A real tracker, its endpoint carrying the key ------------------------------------------------
def test_the_snowplow_tracker_sends_through_a_key(tmp_path: Path) -> None:
    from snowplow_tracker.emitters import Emitter
    from snowplow_tracker.events.self_describing import SelfDescribing
    from snowplow_tracker.self_describing_json import SelfDescribingJson
    from snowplow_tracker.tracker import Tracker

    project = make_project(tmp_path / "t")
    try:
        _add_key(project)
        with live_server(create_app(project, require_tokens=True)) as url:
            failures: list[Any] = []
            for method in ("post", "get"):
                emitter = Emitter(f"{url.removeprefix('http://')}/k/{KEY}", protocol="http",
                                  method=method, batch_size=3,  # type: ignore[arg-type]
                                  request_timeout=10,
                                  on_failure=lambda sent, failed: failures.append(failed))
                tracker = Tracker(f"t-{method}", emitter, app_id="shop")
                for i in range(4):
                    tracker.track(SelfDescribing(SelfDescribingJson(
                        PAGE_VIEW, {"user_id": f"u{i}", "url": f"https://shop/{method}/{i}"})))
                tracker.flush()
                assert failures == []
        assert _stored(project) == (8, 0)
    finally:
        project.close()
