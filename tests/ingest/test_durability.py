"""An acknowledged event survives `kill -9` of the server, and re-sending stores it once.

The collector runs as a real process; client threads post events with their own ids
under load; the server is killed with SIGKILL mid-stream, restarted, and every event is
sent again. The log must then hold each event exactly once, acknowledged ones included.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from flywheel.project import Project
from tests.helpers import page_view
from tests.serving.support import make_project

pytestmark = pytest.mark.slow

THREADS = 4
BATCH = 25
LOAD_SECONDS = 0.8
MAX_BATCHES = 2_000  # per thread: the load loop is bounded even if the kill never lands
_LISTENING = re.compile(rb"on http://127\.0\.0\.1:(\d+) ")


@contextmanager
def collector(root: Path, log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The server in its own process on a free port; killed at the end if still running."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flywheel.serving.server", "--project", str(root),
             "--port", "0"], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process, _wait_until_ready(process, log_path)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        found = _LISTENING.search(log_path.read_bytes())
        if found is not None:
            url = f"http://127.0.0.1:{int(found.group(1))}"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"the server did not start:\n{log_path.read_text(errors='replace')}")


def _load(url: str, thread_no: int, stop: threading.Event, sent: list[str],
          acked: list[str], lock: threading.Lock) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for batch_no in range(MAX_BATCHES):
            if stop.is_set():
                return
            ids = [f"t{thread_no}-{batch_no}-{i}" for i in range(BATCH)]
            events = [page_view(i, event_id=event_id) for i, event_id in enumerate(ids)]
            with lock:
                sent.extend(ids)
            try:
                response = client.post("/v1/events", json=events)
            except httpx.HTTPError:  # the server is gone
                return
            body = response.json() if response.status_code == 200 else {}
            if body.get("accepted", 0) + body.get("duplicates", 0) == BATCH:
                with lock:
                    acked.extend(ids)


def _resend(url: str, ids: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            response = client.post("/v1/events", json=[page_view(i, event_id=event_id)
                                                        for i, event_id in enumerate(chunk)])
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["accepted"] + body["duplicates"] == len(chunk)


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    root = tmp_path / "durable"
    make_project(root).close()
    sent: list[str] = []
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    with collector(root, tmp_path / "first.log") as (process, url):
        threads = [threading.Thread(target=_load, args=(url, n, stop, sent, acked, lock))
                   for n in range(THREADS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        with lock:
            acked_before_kill = len(acked)
        os.kill(process.pid, signal.SIGKILL)
        elapsed = time.monotonic() - started
        process.wait(30)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
    assert acked, "no event was acknowledged before the kill"
    print(f"\nload: {acked_before_kill} events acknowledged in {elapsed:.2f}s "
          f"({acked_before_kill / elapsed:,.0f}/s, {THREADS} clients x {BATCH} per request); "
          f"{len(sent) - len(acked)} sent but not acknowledged")

    everything = list(dict.fromkeys(sent))
    with collector(root, tmp_path / "second.log") as (process, url):
        _resend(url, everything)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0

    with Project.open(root) as project:
        ids = project.log.read("com.example/page_view", columns=["event_id"]).column(
            "event_id").to_pylist()
    counts = Counter(ids)
    assert all(counts[event_id] == 1 for event_id in acked), "an acknowledged event is missing"
    assert max(counts.values()) == 1, "an event was stored twice"
    assert len(ids) == len(set(everything))
    assert set(ids) == set(everything)
