"""The bandit policy: traffic follows live performance, with a floor so no member starves.

Thompson sampling keeps a Beta posterior of each member's success rate (an outcome in
[0, 1] counts as that fraction of a success); epsilon-greedy sends the member with the
best mean reward all traffic but a random `epsilon`. Either way a share `floor x members`
of the requests is spread evenly, so every member keeps at least `floor`. The state is
what the log says: predictions joined to their latest feedback, read again on start.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np

from flywheel.serving.spec import BanditSpec

__all__ = ["Bandit"]


class Bandit:
    def __init__(self, *, spec: BanditSpec, members: Sequence[str],
                 seed: int | None = None) -> None:
        self._spec = spec
        self._members = list(members)
        self._index = {m: i for i, m in enumerate(self._members)}
        self._count = np.zeros(len(self._members))
        self._reward = np.zeros(len(self._members))
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    @property
    def members(self) -> list[str]:
        return list(self._members)

    def reset(self, stats: Mapping[str, tuple[int, float]]) -> None:
        """Start over from (feedback count, summed outcome) per member."""
        with self._lock:
            self._count[:] = 0
            self._reward[:] = 0
            for member, (count, total) in stats.items():
                if member in self._index:
                    self._count[self._index[member]] = count
                    self._reward[self._index[member]] = total

    def observe(self, member: str, outcome: float) -> None:
        index = self._index.get(member)
        if index is None:
            return
        with self._lock:
            self._count[index] += 1
            self._reward[index] += self._clipped(outcome)

    def _clipped(self, outcome: float) -> float:
        if self._spec.algorithm == "thompson":
            return min(max(float(outcome), 0.0), 1.0)
        return float(outcome)

    def stats(self) -> dict[str, tuple[int, float]]:
        with self._lock:
            return {m: (int(self._count[i]), float(self._reward[i]))
                    for i, m in enumerate(self._members)}

    def choose(self, count: int) -> list[int]:
        """A member (index) for each of `count` requests."""
        arms = len(self._members)
        with self._lock:
            explore = arms * self._spec.floor
            if self._spec.algorithm == "thompson":
                wins = self._reward + 1.0
                losses = self._count - self._reward + 1.0
                draws = self._rng.beta(wins[:, None], losses[:, None], size=(arms, count))
                best = draws.argmax(axis=0)
            else:
                explore = max(explore, self._spec.epsilon)
                means = np.where(self._count > 0, self._reward / np.maximum(self._count, 1),
                                 np.inf)  # an untried member is tried first
                best = np.full(count, int(means.argmax()))
            spread = self._rng.random(count) < explore
            uniform = self._rng.integers(0, arms, size=count)
        return np.where(spread, uniform, best).tolist()  # type: ignore[no-any-return]

    def shares(self, samples: int = 20_000) -> dict[str, float]:
        """The expected share of traffic of each member now (estimated by sampling)."""
        chosen = np.bincount(np.asarray(self.choose(samples)), minlength=len(self._members))
        return {m: float(chosen[i]) / samples for i, m in enumerate(self._members)}
