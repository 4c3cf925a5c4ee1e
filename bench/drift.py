"""Drift of a current sample against a reference, Flywheel beside Evidently.

    python bench/drift.py [--rows 1000000] [--no-peer]

Writes a reference and a current sample (`--rows` each; 35 numeric and 15 categorical
columns, a few of them shifted) as Parquet, then measures, each in a fresh process:
Flywheel's `drift_report` reading one column at a time from the Parquet files, and
Evidently's DataDriftPreset (legacy Report API) in its own virtual environment under
~/.cache/flywheel-bench/venvs/evidently, which it builds on first use. Prints time and
peak RSS of both, the ratio, and per-column agreement of the drift decisions: Flywheel's
defaults, and Flywheel forced to the test Evidently chose for each column.
`--no-peer` measures Flywheel alone (the streaming-memory check at 10M rows).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import in_child, machine, measure, mib, table
from _serving_peers import default_venvs

EVIDENTLY_REQUIREMENTS = ["evidently==0.7.23", "pandas==2.3.3"]
NUMERIC, CATEGORICAL = 35, 15
SHIFTED_NUMERIC = {f"num_{i:02d}": 0.1 * (i + 1) for i in range(5)}  # in standard deviations
SHIFTED_CATEGORICAL = {"cat_00", "cat_01", "cat_02"}
ROW_GROUP = 500_000
# Evidently's names of its tests → Flywheel's statistic (Z-test: χ² on the 2 × 2 table).
EVIDENTLY_TESTS = {"K-S p_value": "ks", "Wasserstein distance (normed)": "wasserstein",
                   "Jensen-Shannon distance": "jensen_shannon", "chi-square p_value": "chi2",
                   "Z-test p_value": "chi2", "PSI": "psi"}


def write_sample(path: Path, rows: int, *, shifted: bool, seed: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer: pq.ParquetWriter | None = None
    for start in range(0, rows, ROW_GROUP):
        size = min(ROW_GROUP, rows - start)
        columns: dict[str, Any] = {}
        for i in range(NUMERIC):
            name = f"num_{i:02d}"
            shift = SHIFTED_NUMERIC.get(name, 0.0) if shifted else 0.0
            if i % 5 == 4:
                columns[name] = rng.integers(0, 10_000, size) + int(shift * 2887)
            else:
                columns[name] = rng.normal(shift, 1.0, size) * (i + 1)
        for i in range(CATEGORICAL):
            name = f"cat_{i:02d}"
            if i >= CATEGORICAL - 2:
                columns[name] = rng.random(size) < (0.6 if shifted and name in
                                                     SHIFTED_CATEGORICAL else 0.5)
                continue
            levels = 3 + i
            weights = np.linspace(1.0, 2.0, levels)
            if shifted and name in SHIFTED_CATEGORICAL:
                weights = weights[::-1]
            choice = rng.choice(levels, size, p=weights / weights.sum())
            columns[name] = np.array([f"level_{k}" for k in range(levels)])[choice]
        batch = pa.table(columns)
        writer = writer or pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch)
    assert writer is not None
    writer.close()


class ParquetColumns:
    """A ColumnSource over a Parquet file: each column read on its own."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def schema(self) -> Any:
        import pyarrow.parquet as pq

        return pq.read_schema(self.path)

    def column(self, name: str) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(self.path, columns=[name]).column(0)


def flywheel_side(reference: str, current: str, tests: dict[str, tuple[str, float]],
                  workers: int, queue: Any) -> None:
    from flywheel.monitoring.drift import ColumnTest, drift_report

    overrides = {name: ColumnTest(statistic=s, threshold=t) for name, (s, t) in tests.items()}
    with measure() as m:
        report = drift_report(ParquetColumns(Path(reference)), ParquetColumns(Path(current)),
                              tests=overrides, workers=workers)
    queue.put({"wall": m.wall, "peak_rss": m.peak_rss,
               "columns": {c.column: {"test": c.statistic, "score": c.value,
                                      "drifted": c.drifted} for c in report.columns}})


