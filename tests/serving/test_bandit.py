"""The bandit: traffic moves to the better member as feedback arrives, never below the
floor, and the state is read back from the log after a restart."""

from __future__ import annotations

import random

import pytest

from flywheel.project import Project
from flywheel.serving.bandit import Bandit
from flywheel.serving.spec import BanditSpec
from tests.serving.support import deploy, users

SUCCESS = {"good": 0.9, "bad": 0.2}


def spec(algorithm: str) -> str:
    extra = ", epsilon: 0.1" if algorithm == "epsilon_greedy" else ""
    return (f"policy: bandit\nbandit: {{algorithm: {algorithm}, floor: 0.05{extra}}}\n"
            "members:\n  - {name: good, model: purchase@champion}\n"
            "  - {name: bad, model: purchase@challenger}\n")


@pytest.mark.parametrize("algorithm", ["thompson", "epsilon_greedy"])
def test_shares_follow_feedback_and_survive_a_restart(served: Project, algorithm: str) -> None:
    deploy(served, "bandit", spec(algorithm))
    deployment = served.deployments.get("bandit")
    assert deployment.bandit is not None
    before = deployment.bandit.shares()
    assert 0.3 < before["good"] < 0.7  # nothing known yet: an even split
    rng = random.Random(11)
    for _ in range(30):
        for row in deployment.predict(entities={"user_id": users(10)}).rows:
            outcome = float(rng.random() < SUCCESS[row.member])
            served.deployments.record_feedback(prediction_id=row.prediction_id,
                                               outcome=outcome)
    after = deployment.bandit.shares()
    assert after["good"] > 0.85 and after["bad"] >= 0.05 * 0.8
    learned = deployment.bandit.stats()
    assert sum(n for n, _ in learned.values()) == 300
    served.close()  # the process ends; a new one reads the state back from the log
    with Project.open(served.root) as again:
        restarted = again.deployments.get("bandit").bandit
        assert restarted is not None and restarted.stats() == learned
        assert restarted.shares()["good"] > 0.85


@pytest.mark.parametrize("algorithm", ["thompson", "epsilon_greedy"])
def test_the_floor_keeps_a_losing_member_alive(algorithm: str) -> None:
    bandit = Bandit(spec=BanditSpec(algorithm=algorithm, floor=0.1, epsilon=0.0),
                    members=["a", "b", "c"], seed=5)
    bandit.reset({"a": (10_000, 9_000.0), "b": (10_000, 100.0), "c": (10_000, 50.0)})
    chosen = bandit.choose(30_000)
    for arm in (1, 2):  # each at least its floor: 10% of 30,000 less 5 sigma
        assert chosen.count(arm) > 3_000 - 5 * (30_000 * 0.1 * 0.9) ** 0.5
    assert chosen.count(0) > 0.75 * 30_000
