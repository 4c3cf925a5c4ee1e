"""Model flavors: what kind of model an object is, the input columns it was trained on,
and how to call its `predict` on a frame (Arrow, pandas, Polars or a dict of columns).

Flavors are told apart by the module of the object's class, so detecting one imports
nothing: scikit-learn (estimators and pipelines), LightGBM and XGBoost (their scikit-learn
wrappers and their boosters), and `python` for any other object with `predict`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from flywheel._core.errors import InputError

__all__ = ["FLAVORS", "detect_flavor", "input_columns", "predict", "predict_matrix"]

FLAVORS = ("sklearn", "lightgbm", "xgboost", "python")


def detect_flavor(model: Any) -> str:
    if not callable(getattr(model, "predict", None)):
        raise InputError(f"a {type(model).__name__} has no predict method",
                         hint="register a model object with predict(frame)")
    root = type(model).__module__.partition(".")[0]
    return root if root in FLAVORS else "python"


def input_columns(model: Any, flavor: str) -> list[str] | None:
    """The feature names the model was fitted on, when it remembers them."""
    names: Any = None
    if flavor == "xgboost":
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        names = getattr(booster, "feature_names", None)
    elif flavor == "lightgbm":
        names = getattr(model, "feature_name_", None)
        if names is None and callable(getattr(model, "feature_name", None)):
            names = model.feature_name()
    if names is None:
        names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    listed = [str(name) for name in names]
    # LightGBM names unnamed inputs Column_0..; XGBoost f0..: no names were given.
    generic = all(name == f"Column_{i}" or name == f"f{i}" for i, name in enumerate(listed))
    return None if generic else listed


def predict(model: Any, flavor: str, frame: Any, columns: list[str] | None) -> Any:
    """`model.predict` on `frame`, restricted to (and ordered as) `columns` when the frame
    has them all (entity keys and timestamps beside the features are left out)."""
    data = _as_pandas(frame)
    if columns and hasattr(data, "columns") and set(columns) <= set(data.columns):
        data = data[columns]
    if flavor == "xgboost" and type(model).__name__ == "Booster":
        import xgboost

        return model.predict(xgboost.DMatrix(data))
    return model.predict(data)


def predict_matrix(model: Any, flavor: str, matrix: Any, columns: list[str], *,
                   proba: bool = False) -> Any:
    """`predict` (or, with `proba`, class probabilities, one column per class) on a 2-D
    float array whose columns are `columns` in order: the serving path. LightGBM's and
    scikit-learn's own checks of a frame cost more than scoring one row, so a fitted
    LightGBM model is scored by its booster and a scikit-learn model without feature names
    on the array; the rest take a frame as `predict` does."""
    booster = getattr(model, "booster_", None) if flavor == "lightgbm" else None
    if flavor == "lightgbm" and type(model).__name__ == "Booster":
        booster = model
    if booster is not None:
        values = _lightgbm_predict(booster, matrix)
        if proba and values.ndim == 1:  # binary: the positive class's probability
            import numpy as np

            return np.column_stack([1.0 - values, values])
        return values
    method = "predict_proba" if proba else "predict"
    if flavor == "sklearn" and getattr(model, "feature_names_in_", None) is None:
        return getattr(model, method)(matrix)
    if flavor == "sklearn" or (proba and flavor != "xgboost"):
        import importlib

        pandas = importlib.import_module("pandas")  # what the model was fitted on
        return getattr(model, method)(pandas.DataFrame(matrix, columns=columns))
    frame = {name: matrix[:, i] for i, name in enumerate(columns)}
    if proba:
        return model.predict_proba(_as_pandas(frame))
    return predict(model, flavor, frame, columns)


_ONE_THREAD = b"num_threads=1"
"""One thread: at serving's batch sizes, starting OpenMP's threads costs far more than the
trees (tens of ms on a busy box, for 30 rows)."""
_DIRECT: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
"""Boosters known to be scored by `_direct_predict` (one output per row) or not."""


def _lightgbm_predict(booster: Any, matrix: Any) -> Any:
    """`booster.predict(matrix, num_threads=1)`, the same numbers. A model of one output
    per row (binary, regression) is scored by LightGBM's C predict on the float64 matrix
    directly: `Booster.predict`'s own checks and conversions around that call took as
    long as the trees of 16 rows (93 against 51 µs)."""
    direct = _DIRECT.get(booster)
    if direct is None:
        direct = _DIRECT[booster] = _can_predict_directly(booster)
    if not direct:
        return booster.predict(matrix, num_threads=1)
    import numpy as np

    rows = np.ascontiguousarray(matrix, dtype=np.float64)
    if rows.ndim != 2:
        return booster.predict(matrix, num_threads=1)
    return _direct_predict(booster, rows)


def _can_predict_directly(booster: Any) -> bool:
    try:
        from lightgbm import basic

        lib = vars(basic).get("_LIB")
        return (callable(getattr(lib, "LGBM_BoosterPredictForMat", None))
                and callable(vars(basic).get("_safe_call"))
                and getattr(booster, "_handle", None) is not None
                and booster.num_model_per_iteration() == 1)
    except Exception:  # another LightGBM than the one this was written against
        return False


def _direct_predict(booster: Any, rows: Any) -> Any:
    import ctypes

    import numpy as np
    from lightgbm import basic

    count, width = rows.shape
    out = np.empty(count, dtype=np.float64)
    written = ctypes.c_int64(0)
    double_p = ctypes.POINTER(ctypes.c_double)
    internals = vars(basic)
    internals["_safe_call"](internals["_LIB"].LGBM_BoosterPredictForMat(
        booster._handle, rows.ctypes.data_as(double_p),
        ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
        ctypes.c_int32(count), ctypes.c_int32(width),
        ctypes.c_int(1),  # row-major
        ctypes.c_int(0),  # C_API_PREDICT_NORMAL
        ctypes.c_int(0), ctypes.c_int(booster.best_iteration),  # as Booster.predict
        ctypes.c_char_p(_ONE_THREAD), ctypes.byref(written), out.ctypes.data_as(double_p)))
    if written.value != count:
        raise ValueError(f"LightGBM wrote {written.value} predictions for {count} rows")
    return out


def _as_pandas(frame: Any) -> Any:
    root = type(frame).__module__.partition(".")[0]
    if root == "pyarrow" and hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    if root == "polars" and hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    if isinstance(frame, Mapping):
        import pyarrow as pa

        return pa.table(dict(frame)).to_pandas()
    return frame
