"""Properties of event ids and event times, through the SDK and `POST /v1/events`.

Ids: any non-empty str of at most 4096 characters that is valid Unicode is stored exactly
as given and dedupes exactly (NUL, control characters, astral characters included); two
different ids never shadow each other. Times: any RFC 3339 instant in 0001..9999 (UTC),
written with any offset, separator and number of fraction digits, reads back as that
instant cut to the microsecond; anything outside is a bad row that says why.

Expected values are computed here from integers (microseconds since the epoch and a
civil-calendar conversion of our own), not with the code under test.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.api.app import create_app
from flywheel.project import Project
from tests.api.support import AsgiClient, make_project
from tests.helpers import PAGE_VIEW, object_schema, page_view, write_schema

STAMPED = "iglu:com.example/stamped/jsonschema/1-0-0"
MAX_ID = 4096
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
MIN_US = (dt.datetime(1, 1, 1, tzinfo=dt.UTC) - _EPOCH) // _US
MAX_US = (dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC) - _EPOCH) // _US
DAY_US = 86_400_000_000
FAR_FUTURE_SECONDS = 10**12
"""ingest.max_future_seconds for these projects: every instant up to 9999 is allowed."""
SETTINGS = settings(max_examples=35, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
_serial = itertools.count()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    project = make_project(tmp_path / "p", ingest={"max_future_seconds": FAR_FUTURE_SECONDS})
    write_schema(project.root, STAMPED, object_schema(
        {"at": {"type": "string", "format": "date-time"}, "n": {"type": "integer"}}))
    project.apply()
    try:
        yield project
    finally:
        project.close()


@pytest.fixture
def client(project: Project) -> Iterator[AsgiClient]:
    with AsgiClient(create_app(project)) as client:
        yield client


def stored_ids(project: Project, table: str = "com.example/page_view") -> list[str]:
    if not project.log_store.handle(project.log.table(table)).exists():
        return []
    ids: list[str] = project.log.read(table, columns=["event_id"]).column(
        "event_id").to_pylist()
    return ids


def fresh_id() -> str:
    return f"t-{next(_serial)}-{uuid.uuid4().hex[:8]}"


def assert_adds_up(result: Any, sent: int) -> None:
    assert result.accepted + result.rejected + result.duplicates == sent
    assert len(result.errors) == result.rejected


# Ids --------------------------------------------------------------------------------------
_char = st.characters(codec="utf-8")  # every code point but the surrogates
_odd = st.sampled_from(["\x00", "\x01", "\x02", "\x1f", "\x7f", "\x85", "a", "A", " ",
                        "\U0001f600", "\U0010ffff", "\ufeff", "\ufffe", "\u2028", "é",
                        "e\u0301", "\\", '"', "00", "\x0100"])
short_ids = st.text(_char, min_size=1, max_size=12)
odd_ids = st.lists(_odd, min_size=1, max_size=6).map("".join)
long_ids = st.builds(lambda head, fill: (head + fill * MAX_ID)[:MAX_ID],
                     st.text(_char, max_size=4), _char)
any_id = short_ids | odd_ids | long_ids


def _neighbours(ids: list[str]) -> list[str]:
    """Each id and ids that differ from it by a NUL or the index's escape mark."""
    out: list[str] = []
    for x in ids:
        out += [x, ("\x01" + x)[:MAX_ID], (x + "\x00")[:MAX_ID], ("\x00" + x)[:MAX_ID]]
        if len(x) > 1:
            out.append(x[:-1])
    return out


id_batches = st.lists(any_id, min_size=1, max_size=5).map(_neighbours)


def _check_new_ids(project: Project, before: set[str], batch: list[str], result: Any) -> None:
    """`batch` was just sent (event i with user_id u{i}) into a table holding `before`."""
    assert_adds_up(result, len(batch))
    first_at: dict[str, int] = {}
    for i, x in enumerate(batch):
        first_at.setdefault(x, i)
    new = [x for x in first_at if x not in before]
    assert (result.accepted, result.rejected, result.duplicates) == (
        len(new), 0, len(batch) - len(new))
    table = project.log.read("com.example/page_view", columns=["event_id", "user_id"])
    rows = table.column("event_id").to_pylist()
    counts = Counter(rows)
    assert all(n == 1 for n in counts.values()), [k for k, n in counts.items() if n > 1]
    assert set(rows) == before | set(batch)
    owner = dict(zip(rows, table.column("user_id").to_pylist(), strict=True))
    assert {x: owner[x] for x in new} == {x: f"u{first_at[x]}" for x in new}


