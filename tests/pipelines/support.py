"""A pipeline project on disk, and a small stand-in for experiment tracking."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel._core.artifacts import ArtifactStore
from flywheel._core.registry import resolve
from flywheel.pipelines.launch import Services

_ids = itertools.count(1)


@dataclass
class FakeRun:
    name: str
    parent_id: str | None
    tags: dict[str, str]
    id: str = field(default_factory=lambda: f"run{next(_ids):04d}")
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, int] = field(default_factory=dict)
    status: str = "running"

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        self.metrics.update(metrics)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.tags.update(tags)

    def log_artifact(self, name: str, value: Any, *, kind: str | None = None) -> str:
        raise NotImplementedError

    def log_inputs(self, table_versions: Mapping[str, int]) -> None:
        self.inputs.update(table_versions)

    def finish(self, status: str = "finished") -> None:
        self.status = status


@dataclass
class FakeTracking:
    runs: list[FakeRun] = field(default_factory=list)

    def start_run(self, name: str, *, parent_id: str | None = None,
                  tags: Mapping[str, str] | None = None) -> FakeRun:
        run = FakeRun(name, parent_id, dict(tags or {}))
        self.runs.append(run)
        return run

    def children(self, parent_id: str) -> dict[str, FakeRun]:
        return {r.tags["flywheel.step"]: r for r in self.runs if r.parent_id == parent_id}


def artifact_store(folder: Path) -> ArtifactStore:
    url = str(folder)
    return ArtifactStore(resolve("artifacts", url)(url), folder.parent / "scratch")


def services(root: Path, tracking: FakeTracking, features: Any = None) -> Services:
    return Services(root, artifact_store(root / "artifacts"), root / ".flywheel" / "tmp",
                    tracking.start_run, lambda: features)


STEPS = '''
from pathlib import Path

from flywheel.pipelines import Pipeline, step

CALLS = Path(__file__).parent / "calls.txt"


def called(name):
    with CALLS.open("a") as handle:
        handle.write(name + "\\n")


def raw(rows: int = 4) -> list:
    called("raw")
    return list(range(rows))


def doubled(raw: list, factor: int = 2) -> list:
    called("doubled")
    return [r * factor for r in raw]


def squared(raw: list) -> list:
    called("squared")
    return [r * r for r in raw]


@step(resources={"cpus": 1})
def total(doubled: list, squared: list) -> int:
    called("total")
    return sum(doubled) + sum(squared)


pipeline = Pipeline("numbers", steps=[raw, doubled, squared, total])
'''


def write_project(root: Path, steps: str = STEPS, spec: str | None = None) -> Path:
    """A folder with pipelines/numbers.py and numbers.yaml; returns the spec's path."""
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "pipelines" / "numbers.py").write_text(textwrap.dedent(steps))
    path = root / "numbers.yaml"
    path.write_text(spec or "pipeline: pipelines/numbers.py:pipeline\n")
    return path


def calls(root: Path) -> list[str]:
    """The steps called since the last look (and forget them)."""
    path = root / "pipelines" / "calls.txt"
    if not path.exists():
        return []
    found = path.read_text().split()
    path.unlink()
    return found
