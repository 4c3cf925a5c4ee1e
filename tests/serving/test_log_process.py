"""The prediction log committed by a process of its own (what `flywheel serve` does):
every prediction once in the log after a clean close, and after the committer is killed
mid-stream (what it had not answered is sent again; the log's id index keeps each once)."""

from __future__ import annotations

import os
import pickle
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel._core.errors import FlywheelError
from flywheel.project import Project
from flywheel.serving.log_process import ProcessSink, _decode_chunk, _encode_batch
from flywheel.serving.predlog import PredictionLog
from tests.serving.support import (
    FlakyIngestorOf,
    deploy,
    logged,
    predictions,
    register_models,
    users,
    write_served_project,
)


@pytest.fixture
def serving(served: Project) -> Iterator[Project]:
    """The project opened again as a server opens it."""
    served.close()
    with Project.open(served.root) as project:
        project.log_predictions_in_a_process()
        yield project


def _committer(project: Project) -> ProcessSink:
    sink = project.deployments.prediction_log._sink
    assert isinstance(sink, ProcessSink)
    return sink


def _live_pid(sink: ProcessSink, timeout: float = 60) -> int:
    """The committer's pid, once one runs (after a death, another is being started)."""
    deadline = time.monotonic() + timeout
    while (pid := sink.pid) is None:
        assert time.monotonic() < deadline, "no committer started again"
        time.sleep(0.01)
    return pid


def test_predictions_are_committed_by_a_process_of_their_own(serving: Project) -> None:
    served = serving
    deploy(served, "purchase", "model: purchase@champion\n")
    deployment = served.deployments.get("purchase")
    committer = _committer(served).pid
    assert committer is not None and committer != os.getpid()
    ids = [r.prediction_id for _ in range(50)
           for r in deployment.predict(entities={"user_id": users(20)}).rows]
    assert all(served.deployments.known_prediction(i) for i in ids)  # on their way
    assert served.deployments.prediction_log.flush(timeout=120)
    assert served.deployments.prediction_log.committed == len(ids) == 1_000
    served.deployments.close()
    stored = Counter(r["event_id"] for r in logged(served, "dev.flywheel/prediction"))
    assert set(stored) == set(ids) and set(stored.values()) == {1}


def test_a_killed_committer_loses_nothing_and_stores_nothing_twice(serving: Project) -> None:
    served = serving
    deploy(served, "purchase", "model: purchase@champion\n")
    deployment = served.deployments.get("purchase")
    log = served.deployments.prediction_log
    sink = _committer(served)
    ids: list[str] = []
    killed: list[int] = []
    for round_ in range(40):
        ids += [r.prediction_id for r in deployment.predict(entities={"user_id": users(25)}).rows]
        if round_ in (10, 25):  # chunks sent, some committed, some not yet answered
            pid = _live_pid(sink)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(0.01)  # let chunks leave while the committer lives and dies
    assert log.flush(timeout=180)
    assert sink.pid not in killed  # a new committer took over
    served.deployments.close()
    stored = Counter(r["event_id"] for r in logged(served, "dev.flywheel/prediction"))
    assert set(stored) == set(ids) and set(stored.values()) == {1}
    assert len(ids) == 1_000


def test_the_committer_ignores_ctrl_c_and_stops_with_its_server(serving: Project) -> None:
    served = serving
    deploy(served, "purchase", "model: purchase@champion\n")
    deployment = served.deployments.get("purchase")
    sink = _committer(served)
    pid = sink.pid
    assert pid is not None
    deployment.predict(entities={"user_id": users(5)})
    assert served.deployments.prediction_log.flush(timeout=120)  # it is up and answering
    os.kill(pid, signal.SIGINT)  # a Ctrl-C in a terminal reaches the whole group
    rows = deployment.predict(entities={"user_id": users(5)}).rows
    assert served.deployments.prediction_log.flush(timeout=120)
    assert sink.pid == pid  # the same committer answered
    served.deployments.close()
    assert sink.pid is None
    stored = {r["event_id"] for r in logged(served, "dev.flywheel/prediction")}
    assert {r.prediction_id for r in rows} <= stored