@SETTINGS
@given(batch=id_batches)
def test_sdk_ids_are_stored_exactly_and_dedupe_exactly(project: Project,
                                                      batch: list[str]) -> None:
    before = set(stored_ids(project))
    result = project.ingest([page_view(i, event_id=x) for i, x in enumerate(batch)])
    _check_new_ids(project, before, batch, result)
    again = project.ingest([page_view(i, event_id=x) for i, x in enumerate(batch)])
    assert (again.accepted, again.rejected, again.duplicates) == (0, 0, len(batch))
    assert len(stored_ids(project)) == len(before | set(batch))


SHADOWS = [
    "a", "a\x00b", "a\x00", "\x00a", "\x00", "\x00\x00", "\x01", "\x01\x01", "x", "\x01x",
    "\x0100",  # how the index keys "\x00"
    "\x01" + b"a".hex(), "\x01" + b"a\x00b".hex(),
    "a\x01", "A", "a ", " a", "é", "e\u0301", "\U0001f600", "\U0001f600\U0001f600", "\ufeffa",
    "a\x7f",
    "1f0c2e7a-93b1-4c55-a1d2-000000000000", "1f0c2e7a-93b1-4c55-a1d2-000000000001",
    "x" * MAX_ID, "x" * (MAX_ID - 1) + "\x00", "\x01" + "x" * (MAX_ID - 1),
    "\U0010ffff" * MAX_ID,
]


def test_different_ids_never_shadow_each_other(project: Project) -> None:
    distinct = list(dict.fromkeys(SHADOWS))
    for x in distinct:  # one at a time: each is new whatever came before
        result = project.ingest([page_view(0, event_id=x)])
        assert (result.accepted, result.duplicates) == (1, 0), repr(x[:20])
    assert Counter(stored_ids(project)) == Counter(distinct)
    result = project.ingest([page_view(i, event_id=x) for i, x in enumerate(distinct)])
    assert (result.accepted, result.duplicates) == (0, len(distinct))
    # ...and a log-assigned id is never taken for one of them, nor the other way round
    result = project.ingest([page_view(i) for i in range(5)])
    assert result.accepted == 5 and len(set(stored_ids(project))) == len(distinct) + 5


NOT_IDS: list[Any] = ["", "x" * (MAX_ID + 1), "\U0001f600" * (MAX_ID + 1),
                      "\x00" * (MAX_ID + 1), 5, 0, 1.5, True, False, [], ["a"], {}, {"a": "b"},
                      b"bytes"]


def test_ids_that_are_not_ids_are_bad_envelopes(project: Project) -> None:
    edge = ["x" * MAX_ID, "\U0001f600" * MAX_ID, "\x00" * MAX_ID]
    batch = [page_view(i, event_id=x) for i, x in enumerate(NOT_IDS)]
    batch += [page_view(100 + i, event_id=x) for i, x in enumerate(edge)]
    result = project.ingest(batch)
    assert_adds_up(result, len(batch))
    assert (result.accepted, result.rejected) == (len(edge), len(NOT_IDS))
    assert [e.index for e in result.errors] == list(range(len(NOT_IDS)))
    assert {e.reason for e in result.errors} == {"bad_envelope"}
    assert all("event_id" in e.message for e in result.errors)
    assert sorted(stored_ids(project)) == sorted(edge)


_surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
with_lone_surrogates = st.builds(lambda a, s, b: (a + s + b)[:MAX_ID],
                                 st.text(_char, max_size=5), st.text(_surrogate, min_size=1,
                                                                     max_size=2),
                                 st.text(_char, max_size=5))


@SETTINGS
@given(bad=st.lists(with_lone_surrogates, min_size=1, max_size=6))
def test_sdk_ids_with_lone_surrogates_are_bad_rows(project: Project, bad: list[str]) -> None:
    good = [fresh_id() for _ in bad]
    batch: list[dict[str, Any]] = []
    for i, (b, g) in enumerate(zip(bad, good, strict=True)):
        batch += [page_view(i, event_id=b), page_view(i, event_id=g)]
    result = project.ingest(batch)  # never an exception
    assert_adds_up(result, len(batch))
    assert (result.accepted, result.rejected) == (len(good), len(bad))
    assert [e.index for e in result.errors] == list(range(0, len(batch), 2))
    assert all(e.reason and e.message for e in result.errors)
    assert set(good) <= set(stored_ids(project))
    assert not any(re.search("[\ud800-\udfff]", x) for x in stored_ids(project))


