"""What a Snowplow tracker says beside its event (aid, p, tna, tv, dtm, stm, ttm, ua) lands
in the envelope columns of the log; other doors leave them null; a tracker event whose
envelope is wrong is a bad row answered 200, so that the tracker does not retry it."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.project import Project
from tests.api.support import AsgiClient, make_project
from tests.helpers import PAGE_VIEW, page_view

TP2 = "/com.snowplowanalytics.snowplow/tp2"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
TABLE = "com.example/page_view"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 fw-test"
TEXT_COLUMNS = ("app_id", "platform", "name_tracker", "v_tracker", "useragent")
TIME_COLUMNS = ("dvce_created_tstamp", "dvce_sent_tstamp", "true_tstamp")
TRACKER_COLUMNS = (*TEXT_COLUMNS, *TIME_COLUMNS)
MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
DTM, STM, TTM = 1_767_225_600_123, 1_767_225_600_456, 1_767_225_599_001
_serial = itertools.count()  # fresh event ids across hypothesis examples


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """The tests/api project, with every time up to 9999 allowed as an event_time."""
    project = make_project(tmp_path / "p", ingest={"max_future_seconds": 10**12})
    try:
        yield project
    finally:
        project.close()


def _px(data: dict[str, Any]) -> str:
    text = json.dumps({"schema": UNSTRUCT, "data": {"schema": PAGE_VIEW, "data": data}})
    return base64.urlsafe_b64encode(text.encode()).decode()


def ue(eid: str, **params: Any) -> dict[str, Any]:
    """A self-describing tracker event with a full envelope, as the JS tracker sends it."""
    event = {"e": "ue", "eid": eid, "aid": "shop", "p": "web", "tna": "sp1", "tv": "js-4.1.0",
             "dtm": str(DTM), "stm": str(STM), "ttm": str(TTM),
             "ue_px": _px({"user_id": "u1", "url": "https://shop/?q=ü"})}
    event.update(params)
    return {k: v for k, v in event.items() if v is not None}


def post_tp2(client: AsgiClient, events: list[dict[str, Any]],
             useragent: str | None = UA) -> dict[str, Any]:
    headers = {} if useragent is None else {"User-Agent": useragent}
    response = client.post(TP2, json={"schema": PAYLOAD_DATA, "data": events}, headers=headers)
    assert response.status_code == 200, response.text  # trackers retry anything else
    answer: dict[str, Any] = response.json()
    assert answer["accepted"] + answer["rejected"] + answer["duplicates"] == len(events)
    return answer


def stored(project: Project) -> dict[str, dict[str, Any]]:
    """event_id -> envelope, times as microseconds since the epoch."""
    table = project.log.read(TABLE)
    for name in TIME_COLUMNS:
        assert table.schema.field(name).type == pa.timestamp("us", tz="UTC")
    for name in TEXT_COLUMNS:
        assert table.schema.field(name).type == pa.string()
    columns = {name: table.column(name) for name in ("event_id", "event_time", "source",
                                                     *TRACKER_COLUMNS)}
    for name in ("event_time", *TIME_COLUMNS):
        columns[name] = columns[name].cast(pa.int64())
    rows = pa.table(columns).to_pylist()
    return {row.pop("event_id"): row for row in rows}


def expected(**changes: Any) -> dict[str, Any]:
    row = {"app_id": "shop", "platform": "web", "name_tracker": "sp1", "v_tracker": "js-4.1.0",
           "useragent": UA, "dvce_created_tstamp": DTM * 1000, "dvce_sent_tstamp": STM * 1000,
           "true_tstamp": TTM * 1000, "event_time": TTM * 1000, "source": "snowplow"}
    row.update(changes)
    return row


def test_tp2_stores_the_tracker_envelope(client: AsgiClient, project: Project) -> None:
    events = [ue("full"), ue("own-ua", ua="Tracker/1.0 (param)"),
              ue("numbers", dtm=DTM, stm=STM, ttm=TTM),  # JSON numbers, as some trackers do
              ue("no-ttm", ttm=None), ue("empty-ua", ua=""),
              ue("bare", aid=None, p=None, tna=None, tv=None, dtm=None, stm=None, ttm=None)]
    answer = post_tp2(client, events)
    assert (answer["accepted"], answer["rejected"]) == (len(events), 0)
    rows = stored(project)
    assert rows["full"] == expected()
    assert rows["own-ua"] == expected(useragent="Tracker/1.0 (param)")  # the param wins
    assert rows["numbers"] == expected()
    assert rows["no-ttm"] == expected(true_tstamp=None, event_time=DTM * 1000)
    assert rows["empty-ua"] == expected()  # an empty `ua` says nothing: the header stands
    bare = rows["bare"]
    assert bare.pop("event_time") > DTM * 1000  # the receive time
    assert bare == {**dict.fromkeys(TRACKER_COLUMNS), "useragent": UA, "source": "snowplow"}


def test_tp2_without_a_user_agent_header(client: AsgiClient, project: Project) -> None:
    client_default = post_tp2(client, [ue("default-ua")], useragent=None)
    assert client_default["accepted"] == 1
    useragent = stored(project)["default-ua"]["useragent"]
    assert useragent is not None and useragent.startswith("python-httpx/")  # httpx's own
    post_tp2(client, [ue("param-only", ua="Param/2")], useragent=None)
    assert stored(project)["param-only"]["useragent"] == "Param/2"


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(st.tuples(st.integers(MIN_MS, MAX_MS), st.integers(MIN_MS, MAX_MS),
                                st.none() | st.integers(MIN_MS, MAX_MS), st.booleans()),
                      min_size=1, max_size=25))
def test_tracker_milliseconds_are_converted_exactly(
        client: AsgiClient, project: Project,
        times: list[tuple[int, int, int | None, bool]]) -> None:
    events, ids = [], []
    for dtm, stm, ttm, as_text in times:
        ids.append(f"ms-{next(_serial)}")
        sent = [None if ms is None else str(ms) if as_text else ms for ms in (dtm, stm, ttm)]
        events.append(ue(ids[-1], dtm=sent[0], stm=sent[1], ttm=sent[2]))
    answer = post_tp2(client, events)
    assert (answer["accepted"], answer["rejected"]) == (len(events), 0), answer["errors"]
    rows = stored(project)
    for eid, (dtm, stm, ttm, _) in zip(ids, times, strict=True):
        row = rows[eid]
        assert (row["dvce_created_tstamp"], row["dvce_sent_tstamp"], row["true_tstamp"]) == (
            dtm * 1000, stm * 1000, None if ttm is None else ttm * 1000)
        assert row["event_time"] == (dtm if ttm is None else ttm) * 1000



def test_get_pixel_stores_the_tracker_envelope(client: AsgiClient, project: Project) -> None:
    for eid, extra in (("px-1", {}), ("px-ua", {"ua": "Pixel/3 (param)"}),
                       ("px-no-ttm", {"ttm": ""})):
        params = {k: str(v) for k, v in ue(eid, **extra).items()}
        response = client.get("/i", params=params, headers={"User-Agent": UA})
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/gif"
    rows = stored(project)
    assert rows["px-1"] == expected()
    assert rows["px-ua"] == expected(useragent="Pixel/3 (param)")
    assert rows["px-no-ttm"] == expected(true_tstamp=None, event_time=DTM * 1000)
    assert project.log.bad_rows().num_rows == 0


def test_other_doors_leave_the_tracker_columns_null(client: AsgiClient,
                                                    project: Project) -> None:
    assert project.ingest([page_view(1, event_id="sdk-1")]).accepted == 1
    response = client.post("/v1/events", json=[page_view(2, event_id="http-1")],
                           headers={"User-Agent": UA})
    assert response.status_code == 200 and response.json()["accepted"] == 1
    post_tp2(client, [ue("tracked")])  # the same table also holds a tracked event
    rows = stored(project)
    for eid, source in (("sdk-1", "sdk"), ("http-1", "http")):
        assert rows[eid]["source"] == source
        assert {k: rows[eid][k] for k in TRACKER_COLUMNS} == dict.fromkeys(TRACKER_COLUMNS)
    assert rows["tracked"] == expected()


BAD_ENVELOPES = [
    pytest.param({"p": "nope"}, id="p-nope"),
    pytest.param({"p": "WEB"}, id="p-upper"),
    pytest.param({"p": 5}, id="p-number"),
    pytest.param({"p": ["web"]}, id="p-list"),
    pytest.param({"p": {"web": 1}}, id="p-object"),
    pytest.param({"stm": "abc"}, id="stm-text"),
    pytest.param({"stm": "12.5"}, id="stm-decimal"),
    pytest.param({"stm": "1e12"}, id="stm-exponent"),
    pytest.param({"stm": "0x10"}, id="stm-hex"),
    pytest.param({"stm": "+5"}, id="stm-plus"),
    pytest.param({"stm": " "}, id="stm-space"),
    pytest.param({"stm": "١٢٣"}, id="stm-arabic-digits"),
    pytest.param({"stm": 1.5}, id="stm-float"),
    pytest.param({"stm": True}, id="stm-bool"),
    pytest.param({"stm": [1]}, id="stm-list"),
    pytest.param({"stm": str(MAX_MS + 1)}, id="stm-after-9999"),
    pytest.param({"stm": str(MIN_MS - 1)}, id="stm-before-0001"),
    pytest.param({"dtm": "soon"}, id="dtm-text"),
    pytest.param({"ttm": str(MAX_MS + 1)}, id="ttm-after-9999"),
    pytest.param({"aid": 5}, id="aid-number"),
    pytest.param({"tna": ["x"]}, id="tna-list"),
    pytest.param({"tv": {}}, id="tv-object"),
    pytest.param({"ua": 7}, id="ua-number"),
]


@pytest.mark.parametrize("bad", BAD_ENVELOPES)
def test_a_bad_envelope_is_a_bad_row_answered_200(client: AsgiClient, project: Project,
                                                  bad: dict[str, Any]) -> None:
    alone = post_tp2(client, [ue("bad-1", **bad)])  # all rejected: still 200
    assert (alone["accepted"], alone["rejected"]) == (0, 1)
    [error] = alone["errors"]
    assert error["kind"] == "bad_envelope", error
    assert next(iter(bad)) in error["reason"]  # names the parameter
    mixed = post_tp2(client, [ue("good-1"), ue("bad-2", **bad)])
    assert (mixed["accepted"], mixed["rejected"]) == (1, 1)
    assert [(e["index"], e["kind"]) for e in mixed["errors"]] == [(1, "bad_envelope")]
    assert list(stored(project)) == ["good-1"]
    bad_rows = project.log.bad_rows().to_pylist()
    assert [(r["reason"], r["door"]) for r in bad_rows] == [("bad_envelope", "snowplow")] * 2
    assert sorted(json.loads(r["raw"])["eid"] for r in bad_rows) == ["bad-1", "bad-2"]


@pytest.mark.parametrize("bad", [{"p": "nope"}, {"stm": "abc"}, {"stm": "1.5"},
                                 {"dtm": str(MAX_MS + 1)}], ids=str)
def test_a_bad_envelope_through_the_pixel(client: AsgiClient, project: Project,
                                          bad: dict[str, str]) -> None:
    params = {k: str(v) for k, v in ue("px-bad", **bad).items()}
    response = client.get("/i", params=params, headers={"User-Agent": UA})
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    [row] = project.log.bad_rows().to_pylist()
    assert (row["reason"], row["door"]) == ("bad_envelope", "snowplow")
    assert json.loads(row["raw"]) == params


def test_nul_in_eid_is_stored_exactly_and_dedupes_exactly(client: AsgiClient,
                                                          project: Project) -> None:
    eids = ["a\x00b", "a", "a\x00", "\x00", "\x01" + "00", "\x01", "\x00\U0001f600"]
    first = post_tp2(client, [ue(e) for e in eids])
    assert (first["accepted"], first["duplicates"]) == (len(eids), 0)
    assert sorted(stored(project)) == sorted(eids)
    again = post_tp2(client, [ue(e) for e in reversed(eids)])
    assert (again["accepted"], again["duplicates"]) == (0, len(eids))
    # the pixel door shares the ids: %00 in the query is the same NUL
    response = client.get("/i", params={k: str(v) for k, v in ue("a\x00b").items()})
    assert response.status_code == 200
    pixel_new = client.get("/i", params={k: str(v) for k, v in ue("b\x00a").items()})
    assert pixel_new.status_code == 200
    assert sorted(stored(project)) == sorted([*eids, "b\x00a"])
    [row] = [r for r in project.log.receipts() if r.door == "snowplow"]
    assert (row.accepted, row.duplicates, row.rejected) == (len(eids) + 1, len(eids) + 1, 0)


# The real tracker, against a real server (the `served` fixture) ---------------------------
@pytest.mark.parametrize("method", ["post", "get"])
def test_snowplow_tracker_envelope(served: tuple[Project, str], method: str) -> None:
    import requests
    from snowplow_tracker.constants import VERSION
    from snowplow_tracker.emitters import Emitter
    from snowplow_tracker.events.self_describing import SelfDescribing
    from snowplow_tracker.self_describing_json import SelfDescribingJson
    from snowplow_tracker.subject import Subject
    from snowplow_tracker.tracker import Tracker

    project, url = served
    failures: list[Any] = []
    emitter = Emitter(url.removeprefix("http://").split(":")[0], protocol="http",
                      port=int(url.rsplit(":", 1)[1]), method=method,  # type: ignore[arg-type]
                      batch_size=10, request_timeout=10,
                      on_failure=lambda sent, failed: failures.append(failed))
    web = Tracker("fw-web", emitter, subject=Subject().set_platform("web"), app_id="shop")
    own_ua = Tracker("fw-ua", emitter, app_id="kiosk",
                     subject=Subject().set_platform("app").set_useragent("Kiosk/9 (param)"))
    before_ms = int(time.time() * 1000)
    ids: dict[str, str] = {}
    for name, tracker, ttm in (("web", web, None), ("web-ttm", web, TTM),
                               ("ua", own_ua, None)):
        event = SelfDescribing(SelfDescribingJson(PAGE_VIEW, {"user_id": name, "url": "/"}),
                               true_timestamp=ttm)
        event_id = tracker.track(event)
        assert event_id is not None
        ids[name] = event_id
    web.flush()
    after_ms = int(time.time() * 1000)
    assert failures == []

    rows = stored(project)
    assert sorted(rows) == sorted(ids.values())
    header = f"python-requests/{requests.__version__}"  # type: ignore[attr-defined]
    for name, (app_id, platform, tna, useragent) in {
            "web": ("shop", "web", "fw-web", header), "web-ttm": ("shop", "web", "fw-web", header),
            "ua": ("kiosk", "app", "fw-ua", "Kiosk/9 (param)")}.items():
        row = rows[ids[name]]
        assert (row["app_id"], row["platform"], row["name_tracker"], row["v_tracker"],
                row["useragent"], row["source"]) == (app_id, platform, tna, VERSION, useragent,
                                                     "snowplow")
        created, sent = row["dvce_created_tstamp"], row["dvce_sent_tstamp"]
        assert created % 1000 == 0 and before_ms * 1000 <= created <= after_ms * 1000
        # stm is whole seconds (the tracker's int(time.time()) * 1000)
        assert sent % 1_000_000 == 0 and before_ms // 1000 * 1_000_000 <= sent <= after_ms * 1000
        if name == "web-ttm":
            assert row["true_tstamp"] == row["event_time"] == TTM * 1000
        else:
            assert row["true_tstamp"] is None and row["event_time"] == created
