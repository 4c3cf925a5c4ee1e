"""Batch scoring: `project.predict_batch` (what `flywheel predict` runs) against a naive
baseline, side by side in the same run.

One generated data set:

  * a feature table `user_features` (user_id, event_time, f0..f9), --feature-rows rows
    over --users users, every user's rows at distinct times, written as a derived table
    sorted by entity and time (as a transform writes a feature view's source);
  * an entity file: --rows rows (row_id, user_id, event_timestamp), random users at random
    times, written in row groups of 1M;
  * a LightGBM classifier over f0..f9, trained on the point-in-time join of 20k other
    entity rows and registered as purchase@champion with the `score` feature service.

Flywheel: `project.predict_batch(model="purchase@champion", input=FILE, output=FILE)`,
which streams the file in chunks (--chunk-size), joins each chunk point in time with the
same join as training, scores it and writes it to Parquet before reading the next.
Naive: the whole entity file and the whole feature table in pandas, `pandas.merge_asof`
(by user, backward in time), `predict_proba` on the whole frame, the frame written to
Parquet. Each side runs in a fresh process, so each peak RSS is its own; both outputs are
compared row by row.

    python bench/batch_scoring.py                        # 1M rows, 1M feature rows
    python bench/batch_scoring.py --rows 10000000 --skip-naive   # the 10M-row run
    python bench/batch_scoring.py --rows 20000 --feature-rows 20000 --users 500   # CI
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import in_child, machine, measure, mib, table

FEATURES = [f"f{i}" for i in range(10)]
START_US = 1_780_000_000_000_000  # 2026-05-28, in microseconds since the epoch
SPAN_US = 90 * 86_400_000_000
DEFINITIONS = f'''
from flywheel.features import Entity, FeatureService, FeatureView

user = Entity(name="user", join_keys=["user_id"])
user_features = FeatureView(name="user_features", entities=[user], source="user_features",
                            timestamp_column="event_time", features={FEATURES!r})
score = FeatureService(name="score", features=["user_features:*"])
'''


def generate(folder: Path, rows: int, feature_rows: int, users: int, seed: int = 7) -> None:
    """The feature table and the entity file, in Parquet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    per_user = -(-feature_rows // users)
    slot = SPAN_US // per_user
    i = np.arange(feature_rows, dtype=np.int64)
    # Row i is user i % users's (i // users)-th row, at a random time inside its slot.
    times = START_US + (i // users) * slot + rng.integers(0, slot, feature_rows)
    values = {name: rng.random(feature_rows) for name in FEATURES}
    pq.write_table(pa.table({"user_id": i % users,
                             "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
                             **values}), folder / "features.parquet")
    schema = pa.schema([("row_id", pa.int64()), ("user_id", pa.int64()),
                        ("event_timestamp", pa.timestamp("us", tz="UTC"))])
    with pq.ParquetWriter(folder / "entities.parquet", schema) as writer:
        for start in range(0, rows, 1_000_000):
            count = min(1_000_000, rows - start)
            writer.write_table(pa.table({
                "row_id": np.arange(start, start + count, dtype=np.int64),
                "user_id": rng.integers(0, users, count),
                "event_timestamp": pa.array(
                    START_US + rng.integers(-86_400_000_000, SPAN_US, count),
                    pa.timestamp("us", tz="UTC"))}, schema=schema))
    training = rng.integers(0, users, 20_000)
    pq.write_table(pa.table({
        "user_id": training,
        "event_timestamp": pa.array(START_US + rng.integers(0, SPAN_US, 20_000),
                                    pa.timestamp("us", tz="UTC"))}),
        folder / "training.parquet")


def setup_project(root: Path, data: Path) -> None:
    """The project: definitions, the feature table, and the model trained and registered."""
    import lightgbm
    import numpy as np
    import pyarrow.parquet as pq

    from flywheel.project import Project

    with Project.init(root) as project:
        (root / "definitions.py").write_text(DEFINITIONS)
        features = pq.read_table(data / "features.parquet")
        project.tables.handle("user_features").overwrite(
            features.sort_by([("user_id", "ascending"), ("event_time", "ascending")]))
        training = project.features.get_historical_features(
            pq.read_table(data / "training.parquet"), feature_service="score").to_pandas()
        training = training.dropna()
        label = (training["f0"] + training["f1"] * 0.5 + np.random.default_rng(1).normal(
            0, 0.2, len(training))) > 0.8
        model = lightgbm.LGBMClassifier(n_estimators=50, num_leaves=31, verbose=-1)
        model.fit(training[FEATURES], label)
        project.registry.register("purchase", model=model, feature_service="score",
                                  alias="champion")


def _flywheel(root: str, data: str, out: str, chunk_size: int, queue: Any) -> None:
    """In a fresh (spawned) process, so the peak RSS is this path's own."""
    import deltalake  # noqa: F401  (imports are not part of the run)
    import duckdb  # noqa: F401
    import lightgbm  # noqa: F401

    from flywheel.project import Project

    with Project.open(root) as project:
        project.registry.load("purchase@champion")  # the artifact read once (not measured)
        with measure() as m:
            result = project.predict_batch(model="purchase@champion",
                                           input=str(Path(data) / "entities.parquet"),
                                           output=out, chunk_size=chunk_size)
    queue.put({"wall": m.wall, "cpu": m.cpu, "peak": m.peak_rss, "rows": result.rows,
               "chunks": result.chunks})


def _naive(root: str, data: str, out: str, queue: Any) -> None:
    """The whole table in memory: pandas merge_asof, then predict on the whole frame."""
    import lightgbm  # noqa: F401
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flywheel.project import Project

    with Project.open(root) as project:
        loaded = project.registry.load("purchase@champion")
        model = loaded.model
        with measure() as m:
            entities = pq.read_table(Path(data) / "entities.parquet").to_pandas()
            features = project.tables.read("user_features").to_pandas()
            merged = pd.merge_asof(
                entities.sort_values("event_timestamp"),
                features.sort_values("event_time"), left_on="event_timestamp",
                right_on="event_time", by="user_id", direction="backward",
                allow_exact_matches=True).sort_values("row_id", ignore_index=True)
            probabilities = model.predict_proba(merged[FEATURES])
            merged["prediction_label"] = model.classes_[probabilities.argmax(axis=1)]
            merged["prediction_probability"] = probabilities[:, 1]
            merged["model"] = "purchase"
            merged["model_version"] = loaded.version.version
            pq.write_table(pa.Table.from_pandas(
                merged[["row_id", "user_id", "event_timestamp", "prediction_label",
                        "prediction_probability", "model", "model_version"]],
                preserve_index=False), out)
    queue.put({"wall": m.wall, "cpu": m.cpu, "peak": m.peak_rss, "rows": len(merged)})


def compare(ours: Path, theirs: Path) -> tuple[bool, str]:
    """Both outputs, row by row (in chunks of row groups, so memory stays small)."""
    import numpy as np
    import pyarrow.parquet as pq

    a, b = pq.ParquetFile(ours), pq.ParquetFile(theirs)
    if a.metadata.num_rows != b.metadata.num_rows:
        return False, f"{a.metadata.num_rows} rows vs {b.metadata.num_rows}"
    columns = ["row_id", "prediction_probability"]
    worst = 0.0
    theirs_batches = b.iter_batches(batch_size=1_000_000, columns=columns)
    for left in a.iter_batches(batch_size=1_000_000, columns=columns):
        right = next(theirs_batches)
        if left.column(0).to_pylist() != right.column(0).to_pylist():
            return False, "rows in another order"
        x = left.column(1).to_numpy(zero_copy_only=False)
        y = right.column(1).to_numpy(zero_copy_only=False)
        worst = max(worst, float(np.nanmax(np.abs(x - y))) if len(x) else 0.0)
    return worst < 1e-9, f"largest difference in probability {worst:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="entity rows to score")
    parser.add_argument("--feature-rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--skip-naive", action="store_true",
                        help="only Flywheel (the naive side holds everything in memory)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="flywheel-batch-bench-"))
    data, root = workdir / "data", workdir / "project"
    data.mkdir(parents=True, exist_ok=True)
    try:
        began = time.perf_counter()
        generate(data, args.rows, args.feature_rows, args.users)
        setup_project(root, data)
        print(f"machine: {machine()}")
        print(f"setup (data, feature table, model): {time.perf_counter() - began:.1f} s")
        print(f"{args.rows:,} entity rows, {args.feature_rows:,} feature rows of "
              f"{len(FEATURES)} features over {args.users:,} users, chunks of "
              f"{args.chunk_size:,}\n")
        ours = in_child(_flywheel, str(root), str(data), str(workdir / "flywheel.parquet"),
                         args.chunk_size)
        rows = [["flywheel predict_batch", f"{ours['rows']:,}", f"{ours['wall']:.2f}",
                 f"{ours['rows'] / ours['wall']:,.0f}", mib(ours["peak"])]]
        naive = None
        if args.skip_naive:
            print("naive: NOT RUN — skipped (--skip-naive)")
        else:
            naive = in_child(_naive, str(root), str(data), str(workdir / "naive.parquet"))
            rows.append(["naive pandas merge_asof", f"{naive['rows']:,}",
                         f"{naive['wall']:.2f}", f"{naive['rows'] / naive['wall']:,.0f}",
                         mib(naive["peak"])])
        print(table(rows, ["side", "rows", "seconds", "rows/s", "peak RSS"]))
        if naive is not None:
            same, detail = compare(workdir / "flywheel.parquet", workdir / "naive.parquet")
            print(f"\noutputs match: {'yes' if same else 'NO'} ({detail})")
            print(f"flywheel vs naive: {naive['wall'] / ours['wall']:.2f}x the speed, "
                  f"{ours['peak'] / naive['peak']:.2f}x the peak memory")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
