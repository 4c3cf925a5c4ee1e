"""Pipelines: what the runner and its step cache cost over calling the same steps directly.

A 20-step DAG of plain functions over Arrow tables: `s00` makes a table of `rows` rows
(id, x, y), each later step adds 1 to `x` of the step before it, and every fifth step
also adds the `x` of the step five back (a fan-in). Two sizes: small outputs (1,000 rows)
and 100 MB outputs (3 x 8-byte columns). Modes, each in a fresh (spawned) process so its
peak RSS is its own, the median of --repeat runs reported:

  naive         the functions called directly in dependency order, outputs kept in a dict
                (what a script does): the baseline
  cold          `project.run(spec)` on an empty artifact store: every step runs, its output
                is stored (Parquet, sha256, fsync), and a run plus a child run per step is
                recorded in tracking
  warm          `project.run(spec)` again: every step is a cache hit, nothing is loaded
  cold process  cold with one process per step (small outputs only)

Set-up (project, imports, the first metadata open) is not measured.

    python bench/pipelines.py                                  # small and 100 MB, 3 runs
    python bench/pipelines.py --sizes small --repeat 1 --steps 6    # quick check (CI)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine, measure, mib, table

MODES = ("naive", "cold", "warm", "cold process")
ROW_BYTES = 24
"""id (int64), x and y (float64)."""


def steps_module(steps: int) -> str:
    """The steps as a project would write them: plain typed functions, wired by name."""
    lines = ["import numpy as np", "import pyarrow as pa", "import pyarrow.compute as pc", "",
             "from flywheel.pipelines import Pipeline", "", "",
             "def s00(rows: int) -> pa.Table:",
             "    ids = np.arange(rows, dtype=np.int64)",
             "    return pa.table({'id': ids, 'x': ids * 0.5, 'y': ids * 0.25})", ""]
    for k in range(1, steps):
        previous = f"s{k - 1:02d}"
        args = [previous] + ([f"s{k - 5:02d}"] if k % 5 == 0 else [])
        signature = ", ".join(f"{a}: pa.Table" for a in args)
        x = f"pc.add({previous}['x'], 1.0)"
        if len(args) > 1:
            x = f"pc.add({x}, {args[1]}['x'])"
        lines += ["", f"def s{k:02d}({signature}) -> pa.Table:",
                  f"    return {previous}.set_column(1, 'x', {x})", ""]
    names = ", ".join(f"s{k:02d}" for k in range(steps))
    lines += ["", f"pipeline = Pipeline('bench', steps=[{names}])", ""]
    return "\n".join(lines)


def make_project(root: Path, steps: int, rows: int) -> None:
    from flywheel.project import Project

    Project.init(root).close()
    (root / "pipelines").mkdir()
    (root / "pipelines" / "bench.py").write_text(steps_module(steps))
    (root / "pipelines" / "bench.yaml").write_text(
        f"pipeline: pipelines/bench.py:pipeline\nparams: {{rows: {rows}}}\n")


def _warm_up() -> None:
    """Imports and Arrow's first compute call are not what is measured."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pc.add(pa.array([1.0]), 1.0)


