"""Pipeline modules and run specs written into a project, and what its runs recorded."""

from __future__ import annotations

import textwrap
from pathlib import Path

from flywheel.project import Project
from flywheel.tracking import RunInfo

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
SPEC = "pipeline: pipelines/numbers.py:pipeline\n"


def write_project(root: Path, steps: str = STEPS, spec: str = SPEC) -> Path:
    """pipelines/numbers.py and numbers.yaml in the project at `root`; the spec's path."""
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "pipelines" / "numbers.py").write_text(textwrap.dedent(steps))
    path = root / "numbers.yaml"
    path.write_text(spec)
    return path


def calls(root: Path) -> list[str]:
    """The steps called since the last look (and forget them)."""
    path = root / "pipelines" / "calls.txt"
    if not path.exists():
        return []
    found = path.read_text().split()
    path.unlink()
    return found


def children(project: Project, run_id: str) -> dict[str, RunInfo]:
    """The child runs of a pipeline run, by step."""
    return {r.tags["flywheel.step"]: r for r in project.runs.search(parent_id=run_id)}
