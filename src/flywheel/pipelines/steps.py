"""Steps: plain typed functions. `@step` only attaches settings and returns the function.

A step's name is its function's name, and that name is also the name of its output:
another step that has a parameter of that name receives it (Hamilton's wiring by name).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from flywheel.pipelines.errors import PipelineError

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__flywheel_step__"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(value: int | str | None) -> int | None:
    """`4GB`, `512MiB`, `1_000_000` or an int -> bytes."""
    if value is None or isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise PipelineError(f"memory '{value}' is not a size", hint="write e.g. 512MB or 4GiB")
    return int(float(match.group(1).replace("_", "")) * _UNITS[unit])


@dataclass(frozen=True, slots=True)
class Resources:
    """What one call of a step needs. Local executors check and record it; a cluster
    executor reserves it."""

    cpus: float = 1.0
    memory: int | None = None
    """Bytes; `Resources.of({"memory": "4GB"})` parses sizes."""
    gpus: int = 0

    @classmethod
    def of(cls, value: Resources | Mapping[str, Any] | None) -> Resources:
        if value is None:
            return cls()
        if isinstance(value, Resources):
            return value
        unknown = sorted(set(value) - {"cpus", "memory", "gpus"})
        if unknown:
            raise PipelineError(f"unknown resource(s) {', '.join(unknown)}",
                                hint="resources are cpus, memory and gpus")
        cpus, gpus = value.get("cpus", 1.0), value.get("gpus", 0)
        if not isinstance(cpus, int | float) or isinstance(cpus, bool) or cpus <= 0:
            raise PipelineError(f"cpus must be a positive number, not {cpus!r}")
        if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 0:
            raise PipelineError(f"gpus must be a whole number >= 0, not {gpus!r}")
        return cls(float(cpus), parse_bytes(value.get("memory")), gpus)

    def as_dict(self) -> dict[str, Any]:
        return {"cpus": self.cpus, "memory": self.memory, "gpus": self.gpus}


@dataclass(frozen=True, slots=True)
class StepSettings:
    name: str | None = None
    resources: Resources = field(default_factory=Resources)


@overload
def step(function: F, /) -> F: ...
@overload
def step(*, name: str | None = None,
         resources: Resources | Mapping[str, Any] | None = None) -> Callable[[F], F]: ...


def step(function: F | None = None, /, *, name: str | None = None,
         resources: Resources | Mapping[str, Any] | None = None) -> F | Callable[[F], F]:
    """Mark a function as a step, optionally renaming it or saying what it needs:
    `@step` or `@step(resources={"cpus": 4, "memory": "8GB"})`. The function is returned
    as it is, callable and testable without Flywheel."""
    settings = StepSettings(name, Resources.of(resources))

    def mark(target: F) -> F:
        setattr(target, ATTRIBUTE, settings)
        return target

    return mark(function) if function is not None else mark


@dataclass(frozen=True, slots=True)
class Step:
    """A function in a pipeline: its name (= its output's name) and its parameters."""

    name: str
    function: Callable[..., Any] = field(compare=False)
    parameters: tuple[str, ...]
    defaults: Mapping[str, Any]
    annotations: Mapping[str, Any]
    resources: Resources

    @classmethod
    def of(cls, function: Callable[..., Any] | Step) -> Step:
        if isinstance(function, Step):
            return function
        if not callable(function):
            raise PipelineError(f"{function!r} is not a function, so not a step")
        settings = getattr(function, ATTRIBUTE, None) or StepSettings()
        name = str(settings.name or getattr(function, "__name__", ""))
        if not _NAME.match(name) or name == "<lambda>":
            raise PipelineError(f"step '{name}' needs a name that is a Python identifier",
                                hint="use a def, or @step(name=...)")
        signature = _signature(function)
        defaults, annotations = {}, {}
        for parameter in signature.parameters.values():
            if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                raise PipelineError(f"step {name}: parameter '{parameter.name}' must be a "
                                    "plain named parameter (no *args, **kwargs or /)",
                                    hint="steps are called with keyword arguments")
            if parameter.default is not parameter.empty:
                defaults[parameter.name] = parameter.default
            annotations[parameter.name] = parameter.annotation
        return cls(name, function, tuple(signature.parameters), defaults, annotations,
                   settings.resources)


def _signature(function: Callable[..., Any]) -> inspect.Signature:
    # Annotations as types when they resolve (they are checked against params), else as text.
    try:
        return inspect.signature(function, eval_str=True)
    except Exception:
        return inspect.signature(function)
