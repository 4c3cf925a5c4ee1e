"""Replay throughput: a whole event log rebuilt through a chain of three transforms.

The log holds add-to-cart events. Three SQL transforms, as a project defines them:

  1. clean_carts     incremental  drop quantity <= 0, lower-case currency, amount = price*qty
  2. enriched_carts  incremental  price band (CASE) and hour of day
  3. user_daily      table        per user and day: events, sum(amount), high-band events,
                                  last event time

`project.replay()` rebuilds all three from offset 0; events/s = log events / replay seconds.
Side by side in the same run: the same three steps in pandas (the log read with
`project.log.read(...).to_pandas()`, each step's output written to Parquet, as the derived
tables are written). Both final tables are compared row by row.

Building the log (ingest, plus the first build of the transforms) is not what is measured;
it is timed and reported on its own line. The replay and the pandas run each happen in a
fresh process, so each peak RSS is that path's own.

Needs pandas (`pip install pandas`; it is a dev-only dependency).

    python bench/replay.py                               # 10M events, 3 runs each
    python bench/replay.py --events 20000 --repeat 1     # quick check (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import in_child, machine, measure, mib, table

SCHEMA_KEY = "iglu:com.acme/add_to_cart/jsonschema/1-0-0"
LOG_TABLE = "com.acme/add_to_cart"
SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "user_id": {"type": "string", "maxLength": 64},
        "sku": {"type": "string", "maxLength": 32},
        # 0 is a valid event here (a "remove"): the clean step drops it.
        "quantity": {"type": "integer", "minimum": 0, "maximum": 1000},
        "price": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "eur", "usd", "gbp"]},
        "page": {"type": ["string", "null"], "maxLength": 2048},
    },
    "required": ["user_id", "sku", "quantity", "price", "currency"],
    "additionalProperties": False,
}

TRANSFORMS = {
    "clean_carts.sql": """\
-- inputs: carts=com.acme/add_to_cart
-- materialized: incremental
-- expect: not_null(user_id)
-- money as DECIMAL: its sums are exact, so every replay gives the same bits (a float
-- sum depends on the order parallel workers add rows in)
select user_id, sku, lower(currency) as currency, quantity, price,
       cast(price as decimal(18, 2)) * quantity as amount, event_time, event_date
from carts
where quantity > 0
""",
    "enriched_carts.sql": """\
-- inputs: clean_carts
-- materialized: incremental
select *,
       case when price < 10 then 'low' when price < 100 then 'mid' else 'high' end
           as price_band,
       hour(event_time) as hour_of_day
from clean_carts
""",
    "user_daily.sql": """\
-- inputs: enriched_carts
-- materialized: table
-- unique_key: user_id, event_date
select user_id, event_date, count(*) as events, sum(amount) as amount,
       count(*) filter (where price_band = 'high') as high_band_events,
       max(event_time) as last_event_time
