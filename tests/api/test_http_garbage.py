"""Garbage through the HTTP doors: never a 5xx or a traceback, and every input accounted for.

App exceptions are raised by the in-process transport (never turned into a 500 answer),
so a server bug fails the example that triggers it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.api.app import create_app
from flywheel.ingest.body import split_body
from flywheel.project import Project
from tests.api.support import AsgiClient, count_log_rows, make_project
from tests.helpers import PAGE_VIEW

MAX_EVENT_BYTES = 2048
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12,
)
texts = st.text(max_size=30)
huge = st.integers(MAX_EVENT_BYTES + 1, 3 * MAX_EVENT_BYTES).map(lambda n: "x" * n)
near_valid = st.fixed_dictionaries(
    {"schema": st.sampled_from([PAGE_VIEW, PAGE_VIEW, "iglu:com.example/page_view/jsonschema/"
                                "1-0-1", "iglu:com.unknown/thing/jsonschema/1-0-0", "iglu:bad",
                                ""]) | json_values,
     "data": st.fixed_dictionaries({"user_id": texts | json_values, "url": texts | huge},
                                   optional={"referrer": texts | st.none() | json_values,
                                             "extra": texts})
     | json_values},
    optional={"event_id": st.sampled_from(["a", "b", "c", "", "x" * 200]) | texts | json_values,
              "event_time": st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01",
                                             "yesterday", "2026-13-01T00:00:00Z",
                                             "9999-01-01T00:00:00Z", "2026-01-01T00:00:00"])
              | json_values,
              "surprise": json_values},
)
elements = near_valid | near_valid | json_values


@dataclass(frozen=True)
class Body:
    content: bytes
    count: int  # events the server must account for; -1: an empty body (nothing to count)


def _count(content: bytes) -> int:
    try:
        return len(split_body(content))
    except Exception:  # the empty-body error
        return -1


@st.composite
def array_bodies(draw: st.DrawFn) -> Body:
    items = draw(st.lists(elements, max_size=20))
    space = draw(st.sampled_from(["", " ", "\n  "]))
    content = ("[" + space + ("," + space).join(json.dumps(i) for i in items) + "]").encode()
    return Body(content, len(items))


@st.composite
def ndjson_bodies(draw: st.DrawFn) -> Body:
    lines = [json.dumps(i) for i in draw(st.lists(elements, min_size=1, max_size=20))]
    if lines[0].startswith("["):  # a first line opening with `[` makes the body an array
        lines.insert(0, "{}")
    garbage = st.text(st.characters(blacklist_characters="\r\n"), min_size=1, max_size=40)
    extra = draw(st.lists(garbage.filter(lambda t: t.strip(" \t")), max_size=3))
    lines.extend(extra)
    blank = draw(st.sampled_from(["", "  ", "\t"]))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    content = (ending + blank + ending).join(lines) if blank else ending.join(lines)
    return Body(content.encode("utf-8", "surrogatepass"), len(lines))  # bad UTF-8 too


@st.composite
def mangled_bodies(draw: st.DrawFn) -> Body:
    """Random bytes, and valid bodies cut or spliced with random bytes."""
    base = draw(array_bodies() | ndjson_bodies()).content
    cut = draw(st.integers(0, len(base)))
    noise = draw(st.binary(max_size=40))
    content = draw(st.sampled_from([base[:cut], base[:cut] + noise + base[cut:], noise]))
    return Body(content, _count(content))


bodies = array_bodies() | ndjson_bodies() | mangled_bodies() | st.binary(max_size=300).map(
    lambda b: Body(b, _count(b)))


def _check_answer(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    payload: dict[str, Any] = response.json()
    assert "\n" not in payload.get("detail", "")
    return payload


def _stored(project: Project) -> int:
    """Events in the log plus receipts of rejected inputs (a repeated one is one bad row)."""
    bad: int = sum(project.log.bad_rows().column("receipts").to_pylist())
    return count_log_rows(project) + bad


def test_collector_never_fails_and_accounts_for_every_event(tmp_path: Path) -> None:
    totals = {"accepted": 0, "rejected": 0, "duplicates": 0, "requests": 0}
    with make_project(tmp_path / "g", ingest={"max_event_bytes": MAX_EVENT_BYTES}) as project, \
            AsgiClient(create_app(project)) as client:

        @SETTINGS
        @given(body=bodies, ndjson_type=st.booleans())
        def check(body: Body, ndjson_type: bool) -> None:
            headers = {"content-type": "application/x-ndjson" if ndjson_type
                       else "application/json"}
            payload = _check_answer(client.post("/v1/events", content=body.content,
                                                headers=headers))
            if body.count < 0:
                assert payload["detail"].startswith("the request body is empty")
                return
            counts = payload["accepted"], payload["rejected"], payload["duplicates"]
            assert sum(counts) == body.count
            assert len(payload["errors"]) == payload["rejected"]
            for key, value in zip(("accepted", "rejected", "duplicates"), counts, strict=True):
                totals[key] += value
            totals["requests"] += 1

        check()
        assert totals["requests"] > 0
        assert _stored(project) == totals["accepted"] + totals["rejected"]


tracker_params = st.dictionaries(
    st.sampled_from(["e", "eid", "dtm", "ttm", "ue_pr", "ue_px", "url", "p"]) | st.text(max_size=5),
    st.sampled_from(["ue", "pv", "se", "", "1767225600000", "-5", "9" * 30]) | st.text(max_size=40),
    max_size=6)


def test_tracker_doors_never_fail(tmp_path: Path) -> None:
    """tp2 and GET /i with garbage: answers are 2xx or 4xx, and what they count is stored."""
    counted = {"stored": 0}
    with make_project(tmp_path / "t") as project, AsgiClient(create_app(project)) as client:

        @SETTINGS
        @given(body=st.binary(max_size=200) | st.builds(
            lambda data, schema: json.dumps({"schema": schema, "data": data}).encode(),
            st.lists(tracker_params | json_values, max_size=5),
            st.sampled_from(["iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/"
                             "1-0-4", "iglu:x/y/jsonschema/1-0-0"])),
            query=tracker_params)
        def check(body: bytes, query: dict[str, str]) -> None:
            response = client.post("/com.snowplowanalytics.snowplow/tp2", content=body)
            payload = _check_answer(response)
            counted["stored"] += payload.get("accepted", 0) + payload.get("rejected", 0)
            pixel = client.get("/i", params=query)
            assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
            counted["stored"] += 1 if query else 0

        check()
        assert _stored(project) == counted["stored"]
