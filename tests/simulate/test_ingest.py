"""Simulated events through the real doors: the SDK's ingest, and `flywheel simulate --url`
against a served collector. Every malformed event is a bad row with the right reason."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel._core.errors import InputError
from flywheel.api.app import create_app
from flywheel.cli.main import app
from flywheel.project import Project
from flywheel.scaffold import init_project
from flywheel.simulate import EXPECTED_REASON, post_events, simulate_shop
from tests.api.support import live_server
from tests.cli.conftest import assert_one_line_error
from tests.simulate.support import START, malformation


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Project]:
    project = Project.open(init_project(tmp_path / "shop", example="shop"))
    project.apply()
    yield project
    project.close()


def test_malformed_events_become_bad_rows_with_their_reason(shop: Project) -> None:
    events = list(
        simulate_shop(days=1, seed=11, users=1000, products=50, start=START, malformed_share=0.1)
    )
    result = shop.ingest(events)
    broken = {i: malformation(e) for i, e in enumerate(events) if malformation(e)}
    assert len(broken) > 50 and set(broken.values()) == set(EXPECTED_REASON)
    assert result.accepted == len(events) - len(broken)
    assert result.rejected == len(broken)
    reasons = {error.index: error.reason for error in result.errors}
    assert reasons == {i: EXPECTED_REASON[kind] for i, kind in broken.items()}
    bad = shop.log.bad_rows()
    assert Counter(bad.column("reason").to_pylist()) == Counter(
        EXPECTED_REASON[kind] for kind in broken.values()
    )


def test_the_same_seed_sent_twice_stores_nothing_twice(shop: Project) -> None:
    events = list(simulate_shop(days=1, seed=12, users=100, products=20, start=START))
    assert shop.ingest(events).accepted == len(events)
    again = shop.ingest(list(simulate_shop(days=1, seed=12, users=100, products=20, start=START)))
    assert again.accepted == 0 and again.duplicates == len(events)


def test_post_events_batches_to_a_served_collector(shop: Project) -> None:
    events = list(
        simulate_shop(days=1, seed=13, users=400, products=50, start=START, malformed_share=0.05)
    )
    seen: list[int] = []
    with live_server(create_app(shop)) as url:
        report = post_events(events, url, batch_size=500, on_progress=seen.append)
    broken = sum(1 for e in events if malformation(e))
    assert report.sent == len(events)
    assert (report.accepted, report.rejected) == (len(events) - broken, broken)
    assert seen == [min(n, len(events)) for n in range(500, len(events) + 500, 500)]
    assert len(shop.log.bad_rows()) == broken


def test_as_a_snowplow_tracker_the_same_events_arrive(shop: Project, tmp_path: Path) -> None:
    events = list(
        simulate_shop(days=1, seed=5, users=300, products=40, start=START, malformed_share=0.05)
    )
    with live_server(create_app(shop)) as url:
        report = post_events(events, url, batch_size=400, protocol="snowplow")
    broken = [e for e in events if malformation(e)]
    assert (report.accepted, report.rejected) == (len(events) - len(broken), len(broken))
    reasons = Counter(shop.log.bad_rows().column("reason").to_pylist())
    assert reasons == Counter(EXPECTED_REASON[malformation(e)] for e in broken)
    stored = {}
    for kind in ("page_view", "add_to_cart", "purchase"):
        rows = shop.log.read(f"com.flywheel.shop/{kind}").to_pylist()
        stored.update({r["event_id"]: r for r in rows})
    sent = {e["event_id"]: e for e in events if not malformation(e)}
    assert stored.keys() == sent.keys()
    for event_id, event in sent.items():
        row = stored[event_id]
        assert row["user_id"] == event["data"]["user_id"]
        # Trackers send milliseconds.
        sent_at = dt.datetime.fromisoformat(event["event_time"])
        assert abs((row["event_time"] - sent_at).total_seconds()) < 0.001


def test_simulate_url_posts_and_summarises(shop: Project) -> None:
    runner = CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "FLYWHEEL_PROJECT": None})
    with live_server(create_app(shop)) as url:
        result = runner.invoke(
            app,
            [
                "simulate",
                "--days",
                "1",
                "--users",
                "200",
                "--start",
                "2026-01-01",
                "--malformed-share",
                "0.05",
                "--url",
                url,
            ],
        )
    assert result.exit_code == 0, result.output
    # The project's bad-rows alert may warn too: a 5% malformed share is above its threshold.
    [told] = [line for line in result.stderr.splitlines() if line.startswith("collector: ")]
    assert "rejected (in bad rows)" in told
    assert result.stderr.strip().splitlines()[-1].startswith("simulated ")
    accepted = int(told.split()[1].replace(",", ""))
    tables = [t for t in shop.log.tables() if "flywheel.shop" in str(t)]
    assert accepted == sum(shop.log.read(str(t), columns=["event_id"]).num_rows for t in tables)


def test_simulate_url_that_answers_nothing_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runner = CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1"})
    result = runner.invoke(
        app, ["simulate", "--days", "1", "--users", "10", "--url", f"http://127.0.0.1:{port}"]
    )
    assert "cannot reach the collector" in assert_one_line_error(result)


def test_simulate_url_sends_the_token_a_secured_collector_asks_for(shop: Project) -> None:
    token = shop.tokens.create("simulator", scopes=["ingest"])
    runner = CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "FLYWHEEL_PROJECT": None})
    args = ["simulate", "--days", "1", "--users", "50", "--start", "2026-01-01"]
    with live_server(create_app(shop, require_tokens=True)) as url:
        refused = runner.invoke(app, [*args, "--url", url])
        wrong = runner.invoke(app, [*args, "--url", url, "--token", "nope"])
        sent = runner.invoke(app, [*args, "--url", url, "--token", token])
    assert "answered 401" in assert_one_line_error(refused)
    assert "answered 401" in assert_one_line_error(wrong)
    assert sent.exit_code == 0, sent.output
    assert "collector: " in sent.stderr and " 0 rejected" in sent.stderr


def test_an_unknown_protocol_is_one_line_and_sends_nothing() -> None:
    runner = CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1"})
    result = runner.invoke(app, ["simulate", "--days", "1", "--users", "10", "--url",
                                 "http://127.0.0.1:9", "--protocol", "pigeon"])
    assert "--protocol 'pigeon': one of flywheel, snowplow" in assert_one_line_error(result)
    with pytest.raises(InputError, match="unknown protocol"):
        post_events([], "http://127.0.0.1:9", protocol="pigeon")