from enriched_carts
group by user_id, event_date
""",
}
FINAL = "user_daily"
LOG_COLUMNS = ["user_id", "sku", "quantity", "price", "currency", "event_time", "event_date"]
KEYS = ["user_id", "event_date"]
MEMORY_LIMIT = 4 * 2**30
USERS = 100_000
DAYS = 20


def events(count: int) -> Iterator[dict[str, Any]]:
    """Add-to-cart events over 20 days, 100k users, 1 in 8 with quantity 0. Day and user
    vary independently, so the aggregate has up to 2M (user, day) groups. Strings are
    made once and looked up: generating must not dominate building a 10M-event log."""
    currencies = ("EUR", "usd", "GBP", "eur", "USD", "gbp")
    times = [[f"2026-11-{day:02d}T{t % 24:02d}:{t // 24 % 60:02d}:{t % 60:02d}Z"
              for t in range(1440)] for day in range(1, DAYS + 1)]
    users = [f"user-{u}" for u in range(USERS)]
    skus = [f"sku-{s}" for s in range(5000)]
    pages = [f"/products/{s}" for s in range(5000)]
    prices = [round(0.5 + p * 0.37, 2) for p in range(977)]
    for i in range(count):
        yield {
            "schema": SCHEMA_KEY,
            "event_time": times[(i // 997) % DAYS][i % 1440],
            "data": {"user_id": users[i * 7919 % USERS], "sku": skus[i % 5000],
                     "quantity": i % 8, "price": prices[i % 977],
                     "currency": currencies[i % 6],
                     "page": None if i % 4 else pages[i % 5000]},
        }


def new_project(root: Path) -> Any:
    from flywheel.project import Project

    project = Project.init(root)
    path = root / "schemas/com.acme/add_to_cart/jsonschema/1-0-0"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(SCHEMA))
    folder = root / "transforms"
    folder.mkdir(exist_ok=True)
    for name, sql in TRANSFORMS.items():
        (folder / name).write_text(sql)
    project.apply()
    return project


def build(root: Path, count: int) -> dict[str, Any]:
    """The log, through `project.ingest` in chunks; then a first build of the transforms,
    so the replay is a rebuild of tables that exist, as it is in a real project."""
    project = new_project(root)
    done, started = 0, time.perf_counter()

    def progress(n: int) -> None:
        nonlocal done
        done += n
        rate = done / (time.perf_counter() - started)
        print(f"\r  building the log: {done:,} / {count:,} events ({rate:,.0f}/s)",
              end="", file=sys.stderr, flush=True)

    with measure() as m:
        result = project.ingest(events(count), on_progress=progress)
    print(file=sys.stderr)
    assert result.accepted == count, (result.accepted, result.errors[:3])
    stats = next(s for s in project.log.stats() if s.events)  # the one log table
    with measure() as first:
        runs = project.transform()
    project.close()
    return {"wall": m.wall, "rate": m.rate(count), "peak": m.peak_rss, "stats": stats,
            "first": first.wall, "versions": {r.name: r.version for r in runs}}


# Each path runs in a fresh process (spawned), so its peak RSS is its own ----------------

def _replay(root: str, out: Any) -> None:
    import deltalake  # noqa: F401  (imports are not part of the replay)
    import duckdb  # noqa: F401

    from flywheel.project import Project

    with Project.open(root) as project:
        project.transform_graph()
        with measure() as m:
            runs = project.replay()
    out.put({"wall": m.wall, "cpu": m.cpu, "peak": m.peak_rss,
             "steps": [(r.name, r.mode, r.rows_in, r.rows_out, r.seconds) for r in runs]})


def _pandas(root: str, folder: str, out: Any) -> None:
    import deltalake  # noqa: F401  (imports are not part of the run)
    import numpy as np
    import pandas as pd
    import pyarrow.dataset
    import pyarrow.parquet  # noqa: F401

    from flywheel.project import Project

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    steps = []
    with Project.open(root) as project, measure() as m:
        t0 = time.perf_counter()
        df = project.log.read(LOG_TABLE, columns=LOG_COLUMNS).to_pandas()
        rows_in = len(df)
        steps.append(("read the log", rows_in, time.perf_counter() - t0))

        t0 = time.perf_counter()  # 1: clean
        df = df[df["quantity"] > 0]
        clean = pd.DataFrame({
            "user_id": df["user_id"], "sku": df["sku"], "currency": df["currency"].str.lower(),
            "quantity": df["quantity"], "price": df["price"],
            "amount": df["price"] * df["quantity"], "event_time": df["event_time"],
            "event_date": df["event_date"]})
        del df
        if clean["user_id"].isna().any():  # the not_null(user_id) expectation
            raise AssertionError("null user_id")
        clean.to_parquet(target / "clean_carts.parquet", index=False)
        steps.append(("clean_carts", len(clean), time.perf_counter() - t0))

        t0 = time.perf_counter()  # 2: enrich
        price = clean["price"].to_numpy()
        enriched = clean.assign(
            price_band=np.select([price < 10, price < 100], ["low", "mid"], "high"),
            hour_of_day=clean["event_time"].dt.hour)
        del clean
        enriched.to_parquet(target / "enriched_carts.parquet", index=False)
        steps.append(("enriched_carts", len(enriched), time.perf_counter() - t0))

        t0 = time.perf_counter()  # 3: aggregate
        daily = (enriched.assign(high=enriched["price_band"] == "high")
                 .groupby(KEYS, sort=False)
                 .agg(events=("amount", "size"), amount=("amount", "sum"),
                      high_band_events=("high", "sum"), last_event_time=("event_time", "max"))
                 .reset_index())
        del enriched
        daily.to_parquet(target / f"{FINAL}.parquet", index=False)
        steps.append((FINAL, len(daily), time.perf_counter() - t0))
    out.put({"wall": m.wall, "cpu": m.cpu, "peak": m.peak_rss, "steps": steps,
             "rows_in": rows_in})


# Comparing the two final tables --------------------------------------------------------

def compare(root: Path, folder: Path) -> tuple[bool, str]:
    """Same rows, sorted by (user_id, event_date): exact for counts and times, float
    tolerance for sum(amount) (the two engines add in different orders)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flywheel.project import Project

    columns = [*KEYS, "events", "amount", "high_band_events", "last_event_time"]
    types = [pa.string(), pa.date32(), pa.int64(), pa.float64(), pa.int64(),
             pa.timestamp("us", tz="UTC")]
    schema = pa.schema(list(zip(columns, types, strict=True)))
    with Project.open(root) as project:
        ours = project.tables.read(FINAL).select(columns)
    theirs = pq.read_table(folder / f"{FINAL}.parquet").select(columns)
    ours, theirs = (t.cast(schema).sort_by([(k, "ascending") for k in KEYS])
                    for t in (ours, theirs))
    if ours.num_rows != theirs.num_rows:
        return False, f"row counts differ: {ours.num_rows:,} vs {theirs.num_rows:,}"
    for name in columns:
        a, b = ours.column(name), theirs.column(name)
        same = (np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=1e-6)
                if name == "amount" else a.equals(b))
        if not same:
            return False, f"column {name} differs"
    return True, f"{ours.num_rows:,} rows equal (sum(amount) within 1e-9 relative)"