# Ids over HTTP ------------------------------------------------------------------------------
def _ascii_body(events: list[dict[str, Any]]) -> bytes:
    """The JSON a client with ensure_ascii writes: astral characters as surrogate pairs."""
    return json.dumps(events, ensure_ascii=True).encode()


@SETTINGS
@given(batch=id_batches, escaped_first=st.booleans())
def test_http_ids_are_stored_exactly_and_dedupe_across_encodings(
        project: Project, client: AsgiClient, batch: list[str], escaped_first: bool) -> None:
    events = [page_view(i, event_id=x) for i, x in enumerate(batch)]
    escaped = _ascii_body(events)
    assert b"\x00" not in escaped and all(byte < 0x80 for byte in escaped)

    def send(as_ascii: bool) -> dict[str, Any]:
        if as_ascii:
            response = client.post("/v1/events", content=escaped,
                                   headers={"Content-Type": "application/json"})
        else:
            response = client.post("/v1/events", json=events)  # NUL as \u0000, astral raw
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    before = set(stored_ids(project))
    first = send(escaped_first)
    _check_new_ids(project, before, batch, _Answer(first))
    second = send(not escaped_first)
    assert (second["accepted"], second["rejected"], second["duplicates"]) == (0, 0, len(batch))
    # and the SDK agrees with both
    third = project.ingest(events)
    assert (third.accepted, third.duplicates) == (0, len(batch))


class _Answer:
    """An HTTP answer with the attributes of an IngestResult."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.accepted = answer["accepted"]
        self.rejected = answer["rejected"]
        self.duplicates = answer["duplicates"]
        self.errors = answer["errors"]


def _line(event_id: str) -> bytes:
    """One NDJSON event whose event_id is the JSON text `event_id` (escapes as written)."""
    return (f'{{"schema": "{PAGE_VIEW}", "data": {{"user_id": "u", "url": "/"}}, '
            f'"event_id": {event_id}}}').encode()


LONE_ESCAPES = [r'"\ud800"', r'"\udc00"', r'"a\udfffb"', r'"\ud800\u0041"',
                r'"\ud800\ud800"', r'"\udc00\ud800"', r'"\ud83d"', r'"x\ude00"']
NOT_ID_JSON = ['""', json.dumps("x" * (MAX_ID + 1)), json.dumps("\U0001f600" * (MAX_ID + 1)),
               "5", "1.5", "true", "[]", '["a"]', "{}"]


def test_http_ids_that_are_not_ids_are_bad_rows(project: Project, client: AsgiClient) -> None:
    edge = [json.dumps("\U0001f600" * MAX_ID), json.dumps("\x00" * MAX_ID),
            json.dumps("\U0001f600" * MAX_ID, ensure_ascii=False), r'"\ud83d\ude00"']
    lines = [_line(x) for x in LONE_ESCAPES + NOT_ID_JSON + edge]
    response = client.post("/v1/events", content=b"\n".join(lines),
                           headers={"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (len(edge) - 1, len(lines) - len(edge))
    assert answer["duplicates"] == 1  # the raw and the escaped 4096 emoji are one id
    kinds = [(e["index"], e["kind"]) for e in answer["errors"]]
    assert kinds == [(i, "not_json") for i in range(len(LONE_ESCAPES))] + [
        (len(LONE_ESCAPES) + i, "bad_envelope") for i in range(len(NOT_ID_JSON))]
    assert sorted(stored_ids(project)) == sorted(["\U0001f600" * MAX_ID, "\x00" * MAX_ID,
                                                  "\U0001f600"])
    reasons = Counter(project.log.bad_rows().column("reason").to_pylist())
    assert reasons == {"not_json": len(LONE_ESCAPES), "bad_envelope": len(NOT_ID_JSON)}


@pytest.mark.parametrize("escape", LONE_ESCAPES)
def test_http_lone_surrogate_in_an_array_body_is_a_bad_row_not_a_500(
        project: Project, client: AsgiClient, escape: str) -> None:
    body = b"[" + _line('"fine-1"') + b", " + _line(escape) + b"]"
    response = client.post("/v1/events", content=body,
                           headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400), response.text
    answer = response.json()
    assert answer["rejected"] >= 1
    assert {e["kind"] for e in answer["errors"]} == {"not_json"}
    assert "not_json" in project.log.bad_rows().column("reason").to_pylist()
    assert not any(re.search("[\ud800-\udfff]", x) for x in stored_ids(project))


# Times: formatting and reading RFC 3339 with integers only -----------------------------------
def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number (0 = 1970-01-01), proleptic Gregorian, any year."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def render(instant_us: int, offset_min: int | None, digits: int, extra: int, sep: str,
           zulu: str, minus_zero: bool) -> tuple[str, int] | None:
    """`instant_us` written in RFC 3339 at `offset_min` (None: Z) with `digits` fraction
    digits (`extra` supplies digits 7 to 9), and the instant that text denotes cut to the
    microsecond; None when the local time falls outside the years 0000 to 9999."""
    local = instant_us + (offset_min or 0) * 60_000_000
    days, rest = divmod(local, DAY_US)
    year, month, day = civil_from_days(days)
    if not 0 <= year <= 9999:
        return None
    seconds, micros = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    fraction = f"{micros:06d}{extra:03d}"[:digits]
    text = f"{year:04d}-{month:02d}-{day:02d}{sep}{hours:02d}:{minutes:02d}:{seconds:02d}"
    if digits:
        text += "." + fraction
    if offset_min is None:
        text += zulu
    else:
        sign = "-" if offset_min < 0 or (offset_min == 0 and minus_zero) else "+"
        text += f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    return text, instant_us - micros + int(fraction[:6].ljust(6, "0"))


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                      r"(?:([Zz])|([+-])(\d\d):?(\d\d))")


def denoted_us(text: str) -> tuple[int, bool]:
    """The instant `text` denotes, cut to the microsecond, and whether it is a leap second.
    `int` reads any Unicode decimal digit, as `\\d` in the format's expression matches."""
    match = _RFC3339.fullmatch(text)
    assert match is not None, text
    year, month, day, hours, minutes, seconds = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    offset = 0
    if match.group(9):
        offset = (int(match.group(10)) * 60 + int(match.group(11))) * (
            -1 if match.group(9) == "-" else 1)
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    local = (days_from_civil(year, month, day) * 86_400 + hours * 3600 + minutes * 60
             + seconds) * 1_000_000 + micros
    return local - offset * 60_000_000, seconds == 60


