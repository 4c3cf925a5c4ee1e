"""`flywheel serve --workers N`: one port, N processes, every prediction in the log once."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from flywheel.project import Project
from tests.api.serving import logged_ids, models_project, serve_process, stop

pytestmark = pytest.mark.slow


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_two_workers_log_every_prediction_once(tmp_path: Path) -> None:
    models_project(tmp_path / "p").close()
    with serve_process(tmp_path / "p", "--workers", "2") as (url, process):
        def send(i: int) -> list[str]:
            # A connection per request: the kernel spreads them over both workers.
            answer = httpx.post(f"{url}/v1/models/purchase/predict",
                                json={"entities": {"user_id": [f"u{i % 40}",
                                                               f"u{(i + 1) % 40}"]}},
                                timeout=30)
            assert answer.status_code == 200, answer.text
            return [p["prediction_id"] for p in answer.json()["predictions"]]

        with ThreadPoolExecutor(8) as pool:
            answered = [pid for ids in pool.map(send, range(150)) for pid in ids]
        scrapes = [httpx.get(f"{url}/metrics", timeout=30).text for _ in range(4)]
        stop(process)
    assert len(answered) == 300 == len(set(answered))
    # Every scrape, whichever worker answered it, counts the rows both workers scored.
    for text in scrapes:
        assert _metric(text, "flywheel_predictions_total", deployment="purchase") == 300
        assert _metric(text, "flywheel_predict_requests_total", deployment="purchase") == 150
    with Project.open(tmp_path / "p") as project:
        logged = logged_ids(project)
    assert sorted(logged) == sorted(answered)


def _sender(url: str) -> tuple[http.client.HTTPConnection, Callable[[str], dict[str, Any]]]:
    """A keep-alive connection and a function sending one entity's prediction over it."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)

    def send(user: str) -> dict[str, Any]:
        body = json.dumps({"entities": {"user_id": [user]}})
        connection.request("POST", "/v1/models/purchase/predict", body,
                           {"Content-Type": "application/json"})
        answer = connection.getresponse()
        data = answer.read()
        assert answer.status == 200, data
        row: dict[str, Any] = json.loads(data)["predictions"][0]
        return row

    return connection, send


def test_ten_thousand_predictions_are_all_in_the_log(tmp_path: Path) -> None:
    models_project(tmp_path / "p").close()
    with serve_process(tmp_path / "p") as (url, process):
        def client(start: int) -> list[str]:
            connection, send = _sender(url)
            try:
                return [send(f"u{i % 40}")["prediction_id"] for i in range(start, start + 2_500)]
            finally:
                connection.close()

        with ThreadPoolExecutor(4) as pool:
            answered = [pid for ids in pool.map(client, range(0, 10_000, 2_500)) for pid in ids]
        stop(process)
    assert len(set(answered)) == 10_000
    with Project.open(tmp_path / "p") as project:
        logged = logged_ids(project)
    assert len(logged) == 10_000 and set(logged) == set(answered)


def test_moving_the_alias_under_load_fails_nothing(tmp_path: Path) -> None:
    models_project(tmp_path / "p").close()
    with serve_process(tmp_path / "p") as (url, _):
        moved = threading.Event()
        done = threading.Event()
        seen: list[tuple[float, float, int]] = []  # (sent, answered, version)
        failures: list[BaseException] = []

        def client(index: int) -> None:
            connection, send = _sender(url)
            try:
                while not done.is_set():
                    sent = time.monotonic()
                    version = send(f"u{index}")["version"]
                    seen.append((sent, time.monotonic(), version))
            except BaseException as exc:  # counted: the test wants none
                failures.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 60
            while len(seen) < 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            with Project.open(tmp_path / "p") as project:
                project.registry.set_alias("purchase", "champion", version=2)
            moved.set()
            while time.monotonic() < deadline:  # until the new version answered for a second
                switched = [answered for _, answered, v in seen if v == 2]
                if switched and time.monotonic() - switched[0] > 1.0:
                    break
                time.sleep(0.05)
        finally:
            done.set()
            for thread in threads:
                thread.join(30)
    assert not failures, failures[:3]
    assert {v for *_, v in seen} == {1, 2}
    switch = min(answered for _, answered, v in seen if v == 2)
    after = [v for sent, _, v in seen if sent > switch]
    assert after and set(after) == {2}
