"""Two processes dispatching the same results at once fire each alert once, against SQLite
and PostgreSQL, to a real local webhook receiver."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flywheel.backends.metadata.sql import SqlMetadataStore
from tests.monitoring.alerts_support import receiver

ROOT = Path(__file__).resolve().parents[2]
DISPATCH = textwrap.dedent('''
    import datetime as dt, sys
    from flywheel.backends.metadata.sql import SqlMetadataStore
    from flywheel.monitoring.alerts import Alerts
    from flywheel.monitoring.policy import ActionSpec
    from tests.monitoring.alerts_support import result

    url, hook, go = sys.argv[1:4]
    store = SqlMetadataStore(url)
    action = ActionSpec(name="ops", kind="webhook", target=hook, cooldown=dt.timedelta(0))
    alerts = Alerts(store=store, actions={"ops": action})
    results = [result(w, subject=s) for w in range(6) for s in ("price", "age", "dataset")]
    while not __import__("pathlib").Path(go).exists():  # start together
        __import__("time").sleep(0.001)
    for _ in range(3):
        alerts.dispatch("purchase_drift", ["ops"], results)
    store.close()
''')


def _race(url: str, tmp_path: Path) -> None:
    store = SqlMetadataStore(url)
    store.migrate()
    go = tmp_path / "go"
    with receiver() as hook:
        workers = [subprocess.Popen([sys.executable, "-c", DISPATCH, url, hook.url, str(go)],
                                    cwd=ROOT, stderr=subprocess.PIPE, text=True)
                   for _ in range(2)]
        go.touch()
        for worker in workers:
            _, errors = worker.communicate(timeout=120)
            assert worker.returncode == 0, errors
        keys = sorted((b["window"]["start"], b["subject"]) for b in hook.bodies)
    assert len(keys) == 18 and len(set(keys)) == 18
    assert len({b["alert_id"] for b in hook.bodies}) == 18
    assert {a.outcome for a in store.alerts()} == {"delivered"}
    store.close()


@pytest.mark.slow
def test_two_processes_fire_once_on_sqlite(tmp_path: Path) -> None:
    _race(f"sqlite:///{tmp_path}/metadata.db", tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_fire_once_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    _race(postgres_url, tmp_path)