def _to_us(value: dt.datetime) -> int:
    return (value - _EPOCH) // _US


@st.composite
def written_instants(draw: st.DrawFn, instants: st.SearchStrategy[int],
                     seps: str = "Tt ") -> tuple[str, int]:
    instant = draw(instants)
    offset = draw(st.none() | st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    parts = (draw(st.integers(0, 9)), draw(st.integers(0, 999)), draw(st.sampled_from(seps)),
             draw(st.sampled_from("Zz")), draw(st.booleans()))
    rendered = render(instant, offset, *parts)
    if rendered is None and offset:  # the local year would be 10000: the other side
        rendered = render(instant, -offset, *parts)
    if rendered is None:
        rendered = render(instant, -(23 * 60 + 59), *parts)
    assert rendered is not None or instant > MAX_US
    return rendered if rendered is not None else ("", 0)


in_range = st.datetimes(min_value=dt.datetime(1, 1, 1),
                        max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999_999),
                        timezones=st.just(dt.UTC)).map(_to_us)
near_the_ends = (st.integers(MIN_US - DAY_US, MIN_US + DAY_US)
                 | st.integers(MAX_US - DAY_US, MAX_US + DAY_US))


def test_the_range_is_what_the_contract_says() -> None:
    assert render(MIN_US, None, 0, 0, "T", "Z", False) == ("0001-01-01T00:00:00Z", MIN_US)
    assert render(MAX_US, None, 9, 999, "T", "Z", False) == (
        "9999-12-31T23:59:59.999999999Z", MAX_US)
    assert render(MIN_US, -1, 3, 0, " ", "Z", True) == ("0000-12-31 23:59:00.000-00:01",
                                                         MIN_US)
    assert render(MAX_US + 1, None, 0, 0, "T", "Z", False) is None
    assert denoted_us("0001-01-01T01:00:00+08:21") == (MIN_US - 441 * 60_000_000, False)
    assert denoted_us("9999-12-31T23:59:59-01:00")[0] > MAX_US


def _read_times(project: Project, table: str, column: str) -> dict[str, int]:
    data = project.log.read(table, columns=["event_id", column])
    return dict(zip(data.column("event_id").to_pylist(),
                    data.column(column).cast("int64").to_pylist(), strict=True))


