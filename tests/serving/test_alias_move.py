"""Moving an alias while threads predict: nothing fails, and once a response names the new
version, every request started after it does too."""

from __future__ import annotations

import threading
import time

from flywheel.project import Project
from tests.serving.support import deploy, users


def test_an_alias_moves_under_load_without_a_failure(served: Project) -> None:
    deploy(served, "purchase", "model: purchase@champion\n")
    deployment = served.deployments.get("purchase")
    answers: list[tuple[float, float, int]] = []  # (started, finished, version)
    failures: list[BaseException] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                rows = deployment.predict(entities={"user_id": users(2, offset)}).rows
            except BaseException as exc:
                failures.append(exc)
                continue
            answers.extend((started, time.monotonic(), r.version) for r in rows)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 5
        while not answers and time.monotonic() < deadline:
            time.sleep(0.01)
        served.registry.set_alias("purchase", "champion", version=2, reason="test")
        moved_at = time.monotonic()
        switched = None
        deadline = moved_at + 10
        while switched is None and time.monotonic() < deadline:
            switched = min((done for _, done, v in list(answers) if v == 2), default=None)
            time.sleep(0.01)
        assert switched is not None, "no response named version 2 within 10 s"
        assert switched - moved_at < 3  # every process switches within a couple of seconds
        deadline = time.monotonic() + 10
        while (sum(started > switched for started, _, _ in list(answers)) < 100
               and time.monotonic() < deadline):  # keep sending after the switch
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    after = [v for started, _, v in answers if started > switched]
    assert after and set(after) == {2}
    assert {v for _, _, v in answers} == {1, 2}
    assert deployment.members[0].version == 2
