"""Step caching: unchanged steps are not called again; a change of code, param or input
re-runs exactly the steps it reaches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flywheel.pipelines.cache import StepCache, step_key
from flywheel.pipelines.codehash import code_hash
from flywheel.pipelines.runner import PipelineRun
from flywheel.project import Project
from tests.pipelines.support import calls


@pytest.fixture
def root(project: Project) -> Path:
    return project.root


def run(project: Project, **options: Any) -> PipelineRun:
    return project.run("numbers.yaml", **options)


def statuses(result: PipelineRun) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}


def edit(root: Path, old: str, new: str) -> None:
    path = root / "pipelines" / "numbers.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_unchanged_run_calls_no_step(root: Path, project: Project) -> None:
    first = run(project)
    assert calls(root) == ["raw", "doubled", "squared", "total"]
    assert first.output("total") == 2 * 6 + 14
    second = run(project)
    assert calls(root) == []
    assert statuses(second) == dict.fromkeys(["raw", "doubled", "squared", "total"], "cached")
    assert second.output("total") == first.output("total")
    assert [s.output for s in second.steps] == [s.output for s in first.steps]


def test_a_changed_param_reruns_its_step_and_what_reads_it(root: Path, project: Project) -> None:
    run(project)
    calls(root)
    changed = run(project, params={"factor": 3})
    assert calls(root) == ["doubled", "total"]
    assert statuses(changed) == {"raw": "cached", "doubled": "ran", "squared": "cached",
                                 "total": "ran"}
    assert changed.output("total") == 3 * 6 + 14
    run(project, params={"factor": 3})
    assert calls(root) == []  # and the new value is cached in turn
    run(project)
    assert calls(root) == []  # the old one too


def test_a_param_reaching_the_root_reruns_everything(root: Path, project: Project) -> None:
    run(project)
    calls(root)
    assert run(project, params={"rows": 5}).output("total") == 2 * 10 + 30
    assert calls(root) == ["raw", "doubled", "squared", "total"]


def test_a_changed_step_reruns_itself_and_its_descendants_only(root: Path,
                                                               project: Project) -> None:
    run(project)
    calls(root)
    edit(root, "return [r * r for r in raw]", "return [r * r * 10 for r in raw]")
    changed = run(project)
    assert calls(root) == ["squared", "total"]
    assert changed.output("total") == 2 * 6 + 140


def test_comments_and_layout_do_not_count_but_a_helper_does(root: Path, project: Project) -> None:
    run(project)
    calls(root)
    edit(root, "def squared(raw: list) -> list:\n",
         "def squared(raw: list) -> list:\n    # the squares, of course\n\n")
    run(project)
    assert calls(root) == []
    edit(root, "def called(name):", "LIMIT = 10\n\n\ndef called(name):")
    run(project)
    assert calls(root) == ["raw", "doubled", "squared", "total"]


def test_the_wiring_is_not_part_of_a_steps_code(root: Path, project: Project) -> None:
    run(project)
    calls(root)
    edit(root, 'Pipeline("numbers", steps=[raw, doubled, squared, total])',
         'Pipeline("numbers", steps=[total, squared, doubled, raw])')
    run(project)
    assert calls(root) == []


def test_same_bytes_from_a_rerun_step_stop_the_reruns_there(root: Path, project: Project) -> None:
    run(project)
    calls(root)
    edit(root, "    return list(range(rows))", "    return [r for r in range(rows)]")
    changed = run(project)
    assert calls(root) == ["raw"]  # same output: its readers are still cache hits
    assert statuses(changed)["doubled"] == "cached"


def test_no_cache_calls_every_step_and_refreshes_the_entries(root: Path, project: Project) -> None:
    first = run(project)
    calls(root)
    forced = run(project, cache=False)
    assert calls(root) == ["raw", "doubled", "squared", "total"]
    assert statuses(forced) == dict.fromkeys(["raw", "doubled", "squared", "total"], "ran")
    assert [s.key for s in forced.steps] == [s.key for s in first.steps]
    run(project)
    assert calls(root) == []


def test_a_damaged_cached_output_fails_the_step_that_reads_it(root: Path,
                                                              project: Project) -> None:
    first = run(project)
    calls(root)
    stored = first.step("raw").output
    assert stored is not None
    blob = project.root / "artifacts" / "sha256" / stored.digest[:2] / stored.digest[2:]
    blob.write_bytes(blob.read_bytes() + b"tampered")
    from flywheel.pipelines import StepFailedError

    with pytest.raises(StepFailedError, match=r"step doubled failed: cannot load its inputs: "
                       r"artifact .* does not match its sha256") as info:
        run(project, params={"factor": 5})
    assert info.value.run is not None and info.value.run.status == "failed"


def test_the_cache_key_covers_code_params_inputs_and_tables() -> None:
    base = step_key("c", {"a": 1}, {"x": "d1"}, {"t": 1})
    assert base == step_key("c", {"a": 1}, {"x": "d1"}, {"t": 1})
    assert len({base, step_key("c2", {"a": 1}, {"x": "d1"}, {"t": 1}),
                step_key("c", {"a": 2}, {"x": "d1"}, {"t": 1}),
                step_key("c", {"a": 1}, {"x": "d2"}, {"t": 1}),
                step_key("c", {"a": 1}, {"x": "d1"}, {"t": 2})}) == 5


def test_code_hash_of_functions_outside_files() -> None:
    namespace: dict[str, object] = {}
    exec("def made(x):\n    return x + 1\n", namespace)  # no source file
    made = namespace["made"]
    assert callable(made)
    assert code_hash(made) == code_hash(made)
    exec("def made(x):\n    return x + 2\n", namespace)
    assert callable(namespace["made"]) and code_hash(namespace["made"]) != code_hash(made)


def test_outputs_are_typed_and_read_back_as_their_kind(project: Project,
                                                       tmp_path: Path) -> None:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    cache = StepCache(project.artifacts, tmp_path / "s")
    frame = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="key"))
    values = {"arrow": pa.table({"a": [1, 2]}), "pandas": frame,
              "polars": pl.DataFrame({"a": [1, 2]}), "pickle": {1: ("model", [1.5, 2.5])}}
    for kind, value in values.items():
        stored = cache.store("s", value)
        assert stored.kind == kind
        assert cache.store("s", value).digest == stored.digest  # deterministic bytes
        back = cache.load(stored)
        assert type(back) is type(value)
        if kind == "pandas":
            pd.testing.assert_frame_equal(back, frame)
        elif kind == "polars":
            assert back.equals(value)
        else:
            assert back == value


def test_a_pipeline_module_may_import_a_helper_module_of_the_project(project: Project) -> None:
    (project.root / "numbers_helpers.py").write_text("SCALE = 7\n")
    path = project.root / "pipelines" / "numbers.py"
    path.write_text("from numbers_helpers import SCALE\n" + path.read_text().replace(
        "return sum(doubled) + sum(squared)", "return (sum(doubled) + sum(squared)) * SCALE"))
    assert run(project).output("total") == (2 * 6 + 14) * 7
    assert run(project, executor="process", cache=False).output("total") == (2 * 6 + 14) * 7


def test_a_project_module_a_step_imports_is_part_of_its_code(project: Project) -> None:
    (project.root / "numbers_helpers.py").write_text("SCALE = 7\n")
    path = project.root / "pipelines" / "numbers.py"
    path.write_text("import numbers_helpers\n" + path.read_text().replace(
        "return sum(doubled) + sum(squared)",
        "return (sum(doubled) + sum(squared)) * numbers_helpers.SCALE"))
    assert run(project).output("total") == 26 * 7
    calls(project.root)
    assert run(project).output("total") == 26 * 7
    assert calls(project.root) == []
    (project.root / "numbers_helpers.py").write_text("SCALE = 100\n")
    assert run(project).output("total") == 26 * 100  # the edit is seen in this process too
    assert calls(project.root) == ["raw", "doubled", "squared", "total"]
