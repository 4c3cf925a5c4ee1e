"""Steps are plain functions; a pipeline wires them by name and refuses what cannot run."""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.pipelines import Pipeline, PipelineError, Resources, step
from flywheel.pipelines.dag import DEFAULT, INPUT, PARAM, STEP, Binding
from flywheel.pipelines.steps import Step, parse_bytes


def raw(rows: int = 3) -> list[int]:
    return list(range(rows))


def doubled(raw: list[int], factor: int = 2) -> list[int]:
    return [r * factor for r in raw]


@step(resources={"cpus": 2, "memory": "1.5GB"})
def total(doubled: list[int], raw: list[int], offset: float) -> float:
    return sum(doubled) + sum(raw) + offset


def test_a_step_is_the_function_itself_callable_without_flywheel() -> None:
    assert total([2, 4], [1, 2], offset=0.5) == 9.5
    assert Step.of(total).resources == Resources(cpus=2.0, memory=1_500_000_000, gpus=0)
    assert Step.of(raw).resources == Resources()


def test_steps_are_wired_by_parameter_name_in_dependency_order() -> None:
    pipeline = Pipeline("p", steps=[total, doubled, raw])
    assert pipeline.order == ["raw", "doubled", "total"]
    plan = pipeline.plan({"offset": 1.0, "rows": 5})
    assert plan.steps["total"].bindings == {"doubled": Binding(STEP, "doubled"),
                                            "raw": Binding(STEP, "raw"),
                                            "offset": Binding(PARAM, "offset")}
    assert plan.steps["doubled"].bindings["factor"] == Binding(DEFAULT, "factor")
    assert plan.steps["doubled"].params == {"factor": 2}
    assert plan.steps["raw"].params == {"rows": 5}
    assert plan.downstream({"doubled"}) == {"doubled", "total"}


def test_a_run_input_binds_before_params() -> None:
    def fit(training_set: Any, alpha: float = 1.0) -> Any:
        return training_set

    plan = Pipeline("p", steps=[fit]).plan({}, {"training_set"})
    assert plan.steps["fit"].bindings["training_set"] == Binding(INPUT, "training_set")
    assert plan.steps["fit"].inputs == ["training_set"]


def test_a_cycle_is_one_line_naming_it() -> None:
    def a(b: int) -> int:
        return b

    def b(c: int) -> int:
        return c

    def c(a: int) -> int:
        return a

    with pytest.raises(PipelineError, match=r"steps form a cycle: (\w -> ){3}\w —") as info:
        Pipeline("loop", steps=[a, b, c])
    assert "\n" not in str(info.value)
    cycle = str(info.value).split(": ")[-1].split(" — ")[0].split(" -> ")
    assert cycle == ["a", "c", "b", "a"]  # data flows a -> c -> b -> a


def test_a_step_reading_itself_is_a_cycle() -> None:
    def again(again: int) -> int:
        return again

    with pytest.raises(PipelineError, match="cycle: again -> again"):
        Pipeline("p", steps=[again])


def test_a_missing_input_names_the_step_and_the_parameter() -> None:
    with pytest.raises(PipelineError, match=r"step total: input 'offset' is not a step, a run "
                       r"input or a param — set it with --param offset=\.\.\."):
        Pipeline("p", steps=[raw, doubled, total]).plan({})


def test_a_missing_training_set_says_to_add_training_data() -> None:
    def fit(training_set: Any) -> Any:
        return training_set

    with pytest.raises(PipelineError, match="add training_data to the run spec"):
        Pipeline("p", steps=[fit]).plan({})


def test_an_unknown_param_is_refused_and_the_known_ones_listed() -> None:
    with pytest.raises(PipelineError, match=r"unknown param\(s\) ofset: no step of p takes "
                       "them — params are factor, offset, rows"):
        Pipeline("p", steps=[raw, doubled, total]).plan({"offset": 1.0, "ofset": 2})


def test_a_param_or_input_may_not_shadow_a_step() -> None:
    pipeline = Pipeline("p", steps=[raw, doubled])
    with pytest.raises(PipelineError, match="param 'raw' has the name of a step"):
        pipeline.plan({"raw": [1]})
    with pytest.raises(PipelineError, match="input 'raw' has the name of a step"):
        pipeline.plan({}, {"raw"})


def test_two_steps_of_one_name_are_refused() -> None:
    renamed = step(name="raw")(lambda: 1)
    with pytest.raises(PipelineError, match="two steps are named 'raw'"):
        Pipeline("p", steps=[raw, renamed])


def test_steps_need_plain_named_parameters() -> None:
    def star(*rows: int) -> int:
        return len(rows)

    def keywords(**rows: int) -> int:
        return len(rows)

    for bad in (star, keywords):
        with pytest.raises(PipelineError, match="must be a plain named parameter"):
            Pipeline("p", steps=[bad])
    with pytest.raises(PipelineError, match="needs a name that is a Python identifier"):
        Pipeline("p", steps=[lambda: 1])
    with pytest.raises(PipelineError, match="has no steps"):
        Pipeline("p", steps=[])
    with pytest.raises(PipelineError, match="is not a function"):
        Pipeline("p", steps=[42])  # type: ignore[list-item]


def test_params_are_checked_against_simple_annotations() -> None:
    pipeline = Pipeline("p", steps=[raw, doubled, total])
    plan = pipeline.plan({"offset": 2})  # an int where a float is wanted: becomes 2.0
    assert plan.steps["total"].params == {"offset": 2.0}
    assert isinstance(plan.steps["total"].params["offset"], float)
    with pytest.raises(PipelineError, match=r"param rows of step raw is \"3\" \(str\), not int"):
        pipeline.plan({"offset": 1.0, "rows": "3"})
    with pytest.raises(PipelineError, match=r"param rows of step raw is true \(bool\), not int"):
        pipeline.plan({"offset": 1.0, "rows": True})


def test_resources_are_parsed_and_checked() -> None:
    assert parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("4GB") == 4 * 10**9
    assert parse_bytes(" 2 k ") == 2000
    assert parse_bytes(1024) == 1024
    with pytest.raises(PipelineError, match="'lots' is not a size"):
        parse_bytes("lots")
    with pytest.raises(PipelineError, match="unknown resource"):
        Resources.of({"cores": 2})
    with pytest.raises(PipelineError, match="cpus must be a positive number"):
        Resources.of({"cpus": 0})
    with pytest.raises(PipelineError, match="gpus must be a whole number"):
        Resources.of({"gpus": 1.5})
