"""LightGBM against a logistic-regression baseline, judged on the latest cart adds.

The split is by time, not at random: the model is used on carts that come after the
ones it learned from, so it is judged that way. Only `model` returns something with
`predict`, so that it is what the registry (and a retraining policy) registers; the
baseline is fitted and scored inside `baseline_auc`, whose number is logged beside `auc`.
"""

from __future__ import annotations

import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from flywheel.pipelines import Pipeline, step

FEATURES = [
    "events_1h",
    "events_24h",
    "events_7d",
    "carts_1h",
    "carts_24h",
    "carts_7d",
    "purchases_1h",
    "purchases_24h",
    "purchases_7d",
    "from_search",
    "from_social",
    "from_email",
    "from_direct",
    "from_other",
    "on_mobile",
    "on_tablet",
    "price",
    "product_views_24h",
    "product_views_7d",
    "product_carts_7d",
]
BASELINE = ["price", "carts_7d"]  # few features, one linear score: what to beat


def rows(training_set: pd.DataFrame, until: str | None = None) -> pd.DataFrame:
    """The labelled cart adds in time order; a retraining policy passes `until` to keep
    its held-out window out of training."""
    frame = training_set.sort_values("event_timestamp", kind="stable")
    if until is not None:
        frame = frame[frame["event_timestamp"] < pd.Timestamp(until)]
    frame = frame.assign(label=frame["label"].astype(int))
    return frame.reset_index(drop=True)


def train_rows(rows: pd.DataFrame, holdout_share: float = 0.25) -> pd.DataFrame:
    return rows.iloc[: int(len(rows) * (1 - holdout_share))]


def held_out(rows: pd.DataFrame, holdout_share: float = 0.25) -> pd.DataFrame:
    return rows.iloc[int(len(rows) * (1 - holdout_share)) :]


@step(resources={"cpus": 1})
def model(
    train_rows: pd.DataFrame, learning_rate: float = 0.05, num_leaves: int = 7
) -> LGBMClassifier:
    # Small trees and row/column sampling: a few thousand cart adds overfit easily.
    trees = LGBMClassifier(
        n_estimators=150,
        learning_rate=learning_rate,
        num_leaves=num_leaves,
        min_child_samples=30,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        random_state=0,
        verbose=-1,
    )
    return trees.fit(train_rows[FEATURES].astype(float), train_rows["label"])


def auc(model: LGBMClassifier, held_out: pd.DataFrame) -> float:
    scores = model.predict_proba(held_out[FEATURES].astype(float))[:, 1]
    return float(roc_auc_score(held_out["label"], scores))


def baseline_auc(train_rows: pd.DataFrame, held_out: pd.DataFrame) -> float:
    baseline = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression()
    )
    baseline.fit(train_rows[BASELINE], train_rows["label"])
    scores = baseline.predict_proba(held_out[BASELINE])[:, 1]
    return float(roc_auc_score(held_out["label"], scores))


def held_out_rows(held_out: pd.DataFrame) -> int:
    return len(held_out)


pipeline = Pipeline(
    "train", steps=[rows, train_rows, held_out, model, auc, baseline_auc, held_out_rows]
)
