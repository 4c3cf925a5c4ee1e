"""Pipelines: DAGs of plain typed steps, cached by code, inputs and params.

    from flywheel.pipelines import Pipeline, step

    def features(training_set: pd.DataFrame) -> pd.DataFrame: ...

    @step(resources={"cpus": 2})
    def model(features: pd.DataFrame, learning_rate: float = 0.1) -> Model: ...

    pipeline = Pipeline("train", steps=[features, model])
"""

from flywheel.pipelines.dag import Pipeline
from flywheel.pipelines.errors import EmptyTrainingSetError, PipelineError, StepFailedError
from flywheel.pipelines.steps import Resources, step

__all__ = ["EmptyTrainingSetError", "Pipeline", "PipelineError", "Resources", "StepFailedError",
           "step"]
