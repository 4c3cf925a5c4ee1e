"""`flywheel apply` checks the deployments against the registry and registers the shipped
prediction and feedback schemas in every project."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from flywheel.cli.main import app
from flywheel.project import Project
from tests.cli.conftest import assert_one_line_error
from tests.serving.support import deploy


def apply(project: Project) -> Result:
    runner = CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "COLUMNS": "200",
                            "FLYWHEEL_PROJECT": None})
    return runner.invoke(app, ["--project", str(project.root), "apply"])


def test_apply_lists_the_deployments_and_the_shipped_schemas(served: Project) -> None:
    deploy(served, "purchase", "model: purchase@champion\n")
    result = apply(served)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "purchase" in out and "single" in out and "deployments" in out
    assert "iglu:dev.flywheel/prediction/jsonschema/1-0-0" in out
    assert "dev.flywheel/feedback/v1" in out
    report = served.apply()
    assert report.deployments == [("purchase", "single")]


@pytest.mark.parametrize(("text", "words"), [
    ("model: purchase@champion\nreplicas: 2\n", "deployments/bad.yaml: unknown key 'replicas'"),
    ("model: purchase@gold\n", "deployments/bad.yaml: member purchase: model 'purchase' has "
     "no alias 'gold'"),
    ("model: nothing@champion\n", "deployments/bad.yaml: member nothing: model 'nothing' has "
     "no alias 'champion'"),
    ("policy: weighted\nmembers:\n  - {name: a, model: purchase@champion, weight: 0.5}\n"
     "  - {name: b, model: spend@champion, weight: 0.5}\n", "weighted members must all be"),
    ("policy: stacking\nmeta_model: purchase@challenger\nmembers:\n"
     "  - {name: a, model: purchase@champion}\n",
     "the meta-model purchase@challenger reads pages, seconds, which are not the members' "
     "outputs"),
    ("model: purchase@champion\ndefaults: {colour: 1}\n", "defaults name colour"),
])
def test_a_bad_deployment_fails_apply_in_one_line(served: Project, text: str,
                                                  words: str) -> None:
    deploy(served, "bad", text)
    line = assert_one_line_error(apply(served))
    assert words in line, line
