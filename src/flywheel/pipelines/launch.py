"""Starting a pipeline run from a run spec, or resuming a failed one.

Resuming reuses the stored outputs of the steps that succeeded (and whose upstream steps
were reused too) and runs the rest; params may change for the steps that run again, but
a changed param of a step that is reused is refused: its output was made without it.
Start a new run instead; the cache still skips every step that did not change.
"""

from __future__ import annotations

import importlib
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from flywheel._core.errors import FlywheelError
from flywheel._core.modules import import_error, import_file
from flywheel.pipelines._child import PROJECT_PREFIX
from flywheel.pipelines.cache import StepCache, StoredOutput
from flywheel.pipelines.codehash import local_modules
from flywheel.pipelines.dag import Pipeline, Plan
from flywheel.pipelines.errors import EmptyTrainingSetError, PipelineError
from flywheel.pipelines.executors import Executor, executor_for
from flywheel.pipelines.runner import (
    Hooks,
    OnDone,
    OnStart,
    PipelineRun,
    RunInput,
    Runner,
)
from flywheel.pipelines.spec import TRAINING_SET, RunSpec, TrainingData, load_spec, parse_spec
from flywheel.pipelines.state import (
    FAILED,
    FINISHED,
    RAN,
    REUSED,
    RunState,
    StepRecord,
    load_state,
    save_state,
)
from flywheel.pipelines.steps import Resources
from flywheel.pipelines.tracking import RecordOutputs, Run, RunTracker, StartRun
from flywheel.tracking.training import training_tags

if TYPE_CHECKING:
    from flywheel._core.artifacts import ArtifactStore
    from flywheel.features.offline import HistoricalFeatures
    from flywheel.features.store import FeatureStore


@dataclass(frozen=True, kw_only=True)
class Services:
    """What a pipeline run uses of its project."""

    root: Path
    artifacts: ArtifactStore
    scratch: Path
    start_run: StartRun
    features: FeatureStore
    record_outputs: RecordOutputs | None = None
    """Records stored outputs as run artifacts, without storing them again."""


def run_pipeline(services: Services, spec_path: str | Path | None = None, *,
                 params: Mapping[str, Any] | None = None, use_cache: bool = True,
                 resume: str | None = None, executor: str | Executor | None = None,
                 on_start: OnStart | None = None, on_done: OnDone | None = None,
                 ) -> PipelineRun:
    """Run the pipeline of the spec at `spec_path` (or resume run `resume`).

    `executor` overrides the spec's: a name (`inprocess`, `process`) or an `Executor`."""
    if (spec_path is None) == (resume is None):
        raise PipelineError("give a run spec or a run to resume, not both",
                            hint="flywheel run pipelines/train.yaml, or --resume RUN_ID")
    earlier = load_state(services.artifacts, resume) if resume else None
    if earlier is not None:
        _check_resumable(earlier)
        spec = parse_spec(earlier.spec, f"run {resume}")
        given = {**earlier.params, **(params or {})}
        where = earlier.spec_path
    else:
        path = _spec_file(services.root, spec_path)
        spec = load_spec(path)
        given = {**spec.params, **(params or {})}
        where = str(path)
    pipeline = load_pipeline(spec.pipeline, services.root)
    chosen = executor if executor is not None and not isinstance(executor, str) else \
        executor_for(executor or (earlier.executor if earlier else spec.executor))
    resources = _resources(pipeline, spec, chosen)
    plan = pipeline.plan(given, {TRAINING_SET} if spec.training_data else set())
    cache = StepCache(services.artifacts, services.scratch)
    reused = _reusable(plan, earlier, cache) if earlier else {}
    training = _training_input(services, spec.training_data, cache, earlier, on_start, on_done)
    name = spec.name or pipeline.name
    tags = {"flywheel.kind": "pipeline", "flywheel.pipeline": pipeline.name,
            "flywheel.executor": chosen.name, **spec.tags}
    if earlier is not None:
        tags["flywheel.resumed_from"] = earlier.run_id
    run = services.start_run(name, tags=tags)
    state = RunState(run.id, name, spec.model_dump(mode="json"), dict(given), chosen.name,
                     steps={n: reused.get(n) or StepRecord(n) for n in plan.order},
                     resumed_from=earlier.run_id if earlier else None, spec_path=where)
    inputs: dict[str, RunInput] = {}
    if given:
        run.log_params(given)
    if training is not None:
        state.training_set, state.table_versions = training.input.output, training.versions
        state.training_rows, state.training_lineage = training.rows, training.lineage
        inputs[TRAINING_SET] = training.input
        run.log_inputs(training.versions)
        run.set_tags({"flywheel.training_set": training.input.output.digest,
                      **training_tags(training.lineage)})
        if training.rows == 0 and spec.training_data is not None:
            chosen.close()
            _fail_empty(services, run, state, spec.training_data)
    save_state(services.artifacts, state)
    tracker = RunTracker(run, services.start_run, services.record_outputs)
    runner = Runner(plan, state, cache, chosen, tracker, inputs, resources,
                    use_cache=use_cache, hooks=Hooks(on_start, on_done), code_root=services.root)
    try:
        return runner.execute()
    finally:
        chosen.close()


