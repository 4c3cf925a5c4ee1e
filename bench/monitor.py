"""`flywheel monitor run` on a wide table, beside a naive pandas + scipy monitor.

    python bench/monitor.py [--rows 1000000] [--no-peer]

Builds a project whose derived table `wide` holds a reference day and a current day of
`--rows` rows each (the 50 columns of `bench/drift.py`: 35 numeric, 15 categorical, a few
shifted on the current day), and a drift monitor of one-day windows against the reference
day. Then measures, each in a fresh process:

- `flywheel monitor run --json`, as a user runs it (reads the table through DuckDB, one
  column of one window at a time), and
- the monitor a user would write without Flywheel: the table read into pandas, each day
  compared with the reference column by column with scipy (KS for numbers, χ² for
  categories),

printing time and peak RSS of both and the ratio. `--no-peer` measures Flywheel alone (the
streaming-memory check: `--rows 10000000 --no-peer` must stay under 4 GB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import PeakRss, in_child, machine, measure, mib, table
from drift import write_sample

DAY = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MONITORS = """\
monitors:
  wide_drift:
    kind: drift
    target: {{table: wide}}
    window: 1d
    reference: {{start: "{start}", end: "{end}"}}
"""


def build_project(folder: Path, rows: int) -> Path:
    """A project with the table `wide`: day 0 the reference, day 1 the current sample,
    and one row at the start of day 2 so that day 1 is a complete window."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from flywheel.project import Project

    flywheel = Project.init(folder / "project")
    project = flywheel.root
    samples = folder / "samples"
    samples.mkdir()
    handle = flywheel.tables.handle("wide")
    for day, shifted in ((0, False), (1, True)):
        path = samples / f"day{day}.parquet"
        write_sample(path, rows, shifted=shifted, seed=day)
        parquet = pq.ParquetFile(path)
        done = 0
        for batch in parquet.iter_batches(batch_size=500_000):
            # Spread the day's rows over its 24 hours, in order.
            offsets = pa.array((done + i) * 86_400_000_000 // rows
                               for i in range(batch.num_rows))
            start = int((DAY + dt.timedelta(days=day)).timestamp() * 1_000_000)
            times = pc.add(offsets, start).cast(pa.timestamp("us", tz="UTC"))
            rows_in = pa.Table.from_batches([batch]).append_column("event_time", times)
            if not handle.exists():
                handle.create(rows_in.schema)
            handle.append(rows_in)
            done += batch.num_rows
        path.unlink()
    closing = handle.dataset().head(1)  # one row, not the table
    handle.append(closing.set_column(closing.schema.get_field_index("event_time"),
                                     "event_time", pa.array([DAY + dt.timedelta(days=2)],
                                                            pa.timestamp("us", tz="UTC"))))
    (project / "monitors.yaml").write_text(MONITORS.format(
        start=DAY.isoformat(), end=(DAY + dt.timedelta(days=1)).isoformat()))
    return project


def flywheel_side(project: Path) -> dict[str, Any]:
    """`flywheel monitor run` in its own process, its RSS sampled from outside."""
    cli = Path(sys.executable).with_name("flywheel")
    command = [str(cli) if cli.exists() else "flywheel", "monitor", "run", "--json",
               "--no-alerts"]
    with measure() as m:
        child = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        with PeakRss([child.pid]) as peak:
            out, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"flywheel monitor run failed: {err.strip()[-500:]}")
    report = json.loads(out)
    drifted = sorted({r["subject"] for e in report for r in e["results"]
                      if r["status"] == "red" and r["subject"] != "dataset"})
    evaluated = sum(e["seconds"] for e in report)
    return {"wall": m.wall, "peak_rss": peak.peak, "drifted": drifted, "evaluated": evaluated}


def naive_side(table_path: str, queue: Any) -> None:
    """What a user writes without a monitoring tool: everything into pandas, then scipy."""
    import numpy as np
    import pandas as pd
    from deltalake import DeltaTable
    from scipy import stats

    with measure() as m:
        frame = DeltaTable(table_path).to_pandas()
        day = frame["event_time"].dt.floor("1D")
        reference = frame[day == pd.Timestamp(DAY)]
        drifted = set()
        for start in sorted(day.unique()):
            current = frame[day == start]
            if start == pd.Timestamp(DAY) or len(current) < 100:
                continue
            for column in frame.columns.drop("event_time"):
                ref, cur = reference[column], current[column]
                if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref):
                    p_value = stats.ks_2samp(ref.to_numpy(), cur.to_numpy()).pvalue
                else:
                    counts = pd.concat([ref.value_counts(), cur.value_counts()], axis=1)
                    p_value = stats.chi2_contingency(np.nan_to_num(counts.to_numpy().T))[1]
                if p_value < 0.05:
                    drifted.add(column)
    queue.put({"wall": m.wall, "peak_rss": m.peak_rss, "drifted": sorted(drifted)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="rows per day (reference and current)")
    parser.add_argument("--no-peer", action="store_true", help="measure Flywheel alone")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        print(f"building the table: 2 × {args.rows:,} rows × 50 columns", file=sys.stderr)
        project = build_project(Path(tmp), args.rows)
        ours = flywheel_side(project)
        rows = [("flywheel monitor run", ours)]
        if not args.no_peer:
            from flywheel.project import Project

            wide = Project.open(project).tables.handle("wide").uri
            theirs = in_child(naive_side, wide)
            rows.append(("pandas + scipy, whole table in memory", theirs))
        print(table([[name, f"{r['wall']:.2f} s", mib(r["peak_rss"])] for name, r in rows],
                    ["", "time", "peak RSS"]))
        print(f"flywheel's own figure for the evaluation (no process start, no imports): "
              f"{ours['evaluated']:.2f} s")
        print(f"flywheel drifted columns ({len(ours['drifted'])}): "
              + ", ".join(ours["drifted"]))
        if not args.no_peer:
            print(f"flywheel vs pandas + scipy: {theirs['wall'] / ours['wall']:.1f}x faster, "
                  f"{theirs['peak_rss'] / ours['peak_rss']:.1f}x less memory")
            print(f"naive drifted columns ({len(theirs['drifted'])}): "
                  + ", ".join(theirs["drifted"]))


if __name__ == "__main__":
    main()
