"""Evidently's DataDriftPreset on the Parquet files bench/drift.py wrote; runs in the
Evidently venv and prints one JSON line: time, peak RSS, per-column tests and decisions.

Usage: python _evidently_side.py REFERENCE.parquet CURRENT.parquet NUMERIC,.. CATEGORICAL,..
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main() -> None:
    import pandas as pd
    from evidently.legacy.metric_preset import DataDriftPreset
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report

    reference_path, current_path, numeric, categorical = sys.argv[1:5]
    start = time.perf_counter()
    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    mapping = ColumnMapping(numerical_features=[c for c in numeric.split(",") if c],
                            categorical_features=[c for c in categorical.split(",") if c])
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=reference, current_data=current, column_mapping=mapping)
    result = report.as_dict()
    wall = time.perf_counter() - start
    columns = {}
    for metric in result["metrics"]:
        by_column = metric["result"].get("drift_by_columns")
        if by_column:
            for name, column in by_column.items():
                columns[name] = {"test": column["stattest_name"],
                                 "score": float(column["drift_score"]),
                                 "threshold": float(column["stattest_threshold"]),
                                 "drifted": bool(column["drift_detected"])}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"wall": wall, "peak_rss": peak, "columns": columns}))


if __name__ == "__main__":
    main()
