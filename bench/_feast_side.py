"""The Feast half of bench/features.py. Runs in Feast's own virtual environment (not
Flywheel's), as a subprocess, and prints one JSON line with its timings on stdout.

    <feast-venv>/bin/python bench/_feast_side.py offline --data DIR --repo DIR --out FILE ...

Imports nothing from Flywheel: only Feast, pandas, pyarrow, psutil and `_harness` (which
needs only psutil), so its peak RSS is measured the same way as the Flywheel side's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import measure

FEATURES = ["clicks", "sessions", "spend", "score"]
INT_FEATURES = {"clicks", "sessions"}


def _yaml(repo: Path, online: str, project: str, offline: str = "file") -> str:
    data = repo / "data"
    if online.startswith("redis://"):  # redis://host:port/db -> host:port,db=N
        rest = online.split("://", 1)[1].split("?", 1)[0]
        host, _, db = rest.partition("/")
        online_store = f"  type: redis\n  connection_string: \"{host},db={db or 0}\"\n"
    else:
        online_store = f"  type: sqlite\n  path: {data / 'online.db'}\n"
    # The registry cached for good (cache_ttl_seconds: 0), as Feast's docs advise for
    # online serving: no registry refresh lands inside a timed read.
    return (f"project: {project}\nregistry:\n  path: {data / 'registry.db'}\n"
            "  cache_ttl_seconds: 0\nprovider: local\n"
            f"online_store:\n{online_store}offline_store:\n  type: {offline}\n"
            "entity_key_serialization_version: 3\n")


def _store(repo: Path, views: dict[str, dict[str, Any]], online: str = "sqlite",
           project: str = "flywheel_bench", offline: str = "file") -> Any:
    """A feature repo: the user entity and one FeatureView per entry of `views`
    ({name: {"path": parquet, "features": {name: "int"|"float"}, "ttl_seconds": s}})."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(_yaml(repo, online, project, offline))
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    objects: list[Any] = [user]
    for name, view in views.items():
        objects.append(FeatureView(
            name=name, entities=[user], ttl=dt.timedelta(seconds=view["ttl_seconds"]),
            schema=[Field(name=f, dtype=Int64 if kind == "int" else Float64)
                    for f, kind in view["features"].items()],
            source=FileSource(name=f"{name}_source", path=view["path"],
                              timestamp_field="event_time"),
            online=True))
    store = FeatureStore(repo_path=str(repo))
    store.apply(objects)
    return store


def offline(args: argparse.Namespace) -> dict[str, Any]:
    import pyarrow.parquet as pq

    data = Path(args.data)
    t0 = time.perf_counter()
    store = _store(Path(args.repo), {"user_features": {
        "path": str(data / "user_features.parquet"), "ttl_seconds": args.ttl_seconds,
        "features": {f: "int" if f in INT_FEATURES else "float" for f in FEATURES}}},
        offline=args.offline_store)
    # As Feast's docs build it: a pandas frame with the join key and an event_timestamp
    # column (UTC, so Feast's fast path applies: no per-row time-zone fix-up).
    entity_df = pq.read_table(data / "entity_df.parquet").to_pandas()
    setup = time.perf_counter() - t0
    refs = [f"user_features:{f}" for f in FEATURES]
    with measure() as m:
        job = store.get_historical_features(entity_df=entity_df, features=refs)
        result = job.to_df()
    rows = len(result)
    result[["row_id", *FEATURES]].to_parquet(args.out, index=False)
    return {"wall": m.wall, "cpu": m.cpu, "peak": m.peak_rss, "rows": rows, "setup": setup}


def online(args: argparse.Namespace) -> dict[str, Any]:
    """Materialise, then time each read of each case of the spec (one call each, as a
    model server calls: the features, the entity ids, `.to_dict()`)."""
    spec = json.loads(Path(args.spec).read_text())
    t0 = time.perf_counter()
    store = _store(Path(args.repo), spec["views"], args.online, args.project)
    setup = time.perf_counter() - t0
    now = dt.datetime.now(dt.UTC)
    with measure() as mat:
        store.materialize(start_date=now - dt.timedelta(days=30), end_date=now)
    latencies: dict[str, list[int]] = {}
    with measure() as m:
        for name, case in spec["cases"].items():
            features, batches = case["features"], case["entities"]
            for ids in batches[:spec["warmup"]]:
                store.get_online_features(features=features,
                                          entity_rows={"user_id": ids}).to_dict()
            times = []
            for ids in batches:
                start = time.perf_counter_ns()
                store.get_online_features(features=features,
                                          entity_rows={"user_id": ids}).to_dict()
                times.append(time.perf_counter_ns() - start)
            latencies[name] = times
    check = store.get_online_features(features=spec["check"]["features"],
                                      entity_rows={"user_id": spec["check"]["ids"]}).to_dict()
    return {"setup": setup, "materialize": mat.wall, "materialize_peak": mat.peak_rss,
            "peak": m.peak_rss, "latencies": latencies, "check": check}


def teardown(args: argparse.Namespace) -> dict[str, Any]:
    """Drop what the repo put in its online store (the Redis keys of its project)."""
    from feast import FeatureStore

    FeatureStore(repo_path=args.repo).teardown()
    return {"teardown": True}


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    off = commands.add_parser("offline", help="time get_historical_features().to_df()")
    off.add_argument("--data", required=True, help="folder with the two Parquet files")
    off.add_argument("--repo", required=True, help="an empty folder for the feature repo")
    off.add_argument("--out", required=True, help="where to write the result (Parquet)")
    off.add_argument("--ttl-seconds", type=float, required=True)
    off.add_argument("--offline-store", default="file",
                     help="file (dask, the default) or duckdb (needs feast[duckdb])")
    on = commands.add_parser("online", help="materialise, then time get_online_features")
    on.add_argument("--spec", required=True, help="JSON: views, cases, check ids, warmup")
    on.add_argument("--repo", required=True, help="an empty folder for the feature repo")
    on.add_argument("--online", default="sqlite", help="sqlite, or redis://host:port/db")
    on.add_argument("--project", default="flywheel_bench", help="Feast project name")
    down = commands.add_parser("teardown", help="drop the repo's online data")
    down.add_argument("--repo", required=True)
    args = parser.parse_args()
    import feast

    report = {"offline": offline, "online": online, "teardown": teardown}[args.command](args)
    report["feast_version"] = feast.__version__
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