def evidently_python(venvs: Path) -> tuple[Path | None, str]:
    venv = venvs / "evidently"
    python = venv / "bin" / "python"
    marker = venv / "flywheel-bench-requirements.txt"
    wanted = "\n".join(EVIDENTLY_REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python, " ".join(EVIDENTLY_REQUIREMENTS)
    print(f"  building the evidently venv in {venv} (once; takes minutes)", file=sys.stderr)
    venvs.mkdir(parents=True, exist_ok=True)
    for step in ([sys.executable, "-m", "venv", "--clear", str(venv)],
                 [str(python), "-m", "pip", "install", "-q", *EVIDENTLY_REQUIREMENTS]):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return None, f"could not build its venv: {lines[-1] if lines else done.returncode}"
    marker.write_text(wanted)
    return python, " ".join(EVIDENTLY_REQUIREMENTS)


def evidently_side(python: Path, reference: Path, current: Path) -> dict[str, Any]:
    numeric = ",".join(f"num_{i:02d}" for i in range(NUMERIC))
    categorical = ",".join(f"cat_{i:02d}" for i in range(CATEGORICAL))
    done = subprocess.run([str(python), str(Path(__file__).parent / "_evidently_side.py"),
                           str(reference), str(current), numeric, categorical],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"evidently failed: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> tuple[int, int, list[str]]:
    same = [name for name in theirs if ours[name]["drifted"] == theirs[name]["drifted"]]
    return len(same), len(theirs), sorted(set(theirs) - set(same))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    from flywheel.monitoring.drift_windows import WORKERS

    parser.add_argument("--workers", type=int, default=WORKERS,
                        help="columns compared at once (default: as `flywheel monitor run` "
                        f"does, {WORKERS} here); 1 for one thread")
    parser.add_argument("--no-peer", action="store_true", help="measure Flywheel alone")
    args = parser.parse_args()
    print(f"drift: {args.rows:,} current rows × {NUMERIC + CATEGORICAL} columns against "
          f"{args.rows:,} reference rows — {machine()}")
    with tempfile.TemporaryDirectory(prefix="flywheel-drift-") as folder:
        reference, current = Path(folder, "reference.parquet"), Path(folder, "current.parquet")
        write_sample(reference, args.rows, shifted=False, seed=1)
        write_sample(current, args.rows, shifted=True, seed=2)
        ours = in_child(flywheel_side, str(reference), str(current), {}, args.workers)
        rows = [["flywheel drift_report (defaults)", f"{ours['wall']:.2f} s",
                 mib(ours["peak_rss"])]]
        drifted = sorted(n for n, c in ours["columns"].items() if c["drifted"])
        theirs: dict[str, Any] | None = None
        if not args.no_peer:
            python, why = evidently_python(default_venvs())
            if python is None:
                print(f"  evidently: not measured ({why})")
            else:
                theirs = evidently_side(python, reference, current)
                rows.append([f"evidently DataDriftPreset ({why})", f"{theirs['wall']:.2f} s",
                             mib(theirs["peak_rss"])])
        print(table(rows, ["", "time", "peak RSS"]))
        print(f"flywheel drifted columns ({len(drifted)}): {', '.join(drifted)}")
        if theirs is None:
            return
        forced_tests = {name: (EVIDENTLY_TESTS[c["test"]], c["threshold"])
                        for name, c in theirs["columns"].items()}
        forced = in_child(flywheel_side, str(reference), str(current), forced_tests,
                          args.workers)
        print(f"flywheel vs evidently: {theirs['wall'] / ours['wall']:.1f}x faster, "
              f"{theirs['peak_rss'] / ours['peak_rss']:.1f}x less memory")
        for label, mine in (("defaults", ours), ("forced to evidently's tests", forced)):
            same, total, differ = agreement(mine["columns"], theirs["columns"])
            print(f"decisions agree ({label}): {same}/{total}"
                  + (f" (differ: {', '.join(differ)})" if differ else ""))
        gaps = [abs(forced["columns"][n]["score"] - c["score"])
                for n, c in theirs["columns"].items()
                if forced["columns"][n]["score"] is not None
                and forced["columns"][n]["test"] in ("wasserstein", "jensen_shannon", "ks")]
        if gaps:
            print(f"largest score difference (forced, distances and KS): {max(gaps):.2e}")


if __name__ == "__main__":
    main()
