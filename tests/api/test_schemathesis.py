"""Schemathesis against the app: every route, requests valid and invalid per `/openapi.json`,
every check (server errors, status codes, content types, response bodies and headers,
valid data accepted, invalid data rejected, ...).

The document's own format `event-time` (a date-time no further ahead than
`ingest.max_future_seconds`) is taught to the generator here; NDJSON bodies are written as
one JSON value per line.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel._core.hashing import sha256_text
from flywheel._core.metadata.tokens import PUBLISHABLE, TokenRecord
from flywheel.api.app import create_app
from flywheel.api.openapi import EVENT_TIME_FORMAT
from flywheel.project import Project
from tests.api.support import make_project

EXAMPLES = 60
_ZONES = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)),
                          dt.timezone(dt.timedelta(hours=-8))])
_UNTIL = dt.datetime.now(dt.UTC).replace(tzinfo=None)
# From 0001-01-02 local time: with any of these offsets it is still in year 0001 in UTC, the
# first year the log stores (what the format promises).
schemathesis.openapi.format(EVENT_TIME_FORMAT, st.datetimes(min_value=dt.datetime(1, 1, 2),
                                                            max_value=_UNTIL, timezones=_ZONES)
                            .map(dt.datetime.isoformat))


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    values = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(v) for v in values).encode()


NOT_CHECKED_FOR = {
    # A batch is judged event by event: valid events are stored, the others kept in bad
    # rows and listed in `errors`, and the answer is 200 when any event was stored (400 only
    # when none was). So a batch with one invalid event among valid ones is answered 200,
    # which this check reads as an invalid request accepted (see the report).
    "POST /v1/events": {"negative_data_rejection"},
    # Its requests name the project's features, which the document does not list: a
    # well-formed request for an unknown feature is a 400 (see the report).
    "POST /v1/features/online": {"positive_data_acceptance"},
    # The project's deployments and predictions are not in the document either: a
    # well-formed request for an unknown deployment or prediction is a 404.
    **{label: {"positive_data_acceptance"} for label in (
        "POST /v1/models/{deployment}/predict", "POST /v1/feedback",
        "GET /v2/models/{name}", "GET /v2/models/{name}/ready", "POST /v2/models/{name}/infer",
        "GET /v2/models/{name}/versions/{version}",
        "GET /v2/models/{name}/versions/{version}/ready",
        "POST /v2/models/{name}/versions/{version}/infer")},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = make_project(tmp_path_factory.mktemp("st") / "p")
    project.metadata.add_token(TokenRecord("web", sha256_text("pk_schemathesis_key"), (),
                                           kind=PUBLISHABLE, app_ids=("shop",),
                                           key="pk_schemathesis_key"))
    try:
        yield project
    finally:
        project.close()


@pytest.fixture(scope="module")
def schema(project: Project) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(project))


def _operations(project_dir: Path) -> list[str]:
    with make_project(project_dir) as project:
        spec = create_app(project).openapi()
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items()
            for method in item]


OPERATIONS = ["POST /v1/events", "POST /com.snowplowanalytics.snowplow/tp2", "GET /i",
              "POST /k/{key}/com.snowplowanalytics.snowplow/tp2", "GET /k/{key}/i",
              "POST /v1/features/online", "GET /healthz",
              "POST /v1/models/{deployment}/predict", "POST /v1/feedback", "GET /metrics",
              "GET /v2/health/live", "GET /v2/health/ready", "GET /v2",
              "GET /v2/models/{name}", "GET /v2/models/{name}/ready",
              "POST /v2/models/{name}/infer", "GET /v2/models/{name}/versions/{version}",
              "GET /v2/models/{name}/versions/{version}/ready",
              "POST /v2/models/{name}/versions/{version}/infer"]


NOTHING_INVALID = {
    # Nothing a client sends could be invalid: no input, or any text in the path.
    "GET /healthz", "GET /metrics", "GET /v2/health/live", "GET /v2/health/ready", "GET /v2",
    "GET /v2/models/{name}", "GET /v2/models/{name}/ready",
    "GET /v2/models/{name}/versions/{version}",
    "GET /v2/models/{name}/versions/{version}/ready"}


def test_every_route_is_fuzzed(tmp_path: Path) -> None:
    assert sorted(_operations(tmp_path / "o")) == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_schemathesis(schema: Any, label: str, mode: str) -> None:
    from schemathesis.checks import CHECKS, is_check_class, load_all_checks

    load_all_checks()
    operation = schema.find_operation_by_label(label)
    assert operation is not None
    if mode == "negative" and label in NOTHING_INVALID:
        assert not (operation.body or operation.query)
        return
    excluded = NOT_CHECKED_FOR.get(label, set())
    # Every check there is; response-time limits are not the document's to promise, and
    # class-based checks run on their own once enabled (they all are, by default).
    checks = [check for check in CHECKS.get_all() if not is_check_class(check)
              and getattr(check, "__name__", "") not in excluded | {"max_response_time"}]
    assert len(checks) >= 10 and "positive_data_acceptance" in CHECKS.get_all_names()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
    def run(case: Any) -> None:
        case.call_and_validate(checks=checks)

    run()