def _check_resumable(earlier: RunState) -> None:
    if earlier.status == FINISHED:
        raise PipelineError(f"run {earlier.run_id} finished; there is nothing to resume",
                            hint="start a new run: unchanged steps come from the cache")
    if earlier.training_set is not None and earlier.training_rows == 0:
        again = f"flywheel run {earlier.spec_path}" if earlier.spec_path else "a new run"
        raise PipelineError(
            f"run {earlier.run_id} cannot be resumed: resuming reuses the run's own training "
            f"set, and it is empty ({earlier.error or 'no rows'})",
            hint=f"fix the window or the data, then start a new run: {again}")


def _fail_empty(services: Services, run: Run, state: RunState, data: TrainingData) -> NoReturn:
    """Record the run as failed, before any step, and say which query gave no rows."""
    reason = f"training_data.entities gave no rows{_window(data)}: {data.entities.strip()}"
    state.status, state.error = FAILED, " ".join(reason.split())
    save_state(services.artifacts, state)
    if services.record_outputs is not None and state.training_set is not None:
        services.record_outputs([(run.id, TRAINING_SET, state.training_set)])
    run.set_tags({"flywheel.status": FAILED, "flywheel.error": state.error[:500]})
    run.finish("failed")
    fix = "training_data.start/end or the data" if data.start or data.end else "the data"
    raise EmptyTrainingSetError(state.error, run_id=run.id, hint=(
        f"fix {fix}, then start a new run (run {run.id} is recorded as failed)"))


def _window(data: TrainingData) -> str:
    def shown(when: Any) -> str:
        return when.isoformat() if when is not None else ""

    if data.start is not None and data.end is not None:
        return f" in [{shown(data.start)}, {shown(data.end)})"
    if data.start is not None:
        return f" from {shown(data.start)} on"
    if data.end is not None:
        return f" before {shown(data.end)}"
    return ""


def _spec_file(root: Path, spec_path: str | Path | None) -> Path:
    path = Path(str(spec_path))
    return path if path.is_absolute() else root / path


def load_pipeline(ref: str, root: Path) -> Pipeline:
    """The `Pipeline` named by `file.py:attribute` or `package.module:attribute`."""
    module_part, _, attribute = ref.rpartition(":")
    _use_project_path(root)
    path = root / module_part if module_part.endswith(".py") else \
        root / (module_part.replace(".", "/") + ".py")
    if path.is_file():
        _forget_project_modules(path)
        module: Any = import_file(path, PROJECT_PREFIX, PipelineError)
    elif module_part.endswith(".py") or "/" in module_part:
        raise PipelineError(f"pipeline {ref}: no file {path}")
    elif not _MODULE.match(module_part):
        raise PipelineError(f"pipeline {ref}: '{module_part}' is neither a file of the "
                            "project nor a module name",
                            hint="write pipelines/train.py:pipeline or package.module:pipeline")
    else:
        module = _import_module(ref, module_part)
    found = getattr(module, attribute, None)
    if not isinstance(found, Pipeline):
        what = "nothing" if found is None else f"a {type(found).__name__}"
        raise PipelineError(f"pipeline {ref}: {attribute} is {what}, not a Pipeline",
                            hint="define it as `pipeline = Pipeline(\"name\", steps=[...])`")
    return found


