"""Typed artifacts: each kind comes back as what was logged, verified before it is read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from flywheel._core.artifacts import ArtifactError
from flywheel.project import Project


@pytest.fixture
def project(project_dir: Path) -> Iterator[Project]:
    with Project.open(project_dir) as opened:
        yield opened


class Model:
    def __init__(self, bias: float) -> None:
        self.bias = bias

    def predict(self, rows: list[float]) -> list[float]:
        return [row + self.bias for row in rows]


def test_every_kind_round_trips(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "report"
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_text("<p>hi</p>")
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    file = tmp_path / "config.yaml"
    file.write_text("k: v\n")
    values = {
        "raw": b"\x00\x01", "config": file, "report": folder,
        "arrow": pa.table({"x": [1, 2]}), "pandas": pd.DataFrame({"x": [1.5]}, index=[7]),
        "polars": pl.DataFrame({"x": ["a"]}), "summary": {"auc": 0.9, "tags": ["a"]},
        "model": Model(2.0),
    }
    with project.start_run("train") as run:
        for name, value in values.items():
            run.log_artifact(name, value)
    kinds = {name: a.kind for name, a in project.runs.get(run.id).artifacts.items()}
    assert kinds == {"raw": "bytes", "config": "file", "report": "folder", "arrow": "arrow",
                     "pandas": "pandas", "polars": "polars", "summary": "json",
                     "model": "pickle"}

    load = project.runs.load_artifact
    assert load(run.id, "raw") == b"\x00\x01"
    assert load(run.id, "config").read_text() == "k: v\n"
    restored = load(run.id, "report", dest=tmp_path / "out")
    assert (restored / "sub" / "data.csv").read_text() == "a,b\n1,2\n"
    assert load(run.id, "arrow").equals(values["arrow"])
    pd.testing.assert_frame_equal(load(run.id, "pandas"), values["pandas"])
    assert load(run.id, "polars").equals(values["polars"])
    assert load(run.id, "summary") == {"auc": 0.9, "tags": ["a"]}
    assert load(run.id, "model").predict([1.0]) == [3.0]


def test_a_folder_stores_the_same_bytes_every_time(project: Project, tmp_path: Path) -> None:
    digests = []
    for attempt in range(2):
        folder = tmp_path / f"copy{attempt}"
        folder.mkdir()
        (folder / "b.txt").write_text("b")
        (folder / "a.txt").write_text("a")
        with project.start_run("train") as run:
            digests.append(run.log_artifact("data", folder))
    assert digests[0] == digests[1]


def test_explicit_kind_and_unknown_names(project: Project) -> None:
    with project.start_run("train") as run:
        run.log_artifact("listing", {"a": 1}, kind="pickle")
        with pytest.raises(Exception, match="has no artifact 'nope'"):
            project.runs.load_artifact(run.id, "nope")
    assert project.runs.get(run.id).artifacts["listing"].kind == "pickle"
    assert project.runs.load_artifact(run.id, "listing") == {"a": 1}


def test_tampered_model_is_never_unpickled(project: Project) -> None:
    with project.start_run("train") as run:
        digest = run.log_artifact("model", Model(1.0))
    blob = Path(project.artifacts.url) / "sha256" / digest[:2] / digest[2:]
    blob.chmod(0o644)
    blob.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle that would run a command
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        project.runs.load_artifact(run.id, "model")
