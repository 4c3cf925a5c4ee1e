"""An acknowledged event survives `kill -9` at any moment, compactions included, and
re-sending stores it once.

The collector runs as a real process that compacts its log table in the background every
second commit (`ingest.compact_min_files: 2`), so a kill is likely to land inside a
compaction. Client threads post events with their own ids; beside them a separate
compactor process (`tests.log.processes compact`) compacts the same table over and over
and is killed with SIGKILL once it has finished two attempts, so it dies at an arbitrary
point of one, most likely mid-compaction. Then, after a number of acknowledgements (a
count, not a time: the test does not depend on the machine's speed), the server is killed
with SIGKILL mid-stream. This happens twice, the second time on the log the first kills
left behind. A restarted server is then sent every event again.

The log must then hold each event exactly once, acknowledged ones included; and a last
compaction must succeed on what the kills left and change no row.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from flywheel.project import Project
from tests.api.support import make_project
from tests.log.processes import (
    events,
    kill,
    lines,
    operations,
    server_url,
    start_server,
    start_worker,
    stop,
    stored_ids,
    wait_until,
)

pytestmark = pytest.mark.slow

ROUNDS = 2
THREADS = 4
BATCH = 25
ACKS_BEFORE_KILL = 2_000  # events acknowledged in a round before its server is killed
MAX_BATCHES = 2_000  # per thread: the load loop is bounded even if the kill never lands


class Load:
    """What the client threads sent and had acknowledged, shared under a lock."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.acked: list[str] = []
        self.lock = threading.Lock()

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)


@contextmanager
def collector(root: Path, log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The server in its own process on a free port; killed at the end if still running."""
    process = start_server(root, log_path)
    try:
        yield process, server_url(process, log_path)
    finally:
        kill(process)


def _load(url: str, prefix: str, stop_load: threading.Event, load: Load) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for batch_no in range(MAX_BATCHES):
            if stop_load.is_set():
                return
            ids = [f"{prefix}-{batch_no}-{i}" for i in range(BATCH)]
            with load.lock:
                load.sent.extend(ids)
            try:
                response = client.post("/v1/events", json=events(ids))
            except httpx.HTTPError:  # the server is gone
                return
            body = response.json() if response.status_code == 200 else {}
            if body.get("accepted", 0) + body.get("duplicates", 0) == BATCH:
                with load.lock:
                    load.acked.extend(ids)


def _resend(url: str, ids: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            response = client.post("/v1/events", json=events(chunk))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["accepted"] + body["duplicates"] == len(chunk)


def _round(root: Path, out: Path, number: int, load: Load) -> str:
    """Load a server while a compactor process runs beside it; SIGKILL the compactor after
    two compactions, then the server after ACKS_BEFORE_KILL more acknowledgements."""
    stop_load = threading.Event()
    compactor_out = out / f"compactor{number}.out"
    with collector(root, out / f"server{number}.log") as (server, url):
        compactor = start_worker(["compact", str(root)], compactor_out,
                                 out / f"compactor{number}.err")
        try:
            threads = [threading.Thread(target=_load,
                                        args=(url, f"r{number}t{n}", stop_load, load))
                       for n in range(THREADS)]
            started, acked_at_start = time.monotonic(), load.acked_count()
            for thread in threads:
                thread.start()
            wait_until(lambda: len(lines(compactor_out)) >= 2 or compactor.poll() is not None,
                       "two compactions by the compactor process")
            assert compactor.poll() is None, "the compactor ended before it was killed"
            compactor.send_signal(signal.SIGKILL)
            assert compactor.wait(30) == -signal.SIGKILL
            acked_at_compactor_kill = load.acked_count()
            # The server goes on acknowledging after the compactor died, then dies itself.
            wait_until(lambda: load.acked_count() >= max(
                acked_at_start + ACKS_BEFORE_KILL, acked_at_compactor_kill + 4 * BATCH)
                or not any(t.is_alive() for t in threads), f"{ACKS_BEFORE_KILL} acks")
            acked_before_kill = load.acked_count() - acked_at_start
            server.send_signal(signal.SIGKILL)
            elapsed = time.monotonic() - started
            assert server.wait(30) == -signal.SIGKILL
        finally:
            stop_load.set()
            kill(compactor)
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
    assert acked_before_kill, f"no event was acknowledged before the kill of round {number}"
    return (f"round {number}: {acked_before_kill} events acknowledged in {elapsed:.2f}s; "
            f"compactor killed after: {', '.join(lines(compactor_out))}")


def test_acknowledged_events_survive_kill_9_also_during_compaction(tmp_path: Path) -> None:
    """Kills of the server and of a compactor, then a full re-send: exactly once, and the
    table still compacts to the same rows."""
    root = tmp_path / "durable"
    make_project(root, ingest={"compact_min_files": 2}).close()
    out = tmp_path / "out"
    out.mkdir()
    load = Load()
    reports = [_round(root, out, number, load) for number in range(ROUNDS)]
    print("\n" + "\n".join(reports))
    print(f"{len(load.sent) - len(load.acked)} events sent but not acknowledged; "
          f"{operations(root).count('OPTIMIZE')} compactions committed before the restart")

    everything = list(dict.fromkeys(load.sent))
    with collector(root, out / "restarted.log") as (process, url):
        _resend(url, everything)
        assert stop(process) == 0, (out / "restarted.log").read_text()

    ids = stored_ids(root)
    counts = Counter(ids)
    lost = sorted(set(load.acked) - counts.keys())
    assert not lost, f"{len(lost)} acknowledged events are missing, e.g. {lost[:5]}"
    twice = sorted(i for i, n in counts.items() if n > 1)
    assert not twice, (f"{len(twice)} events were stored more than once "
                       f"({len(ids) - len(counts)} extra rows), e.g. {twice[:5]}")
    assert counts.keys() == set(everything)

    with Project.open(root) as project:
        project.log.compact()
    assert Counter(stored_ids(root)) == counts, "the last compaction changed the rows"