_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _import_module(ref: str, name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PipelineError(f"pipeline {ref}: cannot import {name}: {exc}") from None
    except BaseException as exc:  # the module itself failed: its error, in one line
        if isinstance(exc, FlywheelError | KeyboardInterrupt):
            raise
        raise import_error(Path(name), exc, PipelineError) from exc


_PROJECT_PATHS: list[Path] = []
"""Project folders this process has put on sys.path."""


def _use_project_path(root: Path) -> None:
    """Put the project folder on sys.path (at the end: its modules never shadow an
    installed package), instead of any other project's, so that a pipeline module may
    import the project's other modules (steps, helpers)."""
    for other in _PROJECT_PATHS:
        if other != root and str(other) in sys.path:
            sys.path.remove(str(other))
    if str(root) not in sys.path:
        sys.path.append(str(root))
    if root not in _PROJECT_PATHS:
        _PROJECT_PATHS.append(root)


def _forget_project_modules(path: Path) -> None:
    """Drop the project modules that the pipeline imports from the import cache, so that
    a long-lived process runs their current code (the code their hash is taken from),
    and a module of another project by the same name is not taken for this one's."""
    for name in local_modules(str(path), _PROJECT_PATHS):
        sys.modules.pop(name, None)


def _resources(pipeline: Pipeline, spec: RunSpec, executor: Executor) -> dict[str, Resources]:
    unknown = sorted(set(spec.resources) - set(pipeline.steps))
    if unknown:
        raise PipelineError(f"resources for unknown step(s) {', '.join(unknown)}",
                            hint=f"steps are {', '.join(pipeline.order)}")
    chosen = {name: spec.resources[name].resources() if name in spec.resources
              else one.resources for name, one in pipeline.steps.items()}
    for name, one in pipeline.steps.items():
        executor.check(one, chosen[name])
    return chosen


def _reusable(plan: Plan, earlier: RunState, cache: StepCache) -> dict[str, StepRecord]:
    """The steps of `earlier` whose outputs this run takes as they are."""
    reused: dict[str, StepRecord] = {}
    for name in plan.order:
        old = earlier.steps.get(name)
        step_plan = plan.steps[name]
        if (old is None or not old.succeeded or old.output is None
                or not all(u in reused for u in step_plan.upstream)
                or not cache.artifacts.exists(old.output.digest)):
            continue
        changed = sorted(k for k, v in step_plan.params.items() if old.params.get(k) != v)
        if changed:
            raise PipelineError(
                f"param(s) {', '.join(changed)} of step {name} changed, but {name} succeeded "
                f"in run {earlier.run_id} and resuming reuses its output",
                hint="change params only of the failed step and those after it, or start a "
                "new run (unchanged steps still come from the cache)")
        reused[name] = StepRecord(name, REUSED, old.key, old.output, 0.0,
                                  params=dict(old.params), resources=dict(old.resources))
    return reused


@dataclass(frozen=True)
class _Training:
    input: RunInput
    versions: dict[str, int]
    rows: int | None
    lineage: dict[str, Any]
    """What the run records of its training data (the `flywheel.training_data` tag)."""


def _training_input(services: Services, data: TrainingData | None, cache: StepCache,
                    earlier: RunState | None, on_start: OnStart | None,
                    on_done: OnDone | None) -> _Training | None:
    """The training set: the resumed run's own, or fetched now and stored."""
    if data is None:
        return None
    if earlier is not None and earlier.training_set is not None:
        # A state saved before lineage was kept: the spec still names the service.
        recorded = earlier.training_lineage or _spec_lineage(
            {"feature_service": data.feature_service}, data)
        return _Training(RunInput(earlier.training_set, convert=as_annotated),
                         dict(earlier.table_versions), earlier.training_rows, recorded)
    began = time.perf_counter()
    if on_start:
        on_start(TRAINING_SET)
    fetched: HistoricalFeatures = services.features.get_historical_features(
        data.entity_query(), feature_service=data.feature_service,
        timestamp_column=data.timestamp_column)
    output: StoredOutput = cache.store(TRAINING_SET, fetched.table)
    if on_done:
        on_done(StepRecord(TRAINING_SET, RAN, None, output, time.perf_counter() - began,
                           params={"rows": fetched.table.num_rows}))
    return _Training(RunInput(output, fetched.table, as_annotated),
                     dict(fetched.table_versions), fetched.table.num_rows,
                     _spec_lineage(fetched.lineage(), data))


def _spec_lineage(lineage: dict[str, Any], data: TrainingData) -> dict[str, Any]:
    """A training set's lineage with the spec's own words: its `entities` and window."""
    entities = dict(lineage.get("entities") or {})
    entities["spec"] = data.entities
    return {**lineage, "entities": entities, "timestamp_column": data.timestamp_column,
            "start": data.start.isoformat() if data.start is not None else None,
            "end": data.end.isoformat() if data.end is not None else None}


def as_annotated(table: Any, annotation: Any) -> Any:
    """An Arrow table as the parameter's annotation asks: pandas, Polars, else Arrow."""
    text = annotation if isinstance(annotation, str) else \
        f"{getattr(annotation, '__module__', '')}.{getattr(annotation, '__name__', '')}"
    if "pandas" in text or text.startswith("pd."):
        return table.to_pandas()
    if "polars" in text or text.startswith("pl."):
        import polars as pl

        return pl.from_arrow(table)
    return table