def test_asking_for_a_committer_once_the_deployments_are_open_is_refused(
        served: Project) -> None:
    deploy(served, "purchase", "model: purchase@champion\n")
    served.deployments.get("purchase")
    with pytest.raises(FlywheelError, match="the deployments are open already"):
        served.log_predictions_in_a_process()
    assert not isinstance(served.deployments.prediction_log._sink, ProcessSink)


def test_the_committer_opens_the_project_as_configured_on_postgresql_metadata(
        project_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The committer is spawned: it finds the metadata (the schemas it validates against)
    # where the server does, from the same flywheel.yaml and environment.
    monkeypatch.setenv("FLYWHEEL_METADATA_URL", postgres_url)
    register_models(write_served_project(project_dir)).close()
    with Project.open(project_dir) as project:
        assert project.metadata.url.startswith("postgresql")
        project.log_predictions_in_a_process()
        deploy(project, "purchase", "model: purchase@champion\n")
        deployment = project.deployments.get("purchase")
        ids = [r.prediction_id for i in range(30)
               for r in deployment.predict(entities={"user_id": users(10, i)}).rows]
        assert isinstance(_committer(project), ProcessSink)
        assert project.deployments.prediction_log.flush(timeout=120)
        assert project.deployments.prediction_log.committed == len(ids) == 300
    with Project.open(project_dir) as again:
        stored = Counter(r["event_id"] for r in logged(again, "dev.flywheel/prediction"))
        assert set(stored) == set(ids) and set(stored.values()) == {1}


_SCALARS = (st.none() | st.booleans() | st.integers() | st.text(max_size=8)
            | st.floats(allow_nan=False))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
_EVENTS = st.lists(st.fixed_dictionaries({"event_id": st.uuids().map(str),
                                          "data": st.dictionaries(st.text(max_size=6), _VALUES,
                                                                  max_size=5)}), max_size=5)


@given(batches=st.lists(_EVENTS, min_size=1, max_size=4))
def test_a_chunk_reaches_the_committer_exactly_as_recorded(
        batches: list[list[dict[str, object]]]) -> None:
    """What the committer decodes equals what was recorded, value for value and type for
    type: MessagePack where it carries the values exactly, pickle where it cannot (an
    integer past 64 bits), batch by batch within one chunk."""
    packed = [_encode_batch(batch) for batch in batches]
    decoded = _decode_chunk(pickle.dumps(packed))
    expected = [e for batch in batches for e in batch]
    assert decoded == expected
    assert _types(decoded) == _types(expected)


def test_a_batch_messagepack_cannot_carry_is_sent_pickled() -> None:
    events = [{"event_id": "a", "data": {"big": 2**70, "f32": np.float32(0.5)}},
              {"event_id": "b", "data": {"plain": [1, 2.5, "x", None, True]}}]
    odd, plain = _encode_batch(events[:1]), _encode_batch(events[1:])
    assert odd[:1] == b"p" and plain[:1] == b"m"
    decoded = _decode_chunk(pickle.dumps([odd, plain]))
    assert decoded == events
    assert type(decoded[0]["data"]["f32"]) is np.float32


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


def test_the_committer_tries_a_failed_commit_again(served: Project) -> None:
    """The log's storage is away for two commits: the committer tries again after a wait
    and every prediction is stored once."""
    log = PredictionLog(sink=ProcessSink(opener=FlakyIngestorOf(str(served.root), 2)),
                        interval_ms=10)
    events = predictions(200)
    log.record(events[:100])
    log.record(events[100:])
    log.close()
    assert (log.committed, log.rejected) == (200, 0)
    stored = Counter(r["event_id"] for r in logged(served, "dev.flywheel/prediction"))
    assert stored == Counter(e["event_id"] for e in events)