def _times_batch(written: list[tuple[str, int]], payload: bool) -> tuple[list[Any], list[str]]:
    ids = [fresh_id() for _ in written]
    if payload:
        events = [{"schema": STAMPED, "data": {"at": text, "n": i}, "event_id": x,
                   "event_time": "2026-01-01T00:00:00Z"}
                  for i, ((text, _), x) in enumerate(zip(written, ids, strict=True))]
    else:
        events = [page_view(i, event_id=x, event_time=text)
                  for i, ((text, _), x) in enumerate(zip(written, ids, strict=True))]
    return events, ids


@SETTINGS
@given(written=st.lists(written_instants(in_range), min_size=1, max_size=40))
def test_event_times_read_back_as_the_instant_cut_to_microseconds(
        project: Project, written: list[tuple[str, int]]) -> None:
    events, ids = _times_batch(written, payload=False)
    result = project.ingest(events)
    assert_adds_up(result, len(events))
    assert result.errors == [], [(written[e.index][0], e.message) for e in result.errors]
    assert result.accepted == len(events)
    stored = _read_times(project, "com.example/page_view", "event_time")
    assert {x: stored[x] for x in ids} == {
        x: expected for x, (_, expected) in zip(ids, written, strict=True)}


@SETTINGS
@given(written=st.lists(written_instants(in_range), min_size=1, max_size=40))
def test_payload_date_times_read_back_as_the_instant_cut_to_microseconds(
        project: Project, written: list[tuple[str, int]]) -> None:
    events, ids = _times_batch(written, payload=True)
    result = project.ingest(events)
    assert_adds_up(result, len(events))
    rejected = {e.index: e for e in result.errors}
    # The schema's date-time format wants 'T' or 't': with a space it is a bad row.
    assert set(rejected) == {i for i, (text, _) in enumerate(written) if text[10] == " "}
    assert all(e.reason == "schema_violation" for e in rejected.values())
    stored = _read_times(project, "com.example/stamped", "at")
    kept = {x: expected for i, (x, (_, expected)) in enumerate(zip(ids, written, strict=True))
            if i not in rejected}
    assert {x: stored[x] for x in kept} == kept
    assert not set(ids) - set(kept) & set(stored)


@SETTINGS
@given(written=st.lists(written_instants(near_the_ends), min_size=1, max_size=40))
def test_times_outside_0001_to_9999_are_bad_rows_that_say_so(
        project: Project, written: list[tuple[str, int]]) -> None:
    written = [w for w in written if w[0]]
    events, ids = _times_batch(written, payload=False)
    payload_written = [w for w in written if w[0][10] != " "]
    payload_events, payload_ids = _times_batch(payload_written, payload=True)
    result = project.ingest(events + payload_events)
    assert_adds_up(result, len(events) + len(payload_events))
    rejected = {e.index: e for e in result.errors}
    outside = [i for i, (_, expected) in enumerate(written + payload_written)
               if not MIN_US <= expected <= MAX_US]
    assert sorted(rejected) == outside
    for i in outside:
        error = rejected[i]
        assert "outside the years 0001 to 9999" in error.message, error
        assert error.reason == ("bad_envelope" if i < len(events) else "schema_violation")
    for table, column, names, texts in (
            ("com.example/page_view", "event_time", ids, written),
            ("com.example/stamped", "at", payload_ids, payload_written)):
        inside = {x: expected for x, (_, expected) in zip(names, texts, strict=True)
                  if MIN_US <= expected <= MAX_US}
        if inside:
            stored = _read_times(project, table, column)
            assert {x: stored[x] for x in inside} == inside
            assert not set(names) - set(inside) & set(stored)


@pytest.mark.parametrize(("text", "stored"), [
    ("0001-01-01T00:00:00Z", MIN_US),
    ("0000-12-31T23:59:59.999999999-00:01", MIN_US + 59_999_999),
    ("0000-12-31t00:01:00-23:59", MIN_US),
    ("9999-12-31 23:59:59.999999999z", MAX_US),
    ("9999-12-31T23:59:59.999999+00:00", MAX_US),
    ("10000-01-01T00:00:00Z", None),
    ("0001-01-01T01:00:00+08:21", None),
    ("9999-12-31T23:59:59-01:00", None),
    ("0000-12-31T23:59:59.999999Z", None),
    ("0001-01-01T00:00:00+00:01", None),
])
def test_the_ends_of_the_range(project: Project, text: str, stored: int | None) -> None:
    result = project.ingest([page_view(0, event_id="edge", event_time=text)])
    assert_adds_up(result, 1)
    if stored is None:
        [error] = result.errors
        assert error.reason == "bad_envelope"
        if not text.startswith("10000"):
            assert "outside the years 0001 to 9999" in error.message
    else:
        assert result.accepted == 1, result.errors
        assert _read_times(project, "com.example/page_view", "event_time") == {"edge": stored}