def _naive(root: str, rows: int, queue: Any) -> None:
    import importlib.util

    _warm_up()

    spec = importlib.util.spec_from_file_location("bench_steps", Path(root) / "pipelines"
                                                  / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pipeline = module.pipeline
    with measure() as m:
        outputs: dict[str, Any] = {}
        for name in pipeline.order:
            step = pipeline.steps[name]
            kwargs = {p: outputs.get(p, rows) for p in step.parameters}
            outputs[name] = step.function(**kwargs)
        checksum = float(outputs[pipeline.order[-1]]["x"][-1].as_py())
    queue.put({"wall": m.wall, "peak": m.peak_rss, "checksum": checksum})


def _flywheel(root: str, executor: str, queue: Any) -> None:
    from flywheel.project import Project

    _warm_up()

    with Project.open(root) as project:
        _ = project.metadata, project.artifacts  # opened (and migrated) before measuring
        with measure() as m:
            result = project.run("pipelines/bench.yaml", executor=executor)
        last = result.steps[-1].name
        statuses = sorted({s.status for s in result.steps})
        checksum = float(result.output(last)["x"][-1].as_py())
    stored = sum(p.stat().st_size for p in (Path(root) / "artifacts").rglob("*")
                 if p.is_file())
    queue.put({"wall": m.wall, "peak": m.peak_rss, "checksum": checksum,
               "statuses": statuses, "stored": stored})


def _in_child(target: Any, *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result: dict[str, Any] = queue.get()
    process.join()
    if process.exitcode:
        raise RuntimeError(f"{target.__name__} exited with {process.exitcode}")
    return result


def run_size(workdir: Path, label: str, steps: int, rows: int, repeat: int,
             process: bool) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    for n in range(repeat):
        print(f"  {label}: run {n + 1} of {repeat}", file=sys.stderr)
        root = workdir / f"{label}-{n}"
        make_project(root, steps, rows)
        results["naive"].append(_in_child(_naive, str(root), rows))
        results["cold"].append(_in_child(_flywheel, str(root), "inprocess"))
        results["warm"].append(_in_child(_flywheel, str(root), "inprocess"))
        if process:
            shutil.rmtree(root)
            make_project(root, steps, rows)
            results["cold process"].append(_in_child(_flywheel, str(root), "process"))
        shutil.rmtree(root)
    return {m: r for m, r in results.items() if r}


def _size(count: int) -> str:
    return mib(count) if count >= 2**20 else f"{count / 1024:,.0f} KiB"


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def report(label: str, steps: int, rows: int, results: dict[str, list[dict[str, Any]]]
           ) -> tuple[list[list[str]], dict[str, Any]]:
    naive = _median(results["naive"], "wall")
    checks = {r["checksum"] for runs in results.values() for r in runs}
    assert len(checks) == 1, f"the modes disagree: {checks}"
    for mode in ("warm",):
        assert results[mode][0]["statuses"] == ["cached"], results[mode][0]["statuses"]
    lines, figures = [], {}
    for mode, runs in results.items():
        wall, peak = _median(runs, "wall"), _median(runs, "peak")
        per_step = (wall - naive) / steps * 1000
        stored = _size(int(runs[0]["stored"])) if "stored" in runs[0] else "-"
        lines.append([label, mode, f"{wall:.3f}", f"{wall / naive:.2f}x",
                      "-" if mode == "naive" else f"{per_step:+.1f}", mib(int(peak)), stored])
        figures[mode] = {"seconds": wall, "ratio": wall / naive, "peak": peak}
    return lines, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="steps in the DAG")
    parser.add_argument("--small-rows", type=int, default=1_000, help="rows of a small output")
    parser.add_argument("--large-mb", type=float, default=100.0,
                        help="size of a large output in MB (in memory)")
    parser.add_argument("--sizes", default="small,large", help="small, large or both")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode; median shown")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    sizes = {"small": args.small_rows, "large": int(args.large_mb * 2**20 / ROW_BYTES)}
    chosen = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = set(chosen) - set(sizes)
    if unknown or not chosen:
        parser.error(f"--sizes takes small and/or large, not {', '.join(unknown) or '(none)'}")
    workdir = Path(tempfile.mkdtemp(prefix="flywheel-pipelines-"))
    os.chdir(workdir)
    load = os.getloadavg()[0]
    rows_out, figures = [], {}
    try:
        for label in chosen:
            rows = sizes[label]
            results = run_size(workdir, label, args.steps, rows, args.repeat,
                               process=label == "small")
            lines, figures[label] = report(label, args.steps, rows, results)
            rows_out += lines
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\npipelines benchmark — {machine()}; load average {load:.2f} before the runs")
    print(f"{args.steps} steps; small = {args.small_rows:,} rows, large = "
          f"{sizes['large']:,} rows ({args.large_mb:g} MB) per step output; median of "
          f"{args.repeat}\n")
    print(table(rows_out, ["size", "mode", "seconds", "vs naive", "ms/step over naive",
                           "peak RSS", "stored"]))
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
