"""The shop example end to end: `flywheel init --example shop`, apply, simulated traffic,
transforms, features, the training pipeline (LightGBM beats its baseline on the held-out
days) and a registered model; then `live/` goes in and apply accepts the deployment and
the monitors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel.cli.main import app
from flywheel.config import CONFIG_FILE, STATE_DIR
from flywheel.project import Project
from flywheel.scaffold import _CONFIG, example_files
from flywheel.simulate import simulate_shop
from tests.cli.conftest import assert_one_line_error
from tests.simulate.support import START

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "flywheel" / "examples" / "shop"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"FLYWHEEL_NO_PROGRESS": "1", "FLYWHEEL_PROJECT": None})


@pytest.fixture
def shop(runner: CliRunner, tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "shop"
    result = runner.invoke(app, ["init", str(target), "--example", "shop"])
    assert result.exit_code == 0, result.output
    assert "flywheel simulate" in result.stdout
    yield target


def test_init_copies_every_file_of_the_example(shop: Path) -> None:
    files = example_files("shop")
    assert "pipelines/train.py" in files and "live/deployments/purchase.yaml" in files
    for relative in files:
        assert (shop / relative).read_bytes() == (EXAMPLE / relative).read_bytes()
    # The example's flywheel.yaml is the one `flywheel init` writes.
    assert (shop / CONFIG_FILE).read_text() == (EXAMPLE / CONFIG_FILE).read_text()
    assert (EXAMPLE / CONFIG_FILE).read_text() == _CONFIG.format(name="shop", state=STATE_DIR)


def test_an_unknown_example_is_one_line_and_creates_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    line = assert_one_line_error(
        runner.invoke(app, ["init", str(tmp_path / "x"), "--example", "bakery"])
    )
    assert "no example 'bakery'; examples: shop" in line
    assert not (tmp_path / "x").exists()


def test_init_example_refuses_to_overwrite_a_file(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "x" / "pipelines").mkdir(parents=True)
    (tmp_path / "x" / "pipelines" / "train.py").write_text("mine\n")
    line = assert_one_line_error(
        runner.invoke(app, ["init", str(tmp_path / "x"), "--example", "shop"])
    )
    assert "train.py exists" in line
    assert (tmp_path / "x" / "pipelines" / "train.py").read_text() == "mine\n"
    assert not (tmp_path / "x" / CONFIG_FILE).exists()


def test_the_example_trains_a_model_that_beats_its_baseline(runner: CliRunner, shop: Path) -> None:
    applied = runner.invoke(app, ["--project", str(shop), "apply"])
    assert applied.exit_code == 0, applied.output
    with Project.open(shop) as project:
        events = list(
            simulate_shop(
                days=4, seed=1, users=3000, products=300, start=START, malformed_share=0.01
            )
        )
        result = project.ingest(events)
        assert result.rejected > 0 and result.accepted + result.rejected == len(events)
        project.transform()
        assert project.apply().features  # the views' sources exist now: checked in full
        project.features.materialize()
        run = project.run("pipelines/train.yaml")
        auc, baseline = run.output("auc"), run.output("baseline_auc")
        assert run.output("held_out_rows") > 400
        assert auc > 0.65 and auc > baseline + 0.03, (auc, baseline)
        version = project.registry.register("purchase", run_id=run.id)
        assert version.signature["feature_service"] == "purchase"
        assert version.metrics["auc"] == pytest.approx(auc)
        assert version.metrics["baseline_auc"] == pytest.approx(baseline)
        project.registry.set_alias("purchase", "champion", version=version.version)
        project.registry.set_alias("purchase", "challenger", version=version.version)
        online = project.features.get_online_features(
            feature_service="purchase",
            entities={
                "user_id": [events[0]["data"]["user_id"]],
                "product_id": [events[0]["data"]["product_id"]],
            },
        )
        assert "carts_7d" in online.columns and "price" in online.columns

        shutil.copytree(shop / "live", shop, dirs_exist_ok=True)
        report = project.apply()
        assert report.deployments == [("purchase", "shadow")]
        assert [m[0] for m in report.monitors] == [
            "purchase_drift",
            "purchase_live",
            "sessions_quality",
        ]
        project.transform()  # purchase_feedback builds, empty while nothing is served
        assert project.tables.read("purchase_feedback").num_rows == 0
        model = project.registry.load("purchase@champion")
        frame = project.features.get_historical_features(
            "select user_id, product_id, event_time as event_timestamp from training_labels"
            " limit 5",
            feature_service="purchase",
        ).to_pandas()
        assert len(model.predict(frame)) == 5