@st.composite
def leap_seconds(draw: st.DrawFn, seps: str = "Tt ") -> str:
    day = draw(st.dates(dt.date(1, 1, 2), dt.date(9999, 12, 30)))
    text = (f"{day.year:04d}-{day.month:02d}-{day.day:02d}{draw(st.sampled_from(seps))}"
            f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:60")
    digits = draw(st.integers(0, 9))
    if digits:
        text += "." + draw(st.text("0123456789", min_size=digits, max_size=digits))
    offset = draw(st.none() | st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    if offset is None:
        return text + draw(st.sampled_from("Zz"))
    sign = "-" if offset < 0 else "+"
    return text + f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


@SETTINGS
@given(envelope=st.lists(leap_seconds(), min_size=1, max_size=20),
       payload=st.lists(leap_seconds("Tt"), min_size=1, max_size=20))
def test_leap_seconds_are_bad_rows_that_say_so(project: Project, envelope: list[str],
                                               payload: list[str]) -> None:
    events: list[Any] = [page_view(i, event_id=fresh_id(), event_time=t)
                         for i, t in enumerate(envelope)]
    events += [{"schema": STAMPED, "data": {"at": t}, "event_id": fresh_id()} for t in payload]
    result = project.ingest(events)
    assert_adds_up(result, len(events))
    assert result.rejected == len(events)
    assert [e.reason for e in result.errors] == (
        ["bad_envelope"] * len(envelope) + ["schema_violation"] * len(payload))
    assert all("leap second" in e.message for e in result.errors), result.errors


def _format_regex() -> str:
    from fastjsonschema.draft07 import CodeGeneratorDraft07

    pattern: str = CodeGeneratorDraft07.FORMAT_REGEXS["date-time"]
    return pattern


format_values = (st.from_regex(_format_regex(), fullmatch=True)  # any Unicode digit
                 | st.from_regex(_format_regex(), fullmatch=True,
                                 alphabet=st.characters(codec="ascii")))


@SETTINGS
@given(values=st.lists(format_values, min_size=1, max_size=30))
def test_whatever_the_format_accepts_is_the_same_instant_or_a_bad_row(
        project: Project, values: list[str]) -> None:
    """Unicode digits, 30 fraction digits, +hhmm offsets, year 0000, leap seconds: each is
    stored as the instant it denotes (cut to the microsecond), or is a bad row."""
    events: list[Any] = []
    for i, text in enumerate(values):
        events.append({"schema": STAMPED, "data": {"at": text, "n": i}, "event_id": fresh_id(),
                       "event_time": "2026-01-01T00:00:00Z"})
        events.append(page_view(i, event_id=fresh_id(), event_time=text))
    result = project.ingest(events)  # never an exception
    assert_adds_up(result, len(events))
    assert all(e.reason and e.message for e in result.errors)
    rejected = {e.index for e in result.errors}
    payload = _read_times(project, "com.example/stamped", "at") if any(
        i % 2 == 0 and i not in rejected for i in range(len(events))) else {}
    envelope = _read_times(project, "com.example/page_view", "event_time") if any(
        i % 2 == 1 and i not in rejected for i in range(len(events))) else {}
    for i, event in enumerate(events):
        if i in rejected:
            continue
        text = values[i // 2]
        expected, leap = denoted_us(text)
        assert not leap, text
        assert MIN_US <= expected <= MAX_US, text
        got = (payload if i % 2 == 0 else envelope)[event["event_id"]]
        assert got == expected, (text, got, expected)
    for i, text in enumerate(values):  # what the contract names must be stored, not refused
        expected, leap = denoted_us(text)
        plain = (text.isascii() and not leap and MIN_US <= expected <= MAX_US
                 and re.fullmatch(r"[^.]*(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)", text[19:]))
        if plain:
            assert 2 * i + 1 not in rejected, (text, result.errors)
