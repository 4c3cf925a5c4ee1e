"""A pipeline: steps wired by name into a DAG, and the plan of one run.

Each parameter of a step is bound, in this order, to the output of the step of that name,
to a run input (`training_set`), to a param of the run, or to its own default value;
anything else is a missing input. A param that no step takes is an error too, so a typo
in `--param` never goes unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any

from flywheel.pipelines.errors import PipelineError
from flywheel.pipelines.params import check_types
from flywheel.pipelines.steps import Step

STEP, INPUT, PARAM, DEFAULT = "step", "input", "param", "default"


@dataclass(frozen=True, slots=True)
class Binding:
    """Where one parameter of a step gets its value."""

    kind: str
    """STEP, INPUT, PARAM or DEFAULT."""
    source: str
    """The step or input name (STEP, INPUT) or the param name (PARAM, DEFAULT)."""


@dataclass(frozen=True, slots=True)
class StepPlan:
    step: Step
    bindings: Mapping[str, Binding]
    params: Mapping[str, Any]
    """The values of the params this step takes (given, or its defaults)."""

    @property
    def upstream(self) -> list[str]:
        return [b.source for b in self.bindings.values() if b.kind == STEP]

    @property
    def inputs(self) -> list[str]:
        return [b.source for b in self.bindings.values() if b.kind == INPUT]


@dataclass(frozen=True, slots=True)
class Plan:
    """One run's wiring: every step's bindings, in an order where inputs come first."""

    steps: Mapping[str, StepPlan]
    order: Sequence[str]

    def downstream(self, names: Collection[str]) -> set[str]:
        """`names` and every step that reads from them, directly or not."""
        found = set(names)
        for name in self.order:
            if found.intersection(self.steps[name].upstream):
                found.add(name)
        return found


class Pipeline:
    """Steps wired by name: `Pipeline("train", steps=[features, model, evaluation])`."""

    def __init__(self, name: str, steps: Sequence[Callable[..., Any] | Step]) -> None:
        self.name = name
        self.steps: dict[str, Step] = {}
        for one in map(Step.of, steps):
            if one.name in self.steps:
                raise PipelineError(f"pipeline {name}: two steps are named '{one.name}'",
                                    hint="rename one, or use @step(name=...)")
            self.steps[one.name] = one
        if not self.steps:
            raise PipelineError(f"pipeline {name} has no steps")
        self.order = self._sorted()

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={list(self.steps)})"

    def _sorted(self) -> list[str]:
        graph = {s.name: {p for p in s.parameters if p in self.steps}
                 for s in self.steps.values()}
        try:
            # Sorted names first, so the order is the same from run to run.
            return list(TopologicalSorter(dict(sorted(graph.items()))).static_order())
        except CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise PipelineError(f"pipeline {self.name}: steps form a cycle: {cycle}",
                                hint="a step cannot read its own output") from None

    def plan(self, params: Mapping[str, Any], inputs: Collection[str] = ()) -> Plan:
        """Bind every parameter of every step, or say in one line what does not fit."""
        for name in (*params, *inputs):
            if name in self.steps:
                kind = "param" if name in params else "input"
                raise PipelineError(f"{kind} '{name}' has the name of a step",
                                    hint="a step's name is the name of its output")
        plans = {name: self._bind(self.steps[name], params, inputs) for name in self.order}
        used = {b.source for p in plans.values() for b in p.bindings.values()
                if b.kind == PARAM}
        unknown = sorted(set(params) - used)
        if unknown:
            takes = sorted({p for s in self.steps.values() for p in s.parameters
                            if p not in self.steps and p not in inputs})
            raise PipelineError(
                f"unknown param(s) {', '.join(unknown)}: no step of {self.name} takes them",
                hint=f"params are {', '.join(takes)}" if takes else "its steps take no params")
        return Plan(plans, list(self.order))

    def _bind(self, one: Step, params: Mapping[str, Any], inputs: Collection[str]
              ) -> StepPlan:
        bindings: dict[str, Binding] = {}
        values: dict[str, Any] = {}
        for name in one.parameters:
            if name in self.steps:
                bindings[name] = Binding(STEP, name)
            elif name in inputs:
                bindings[name] = Binding(INPUT, name)
            elif name in params:
                bindings[name] = Binding(PARAM, name)
                values[name] = params[name]
            elif name in one.defaults:
                bindings[name] = Binding(DEFAULT, name)
                values[name] = one.defaults[name]
            else:
                hint = ("add training_data to the run spec"
                        if name == "training_set" else f"set it with --param {name}=...")
                raise PipelineError(f"step {one.name}: input '{name}' is not a step, a run "
                                    "input or a param", hint=hint)
        return StepPlan(one, bindings, check_types(one, values))
