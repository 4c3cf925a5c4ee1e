"""The Snowplow tracker protocol: conversion rules, the HTTP doors, and the real tracker."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from flywheel.api.snowplow import PIXEL
from flywheel.ingest.snowplow import Rejection, to_event, tracker_fixup
from flywheel.log.badrows import Reason
from flywheel.project import Project
from tests.api.support import AsgiClient
from tests.helpers import PAGE_VIEW, object_schema, write_schema

TP2 = "/com.snowplowanalytics.snowplow/tp2"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
DTM = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z


def _unstruct(data: dict[str, Any], schema: str = PAGE_VIEW) -> str:
    return json.dumps({"schema": UNSTRUCT, "data": {"schema": schema, "data": data}})


def _px(text: str, padding: bool = True) -> str:
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    return encoded if padding else encoded.rstrip("=")


def _ue(eid: str, data: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    data = {"user_id": "u1", "url": "https://shop/?q=ü"} if data is None else data
    return {"e": "ue", "eid": eid, "dtm": str(DTM), "tv": "py-1.1.0", "p": "pc",
            "ue_px": _px(_unstruct(data)), **params}


# Conversion ----------------------------------------------------------------------------
def test_self_describing_event_from_ue_pr() -> None:
    event = to_event({"e": "ue", "eid": "e-1", "dtm": DTM,
                      "ue_pr": _unstruct({"user_id": "u", "url": "/"})})
    assert event == {"schema": PAGE_VIEW, "data": {"user_id": "u", "url": "/"},
                     "event_id": "e-1", "event_time": "2026-01-01T00:00:00.123Z"}


@pytest.mark.parametrize("padding", [True, False])
def test_ue_px_with_or_without_padding(padding: bool) -> None:
    text = _unstruct({"user_id": "u", "url": "/é?"})
    event = to_event({"e": "ue", "ue_px": _px(text, padding)})
    assert isinstance(event, dict) and event["data"] == {"user_id": "u", "url": "/é?"}
    assert "event_id" not in event and "event_time" not in event


def test_true_timestamp_wins_over_device_time() -> None:
    event = to_event(_ue("e", ttm="0", dtm="1"))
    assert isinstance(event, dict) and event["event_time"] == "1970-01-01T00:00:00.000Z"


@pytest.mark.parametrize(("params", "reason", "words"), [
    ({"e": "pv", "url": "https://x"}, Reason.UNSUPPORTED, "only self-describing events"),
    ({"e": "se", "se_ca": "c"}, Reason.UNSUPPORTED, "structured event events"),
    ({"e": "zz"}, Reason.UNSUPPORTED, "only self-describing events"),
    ({"url": "https://x"}, Reason.BAD_ENVELOPE, "no event type"),
    ({"e": "ue"}, Reason.BAD_ENVELOPE, "neither 'ue_pr' nor 'ue_px'"),
    ({"e": "ue", "ue_px": "***"}, Reason.NOT_JSON, "not valid base64url"),
    ({"e": "ue", "ue_px": "abcde"}, Reason.NOT_JSON, "not valid base64url"),
    ({"e": "ue", "ue_px": "ü"}, Reason.NOT_JSON, "not valid base64url"),
    ({"e": "ue", "ue_px": _px("{not json")}, Reason.NOT_JSON, "'ue_px' is not valid JSON"),
    ({"e": "ue", "ue_pr": "{"}, Reason.NOT_JSON, "'ue_pr' is not valid JSON"),
    ({"e": "ue", "ue_px": base64.b64encode(b'{"\xff": 1}').decode()}, Reason.NOT_JSON,
     "'ue_px' is not valid JSON"),
    ({"e": "ue", "ue_pr": 5}, Reason.BAD_ENVELOPE, "'ue_pr' must be a string"),
    ({"e": "ue", "ue_pr": json.dumps({"schema": PAGE_VIEW, "data": {}})},
     Reason.BAD_ENVELOPE, "unstruct_event"),
    ({"e": "ue", "ue_pr": json.dumps({"schema": UNSTRUCT, "data": {"data": {}}})},
     Reason.BAD_ENVELOPE, "self-describing JSON"),
    ({"e": "ue", "ue_pr": json.dumps({"schema": UNSTRUCT, "data": {"schema": PAGE_VIEW}})},
     Reason.BAD_ENVELOPE, "self-describing JSON"),
    ({**_ue("e"), "dtm": "yesterday"}, Reason.BAD_ENVELOPE, "'dtm' must be milliseconds"),
    ({**_ue("e"), "ttm": "99999999999999999"}, Reason.BAD_ENVELOPE, "'ttm' must be"),
    ({**_ue("e"), "eid": 5}, Reason.BAD_ENVELOPE, "'eid' must be a string"),
])
def test_conversion_failures(params: dict[str, Any], reason: str, words: str) -> None:
    result = to_event(params)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert words in result.message


def test_rejection_names_the_schema_once_known() -> None:
    result = to_event({**_ue("e"), "dtm": "x"})
    assert isinstance(result, Rejection) and result.schema == PAGE_VIEW


def test_tracker_fixup_converts_tracker_rows_only() -> None:
    assert tracker_fixup(_ue("e1"))["event_id"] == "e1"
    assert tracker_fixup({"e": "pv"}) is None
    plain = {"schema": PAGE_VIEW, "data": {}}
    assert tracker_fixup(plain) is plain


# The doors, in process ------------------------------------------------------------------
# (the `project` and `client` fixtures come from tests/api/conftest.py)


def _bad_rows(project: Project) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = project.log.bad_rows().select(
        ["reason", "raw", "door", "message"]).to_pylist()
    return rows


def _event_ids(project: Project) -> list[str]:
    ids: list[str] = project.log.read("com.example/page_view", columns=["event_id"]).column(
        "event_id").to_pylist()
    return ids


def test_tp2_stores_events_and_keeps_every_other_as_a_bad_row(client: AsgiClient,
                                                              project: Project) -> None:
    elements = [json.dumps(_ue("ok-1")), json.dumps({"e": "pv", "url": "https://x"}),
                json.dumps({"e": "ue", "eid": "b", "ue_px": "%%%"}), "[1, 2]",
                json.dumps(_ue("bad-1", {"user_id": 5, "url": "/"}))]
    body = f'{{"schema": "{PAYLOAD_DATA}", "data": [{", ".join(elements)}]}}'
    response = client.post(TP2, content=body, headers={"Origin": "https://shop.example"})
    assert response.status_code == 200
    payload = response.json()
    assert (payload["accepted"], payload["rejected"], payload["duplicates"]) == (1, 4, 0)
    assert [(e["index"], e["kind"]) for e in payload["errors"]] == [
        (1, "unsupported_event"), (2, "not_json"), (3, "bad_envelope"),
        (4, "schema_violation")]
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    rows = {bytes(r["raw"]): r for r in _bad_rows(project)}
    assert set(rows) == {e.encode() for e in elements[1:]}
    assert {r["door"] for r in rows.values()} == {"snowplow"}
    assert _event_ids(project) == ["ok-1"]


def test_tp2_all_rejected_is_still_200(client: AsgiClient, project: Project) -> None:
    response = client.post(TP2, json={"schema": PAYLOAD_DATA, "data": [{"e": "pp"}]})
    assert response.status_code == 200
    assert response.json()["rejected"] == 1


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json at all", "not_json"),
    (b'{"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": []}', "bad_envelope"),
    (b'{"schema": "%s", "data": {}}' % PAYLOAD_DATA.encode(), "bad_envelope"),
    (b"[" * 3000, "bad_envelope"),
    (b'{"x": ' + b"[" * 3000, "not_json"),
    (b'{"schema": "\xff", "data": []}', "not_json"),
])
def test_tp2_body_that_is_not_payload_data(client: AsgiClient, project: Project, body: bytes,
                                           reason: str) -> None:
    response = client.post(TP2, content=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["rejected"] == 1 and "bad rows" in payload["detail"]
    assert [(r["reason"], bytes(r["raw"])) for r in _bad_rows(project)] == [(reason, body)]


def test_tp2_empty_body(client: AsgiClient, project: Project) -> None:
    assert client.post(TP2, content=b" ").status_code == 400
    assert project.log.bad_rows().num_rows == 0


def test_get_pixel(client: AsgiClient, project: Project) -> None:
    response = client.get("/i", params=_ue("px-1"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content == PIXEL and PIXEL.startswith(b"GIF89a")
    assert client.get("/i", params={"e": "pv", "url": "https://x"}).content == PIXEL
    assert client.get("/i").content == PIXEL  # no parameters: no event, nothing stored
    assert _event_ids(project) == ["px-1"]
    [row] = _bad_rows(project)
    assert row["reason"] == "unsupported_event"
    assert json.loads(row["raw"]) == {"e": "pv", "url": "https://x"}


def test_recover_tracker_events_after_the_schema_is_registered(client: AsgiClient,
                                                               project: Project) -> None:
    schema = "iglu:com.acme/signup/jsonschema/1-0-0"
    response = client.get("/i", params={"e": "ue", "eid": "late-1",
                                        "ue_pr": _unstruct({"plan": "pro"}, schema)})
    assert response.status_code == 200
    assert _bad_rows(project)[0]["reason"] == "unknown_schema"
    write_schema(project.root, schema, object_schema({"plan": {"type": "string"}}, ["plan"]))
    project.apply()
    report = project.log.recover(tracker_fixup)
    assert report.recovered == 1
    assert project.log.read("com.acme/signup").column("event_id").to_pylist() == ["late-1"]


# The real tracker, against a real server (the `served` fixture) ---------------------------
@pytest.mark.parametrize(("method", "base64_json"), [("post", True), ("post", False),
                                                     ("get", True), ("get", False)])
def test_snowplow_tracker_self_describing_events(served: tuple[Project, str], method: str,
                                                 base64_json: bool) -> None:
    from snowplow_tracker.emitters import Emitter
    from snowplow_tracker.events.page_view import PageView
    from snowplow_tracker.events.self_describing import SelfDescribing
    from snowplow_tracker.self_describing_json import SelfDescribingJson
    from snowplow_tracker.tracker import Tracker

    project, url = served
    failures: list[Any] = []
    emitter = Emitter(url.removeprefix("http://").split(":")[0], protocol="http",
                      port=int(url.rsplit(":", 1)[1]), method=method,  # type: ignore[arg-type]
                      batch_size=5, request_timeout=10,
                      on_failure=lambda sent, failed: failures.append(failed))
    tracker = Tracker("flywheel-test", emitter, app_id="shop", encode_base64=base64_json)
    ids: list[str] = []
    for i in range(7):
        event = SelfDescribing(SelfDescribingJson(PAGE_VIEW, {"user_id": f"u{i}",
                                                              "url": f"https://shop/{i}"}),
                               true_timestamp=DTM + i if i % 2 else None)
        event_id = tracker.track(event)
        assert event_id is not None
        ids.append(event_id)
    page_view_id = tracker.track(PageView(page_url="https://shop/home"))
    tracker.flush()
    assert failures == []

    table = project.log.read("com.example/page_view").to_pylist()
    assert sorted(row["event_id"] for row in table) == sorted(ids)
    assert {row["source"] for row in table} == {"snowplow"}
    by_id = {row["event_id"]: row for row in table}
    assert by_id[ids[1]]["event_time"].isoformat() == "2026-01-01T00:00:00.124000+00:00"
    assert by_id[ids[3]]["user_id"] == "u3"
    [bad] = project.log.bad_rows().to_pylist()
    assert bad["reason"] == "unsupported_event"
    assert json.loads(bad["raw"])["eid"] == page_view_id
    assert "only self-describing events" in bad["message"]
