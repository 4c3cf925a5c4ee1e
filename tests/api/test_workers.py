"""`flywheel serve --workers N`: one port, N processes, every prediction in the log once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