def content_hashes(root: Path, versions: dict[str, int | None]) -> dict[str, tuple[str, str]]:
    """Each table's content hash at the first build and now (after the replays)."""
    from flywheel.project import Project

    with Project.open(root) as project:
        return {name: (project.tables.content_hash(name, versions[name]),
                       project.tables.content_hash(name)) for name in versions}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the log")
    parser.add_argument("--repeat", type=int, default=3,
                        help="replays and pandas runs, interleaved; the median is reported")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = parser.parse_args()
    try:
        import pandas
    except ImportError:
        sys.exit("this benchmark needs pandas: pip install pandas")
    workdir = Path(tempfile.mkdtemp(prefix="flywheel-replay-"))
    root, folder = workdir / "project", workdir / "pandas"
    os.chdir(workdir)  # where DuckDB spills (`.tmp`), if it does
    replays: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    try:
        built = build(root, args.events)
        load = os.getloadavg()[0]
        for n in range(args.repeat):
            print(f"  replay and pandas, run {n + 1} of {args.repeat}", file=sys.stderr)
            replays.append(in_child(_replay, str(root)))
            runs.append(in_child(_pandas, str(root), str(folder)))
        match, detail = compare(root, folder)
        hashes = content_hashes(root, built["versions"])
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    count = args.events
    replay, pandas = _median(replays), _median(runs)
    ours_rate, theirs_rate = count / replay["wall"], count / pandas["wall"]
    print(f"\nreplay benchmark — {machine()}; load average {load:.2f} before the runs\n")
    stats = built["stats"]
    print(f"build the log (not measured below): {count:,} events ingested in "
          f"{built['wall']:.1f} s ({built['rate']:,.0f}/s; {stats.files:,} files, "
          f"{mib(stats.bytes)}); peak RSS {mib(built['peak'])}; first build of the "
          f"transforms {built['first']:.1f} s\n")
    peak_ours = max(r["peak"] for r in replays)
    peak_theirs = max(r["peak"] for r in runs)
    rows = [["flywheel replay (3 transforms)", f"{count:,}", f"{replay['wall']:.2f}",
             f"{ours_rate:,.0f}", f"{ours_rate / theirs_rate:.2f}x", mib(peak_ours)],
            ["pandas (same 3 steps, Parquet out)", f"{count:,}", f"{pandas['wall']:.2f}",
             f"{theirs_rate:,.0f}", "1.00x", mib(peak_theirs)]]
    print(table(rows, ["path", "events", "seconds", "events/s", "vs pandas", "peak RSS"]))
    print(f"\nmedian of {args.repeat}; all runs (s): flywheel "
          + ", ".join(f"{r['wall']:.2f}" for r in replays) + "; pandas "
          + ", ".join(f"{r['wall']:.2f}" for r in runs) + "; peak RSS is the highest run's")
    print("flywheel steps: " + "; ".join(
        f"{name} {seconds:.2f} s ({rows_out:,} rows)"
        for name, _, _, rows_out, seconds in replay["steps"]))
    print("pandas steps:   " + "; ".join(
        f"{name} {seconds:.2f} s ({rows:,} rows)" for name, rows, seconds in pandas["steps"]))
    print(f"CPU seconds: flywheel {replay['cpu']:.1f}, pandas {pandas['cpu']:.1f} "
          f"(wall {replay['wall']:.1f} and {pandas['wall']:.1f}; 2 cores = 2 CPU-s a second)")
    print(f"\nfinal tables match: {'yes' if match else 'NO'} — {detail}")
    print("content hashes, first build -> last replay: " + "; ".join(
        f"{name} {a[:12]}" + (" (same)" if a == b else f" -> {b[:12]} (DIFFERENT)")
        for name, (a, b) in hashes.items()))
    print(f"\nreplay vs pandas: {ours_rate / theirs_rate:.2f}x the events/s; peak RSS "
          f"{mib(peak_ours)} vs {mib(peak_theirs)}")
    target = "met" if ours_rate >= 1_000_000 else "NOT met"
    print(f"target >= 1,000,000 events/s: {target} ({ours_rate:,.0f}/s)")
    for name, peak in (("flywheel replay", peak_ours), ("pandas", peak_theirs)):
        if peak > MEMORY_LIMIT:
            print(f"\n!!! {name.upper()} PEAK RSS {mib(peak)} IS OVER THE 4 GiB LIMIT !!!")
    if not match:
        sys.exit(1)


if __name__ == "__main__":
    main()
