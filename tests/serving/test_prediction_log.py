"""The prediction log: every prediction once in the log after a clean close, and feedback
checked against it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from flywheel._core.errors import InputError
from flywheel.project import Project
from flywheel.serving import UnknownPredictionError
from flywheel.serving.events import PREDICTION_TABLE
from tests.serving.support import deploy, logged, users


def test_ten_thousand_predictions_are_all_logged_exactly_once(served: Project) -> None:
    deploy(served, "purchase", "model: purchase@champion\nbatching: {max_batch_size: 32}\n")
    deployment = served.deployments.get("purchase")

    async def send() -> list[str]:
        async def one(i: int) -> list[str]:
            batch = await deployment.predict_async(entities={"user_id": users(1, i)})
            return [r.prediction_id for r in batch.rows]

        ids: list[str] = []
        for start in range(0, 9_000, 500):  # 500 requests in flight at a time
            for found in await asyncio.gather(*(one(i) for i in range(start, start + 500))):
                ids += found
        return ids

    ids = asyncio.run(send())
    ids += [r.prediction_id for _ in range(10)
            for r in deployment.predict(entities={"user_id": users(100)}).rows]
    assert len(ids) == len(set(ids)) == 10_000
    served.deployments.close()
    stored = Counter(r["event_id"] for r in logged(served, "dev.flywheel/prediction"))
    assert set(stored) == set(ids) and set(stored.values()) == {1}
    receipts = {(r.table, r.door): r for r in served.log.receipts()}
    assert receipts[("dev.flywheel/prediction/v1", "predict")].accepted == 10_000


def test_feedback_needs_a_known_prediction(served: Project) -> None:
    deploy(served, "purchase", "model: purchase@champion\n")
    row = served.deployments.get("purchase").predict(entities={"user_id": ["u1"]}).rows[0]
    # At once, while the prediction may still be on its way to the log.
    result = served.deployments.record_feedback(prediction_id=row.prediction_id, outcome=1,
                                                time="2026-05-01T10:00:00Z")
    assert result.accepted == 1
    with pytest.raises(UnknownPredictionError, match="no prediction 'made-up'") as caught:
        served.deployments.record_feedback(prediction_id="made-up", outcome=1)
    assert caught.value.http_status == 404
    with pytest.raises(InputError, match="outcome 'yes' is not a number"):
        served.deployments.record_feedback(prediction_id=row.prediction_id, outcome="yes")  # type: ignore[arg-type]
    served.close()
    with Project.open(served.root) as again:  # committed: the log's id index knows it
        assert again.deployments.known_prediction(row.prediction_id)
        again.deployments.record_feedback(prediction_id=row.prediction_id, outcome=0,
                                          source="returns")
        feedback = logged(again, "dev.flywheel/feedback")
    feedback.sort(key=lambda f: f["event_time"])
    assert [(f["prediction_id"], f["outcome"], f["source"]) for f in feedback] == [
        (row.prediction_id, 1.0, "api"), (row.prediction_id, 0.0, "returns")]
    assert feedback[0]["event_time"].isoformat() == "2026-05-01T10:00:00+00:00"


def test_a_prediction_committed_by_another_process_is_known(served: Project) -> None:
    deploy(served, "purchase", "model: purchase@champion\n")
    with Project.open(served.root) as other:  # its own id index view and writer
        row = other.deployments.get("purchase").predict(entities={"user_id": ["u2"]}).rows[0]
    assert served.deployments.known_prediction(row.prediction_id)
    logged_row = next(r for r in logged(served, "dev.flywheel/prediction")
                      if r["event_id"] == row.prediction_id)
    assert json.loads(logged_row["outputs"]) == row.outputs


def test_predictions_of_a_quiet_server_share_commits(served: Project) -> None:
    """One request at a time still gives few commits: predictions gather for a log
    interval instead of each being a commit of its own."""
    deploy(served, "purchase", "model: purchase@champion\n")
    deployment = served.deployments.get("purchase")
    log = served.deployments.prediction_log
    before = served.log_store.handle(PREDICTION_TABLE).version()
    ids = [deployment.predict(entities={"user_id": ["u1"]}).rows[0].prediction_id
           for _ in range(40)]
    assert log.flush(timeout=60)
    after = served.log_store.handle(PREDICTION_TABLE).version()
    commits = (after or 0) - (before if before is not None else -1)
    assert 1 <= commits < 20  # one per prediction would be 40
    assert {r["event_id"] for r in logged(served, "dev.flywheel/prediction")} >= set(ids)


def test_flush_does_not_wait_out_the_interval(served: Project) -> None:
    deploy(served, "purchase", "model: purchase@champion\n")
    deployment = served.deployments.get("purchase")
    served.deployments.prediction_log._interval = 600.0  # ten minutes of gathering
    row = deployment.predict(entities={"user_id": ["u1"]}).rows[0]
    assert served.deployments.prediction_log.flush(timeout=60)  # long before ten minutes
    assert row.prediction_id in {r["event_id"] for r in logged(served, "dev.flywheel/prediction")}
