"""Feature store: point-in-time training sets (and online reads), side by side with Feast.

Part 1, the point-in-time join. One generated data set, written once to Parquet and read
by both sides:

  * a feature table: `user_features` (user_id, event_time, clicks, sessions, spend, score),
    100 rows per user spread over 90 days, one value in 30 of `spend` null, in time order;
  * an entity frame: (row_id, user_id, event_timestamp), random users and times, 1 in 100
    rows exactly at a feature row's timestamp and 1 in 100 exactly one TTL after one (the
    edges of the join), every (user_id, event_timestamp) distinct.

The feature view's TTL is 1 day (--ttl-hours). Flywheel: the table is written as a derived
table of a project whose definitions.py declares the Entity and FeatureView, and
`project.features.get_historical_features(...)` is timed, in a fresh process. Feast: a
FileSource on the same Parquet file, a repo with the local provider and the file offline
store (or, with --feast-offline-store duckdb, its DuckDB store), and
`get_historical_features(...).to_df()` timed, in Feast's own virtual environment (a
subprocess: bench/_feast_side.py), which reports its timings as JSON. Both results are
compared row by row (sorted by row_id). Each side's peak RSS is its own process's.

Part 2, online reads: three views x 20 features materialised for 100k users, then 1 entity
x 20 features and 100 entities x 3 views read one at a time, in process
(`project.features.get_online_features` / Feast's `get_online_features(...).to_dict()`)
and over HTTP (`flywheel serve` / `feast serve`), on SQLite and on Redis (when it answers
at --redis-url): p50 / p99, and the answers compared. If `FeatureStore.materialize` or
`get_online_features` is missing, the run says "not yet measured".

Feast is installed in its own venv (default /tmp/feast-venv, made on first use with
`pip install feast[redis]==0.67.0 psutil`); if that fails the Flywheel side still runs.
A Feast run is stopped past --feast-timeout seconds or --feast-memory-gib of RSS.

    python bench/features.py                                  # 1M entity rows x 10M rows
    python bench/features.py --repeat 3 --skip-online         # Part 1 only, median of 3
    python bench/features.py --entities 2000 --features-rows 20000 --skip-feast   # CI
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import in_child, machine, measure, mib, table

FEATURES = ["clicks", "sessions", "spend", "score"]
ROWS_PER_USER = 100
SPAN = dt.timedelta(days=90)
TTL_HOURS = 24.0
START = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
FEAST_VERSION = "0.67.0"
"""Pinned for reproducible figures; the newest at the time of writing (2026-11)."""
FEAST_SIDE = Path(__file__).resolve().parent / "_feast_side.py"
DEFINITIONS = '''\
from datetime import timedelta

from flywheel.features import Entity, FeatureView

user = Entity(name="user", join_keys=["user_id"])
user_features = FeatureView(name="user_features", entities=[user], source="user_features",
                            timestamp_column="event_time",
                            ttl=timedelta(seconds={ttl_seconds}),
                            features={features!r})
'''


# The data, written once --------------------------------------------------------------

def _micros(when: dt.datetime) -> int:
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def generate(folder: Path, entities: int, feature_rows: int, ttl: dt.timedelta,
             seed: int = 7) -> dict[str, Any]:
    """Both Parquet files; returns counts of the edge rows that made it in."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    users = max(1, feature_rows // ROWS_PER_USER)
    per_user = -(-feature_rows // users)
    start, span, ttl = _micros(START), SPAN // dt.timedelta(microseconds=1), \
        ttl // dt.timedelta(microseconds=1)
    slot = span // per_user
    # Row i is user i % users, that user's k-th row, at a random time inside its k-th slot:
    # a user's rows never share a timestamp, and the file is in time order.
    i = np.arange(feature_rows, dtype=np.int64)
    times = start + (i // users) * slot + rng.integers(0, slot, feature_rows)
    spend = np.round(rng.random(feature_rows) * 500, 2)
    pq.write_table(pa.table({
        "user_id": i % users,
        "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "clicks": rng.integers(0, 1000, feature_rows),
        "sessions": rng.integers(0, 50, feature_rows),
        "spend": pa.array(spend, mask=rng.random(feature_rows) < 1 / 30),
        "score": rng.random(feature_rows),
    }), folder / "user_features.parquet", row_group_size=1_000_000)
    del spend

    # Entity rows: random users at random times from a day before the first feature row to
    # a day after the last; 1 % exactly at a feature row's time, 1 % exactly one TTL after.
    who = rng.integers(0, users, entities)
    when = start - 86_400_000_000 + rng.integers(0, span + 2 * 86_400_000_000, entities)
    mode = rng.random(entities)
    k = rng.integers(0, per_user, entities)
    row = k * users + who
    exists = row < feature_rows
    row = np.where(exists, row, 0)
    on_row, on_ttl = (mode < 0.01) & exists, (mode >= 0.01) & (mode < 0.02) & exists
    when = np.where(on_row, times[row], when)
    when = np.where(on_ttl, times[row] + ttl, when)
    # Feast keeps one row per (join key, timestamp), so every pair is made distinct: a
    # repeated pair moves on by a microsecond (it then lies just off its edge).
    while True:
        order = np.lexsort((when, who))
        same = np.zeros(entities, dtype=bool)
        same[order[1:]] = (who[order[1:]] == who[order[:-1]]) & \
            (when[order[1:]] == when[order[:-1]])
        if not same.any():
            break
        when[same] += 1
    # Rows still on an edge, and TTL-edge rows whose answer is that edge row (no newer row
    # of the user before it): there the two stores' inclusive/exclusive choices show.
    on_row &= when == times[row]
    on_ttl &= when == times[row] + ttl
    following = row + users
    newer = (following < feature_rows) & \
        (times[np.minimum(following, feature_rows - 1)] <= when)
    edge_ttl = on_ttl & ~newer
    pq.write_table(pa.table({
        "row_id": np.arange(entities, dtype=np.int64),
        "user_id": who,
        "event_timestamp": pa.array(when, pa.timestamp("us", tz="UTC")),
    }), folder / "entity_df.parquet")
    return {"users": users, "on_row": int(on_row.sum()), "on_ttl": int(edge_ttl.sum())}


# Flywheel ----------------------------------------------------------------------------

def setup_flywheel(root: Path, data: Path, ttl: dt.timedelta) -> None:
    """A project with definitions.py, and the feature table written as a derived table,
    sorted by entity and time as a transform writes a feature view's source."""
    import pyarrow.parquet as pq

    from flywheel.project import Project

    with Project.init(root) as project:
        (root / "definitions.py").write_text(DEFINITIONS.format(
            ttl_seconds=int(ttl.total_seconds()), features=FEATURES))
        table = pq.read_table(data / "user_features.parquet")
        project.tables.handle("user_features").overwrite(
            table.sort_by([("user_id", "ascending"), ("event_time", "ascending")]))


def _flywheel(root: str, data: str, out: str, queue: Any) -> None:
    """In a fresh (spawned) process, so the peak RSS is this path's own."""
    import deltalake  # noqa: F401  (imports are not part of the join)
    import duckdb  # noqa: F401
    import pyarrow.parquet as pq

    from flywheel.project import Project

    entity = pq.read_table(Path(data) / "entity_df.parquet")
    refs = [f"user_features:{f}" for f in FEATURES]
    with Project.open(root) as project:
        assert project.features.registry.views  # definitions.py loaded (not measured)
        with measure() as m:
            result = project.features.get_historical_features(entity, features=refs)
            arrow = result.to_arrow()
        with measure() as p:
            frame = result.to_pandas()
    del frame
    pq.write_table(arrow.select(["row_id", *FEATURES]), out)
    queue.put({"wall": m.wall, "cpu": m.cpu, "peak": max(m.peak_rss, p.peak_rss),
               "pandas": p.wall, "rows": arrow.num_rows, "versions": result.table_versions})


# Feast, in its own virtual environment -----------------------------------------------

def feast_python(path: str | None) -> tuple[str | None, str]:
    """(python with Feast, version) or (None, why not). Makes the default venv if need be."""
    venv = Path(tempfile.gettempdir()) / "feast-venv"
    python = Path(path) if path else venv / "bin" / "python"

    def probe() -> str | None:
        if not python.exists():
            return None
        done = subprocess.run([str(python), "-c", "import feast, psutil; print(feast.__version__)"],
                              capture_output=True, text=True, timeout=300)
        return done.stdout.strip() if done.returncode == 0 else None

    version = probe()
    if version or path:
        return (str(python), version) if version else (None, f"{python} cannot import feast")
    print(f"  installing Feast {FEAST_VERSION} into {venv} (once)", file=sys.stderr)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"],
             [str(python), "-m", "pip", "install", "-q", f"feast[redis]=={FEAST_VERSION}",
              "psutil"]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"`{' '.join(step[-3:])}` failed: {' / '.join(tail)}"
    version = probe()
    return (str(python), version) if version else (None, "Feast installed but not importable")


def run_feast(python: str, argv: list[str], timeout: float,
              memory_limit: int) -> dict[str, Any]:
    """Run _feast_side.py; kill it past `timeout` seconds or `memory_limit` bytes of RSS
    (this box is shared: a runaway dask merge must not take it down)."""
    import psutil

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([python, str(FEAST_SIDE), *argv], stdout=out, stderr=err,
                                text=True)
        started, peak, why = time.monotonic(), 0, None
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            rss = 0
            try:
                for p in [watched, *watched.children(recursive=True)]:
                    rss += p.memory_info().rss
            except psutil.Error:
                pass
            peak = max(peak, rss)
            if rss > memory_limit:
                why = f"killed: RSS {mib(rss)} passed the {mib(memory_limit)} limit"
            elif time.monotonic() - started > timeout:
                why = f"killed: did not finish within {timeout:.0f} s"
            if why:
                proc.kill()
                proc.wait()
                return {"error": why, "elapsed": time.monotonic() - started, "peak": peak}
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        lines = out.read().strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail = err.read().strip().splitlines()[-5:]
            return {"error": f"exit code {proc.returncode}: " + " / ".join(tail),
                    "elapsed": time.monotonic() - started, "peak": peak}
        report: dict[str, Any] = json.loads(lines[-1])
        return report


# Comparing ---------------------------------------------------------------------------

def compare(ours: Path, theirs: Path) -> tuple[bool, str, dict[str, Any]]:
    """Every row Feast returns is one of ours with every feature equal (null where the other
    is null). Feast's file offline store leaves out an entity row that has no feature row
    within the TTL (its TTL filter drops the row instead of nulling its features); each row
    it left out must be one where ours has every feature null."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    a, b = (pq.read_table(p).sort_by("row_id") for p in (ours, theirs))
    kept = pc.is_in(a.column("row_id"), value_set=b.column("row_id"))
    left_out = a.filter(pc.invert(kept))
    a = a.filter(kept)
    if a.num_rows != b.num_rows:
        return False, f"feast returned {b.num_rows - a.num_rows:,} rows that are not ours", {}
    stats: dict[str, Any] = {"left_out": left_out.num_rows, "nulls": {}}
    for name in FEATURES:
        x, y = (t.column(name).cast(pa.float64()).to_numpy() for t in (a, b))
        if not np.array_equal(x, y, equal_nan=True):
            differ = ~((x == y) | (np.isnan(x) & np.isnan(y)))
            first = int(np.flatnonzero(differ)[0])
            return False, (f"{name} differs in {int(differ.sum()):,} rows (first: row_id "
                           f"{a.column('row_id')[first].as_py()}: {x[first]} vs {y[first]})"), {}
        stats["nulls"][name] = int(np.isnan(x).sum()) + left_out.num_rows
        if left_out.column(name).null_count != left_out.num_rows:
            return False, (f"feast left out rows where {name} has a value "
                           f"({left_out.num_rows - left_out.column(name).null_count:,})"), {}
    return True, (f"{a.num_rows:,} rows x {len(FEATURES)} features equal; the "
                  f"{left_out.num_rows:,} rows feast left out have every feature null in "
                  "ours"), stats


# Part 2: online reads ------------------------------------------------------------------

ONLINE_VIEWS = {"user_profile": "p", "user_activity": "a", "user_spend": "s"}
ONLINE_FEATURES = 20
ONLINE_TTL = dt.timedelta(days=7)
ENTITIES_PER_READ = 100
CASE_ONE = f"1 entity x {ONLINE_FEATURES} features"
CASE_MANY = f"{ENTITIES_PER_READ} entities x {len(ONLINE_VIEWS)} views"


def online_status() -> str | None:
    """None when the online API exists (Part 2 can run), else why not."""
    from flywheel.features.store import FeatureStore

    missing = [n for n in ("materialize", "get_online_features") if not hasattr(FeatureStore, n)]
    return (f"FeatureStore.{' / '.join(missing)} not in this build" if missing else None)


def _view_features(view: str) -> dict[str, str]:
    prefix = ONLINE_VIEWS[view]
    return {f"{prefix}{i:02d}": "int" if i < ONLINE_FEATURES // 2 else "float"
            for i in range(ONLINE_FEATURES)}


def generate_online(folder: Path, users: int, requests: int, warmup: int,
                    seed: int = 11) -> Path:
    """One Parquet file per view (every user, one row, updated in the last 6 hours) and a
    JSON spec both sides read: the views, the reads of each case, the ids to compare."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    now = _micros(dt.datetime.now(dt.UTC))
    views: dict[str, Any] = {}
    for view in ONLINE_VIEWS:
        features = _view_features(view)
        columns: dict[str, Any] = {
            "user_id": np.arange(users, dtype=np.int64),
            "event_time": pa.array(now - rng.integers(1_000_000, 6 * 3_600_000_000, users),
                                   pa.timestamp("us", tz="UTC"))}
        for name, kind in features.items():
            columns[name] = rng.integers(0, 1_000_000, users) if kind == "int" \
                else np.round(rng.random(users) * 1000, 3)
        path = folder / f"online_{view}.parquet"
        pq.write_table(pa.table(columns), path)
        views[view] = {"path": str(path), "features": features,
                       "ttl_seconds": ONLINE_TTL.total_seconds()}
    every = [f"{v}:{f}" for v in ONLINE_VIEWS for f in _view_features(v)]
    first = next(iter(ONLINE_VIEWS))
    spec = {
        "views": views, "warmup": warmup,
        "cases": {
            CASE_ONE: {"features": [f"{first}:{f}" for f in _view_features(first)],
                       "entities": [[int(u)] for u in rng.integers(0, users, requests)]},
            CASE_MANY: {"features": every,
                        "entities": rng.integers(0, users, (requests, ENTITIES_PER_READ))
                        .tolist()}},
        "check": {"features": every,
                  "ids": rng.choice(users, min(users, ENTITIES_PER_READ), replace=False)
                  .tolist()},
    }
    path = folder / "online_spec.json"
    path.write_text(json.dumps(spec))
    return path


def setup_online_project(root: Path, spec_path: Path, online_url: str | None) -> None:
    """A project whose definitions.py declares the three views, their tables written as
    derived tables, and `online:` in flywheel.yaml (default: the project's SQLite file)."""
    import pyarrow.parquet as pq
    import yaml

    from flywheel.project import Project

    spec = json.loads(spec_path.read_text())
    Project.init(root).close()
    if online_url:
        config = yaml.safe_load((root / "flywheel.yaml").read_text()) or {}
        config["online"] = online_url
        (root / "flywheel.yaml").write_text(yaml.safe_dump(config))
    lines = ["from datetime import timedelta", "", "from flywheel.features import Entity, "
             "FeatureView", "", 'user = Entity(name="user", join_keys=["user_id"])']
    for view, info in spec["views"].items():
        lines.append(f'{view} = FeatureView(name="{view}", entities=[user], source="{view}", '
                     f'timestamp_column="event_time", ttl=timedelta(seconds='
                     f'{int(info["ttl_seconds"])}), features={list(info["features"])!r})')
    (root / "definitions.py").write_text("\n".join(lines) + "\n")
    with Project.open(root) as project:
        for view, info in spec["views"].items():
            project.tables.handle(view).overwrite(pq.read_table(info["path"]))


def _online(root: str, spec_path: str, queue: Any) -> None:
    """In a fresh process: materialise, then time each read (in process)."""
    from flywheel.project import Project

    spec = json.loads(Path(spec_path).read_text())
    latencies: dict[str, list[int]] = {}
    with Project.open(root) as project:
        features = project.features
        with measure() as mat:
            runs = features.materialize()
        with measure() as m:
            for name, case in spec["cases"].items():
                refs, batches = case["features"], case["entities"]
                for ids in batches[:spec["warmup"]]:
                    features.get_online_features(features=refs, entities={"user_id": ids})
                times = []
                for ids in batches:
                    start = time.perf_counter_ns()
                    features.get_online_features(features=refs, entities={"user_id": ids})
                    times.append(time.perf_counter_ns() - start)
                latencies[name] = times
        check = features.get_online_features(features=spec["check"]["features"],
                                             entities={"user_id": spec["check"]["ids"]})
    queue.put({"materialize": mat.wall, "materialize_peak": mat.peak_rss,
               "materialized": sum(r.rows for r in runs), "peak": m.peak_rss,
               "latencies": latencies, "check": check.to_dict()})


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(port: int, path: str, proc: subprocess.Popen[bytes],
               timeout: float = 120) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before it was ready")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer on port {port} within {timeout:.0f} s")


def http_reads(command: list[str], port: int, ready: str, path: str,
               spec: dict[str, Any]) -> dict[str, Any]:
    """Start a server, then POST every read of every case on one keep-alive connection,
    one at a time; latency is request sent to response read, as the client sees it."""
    # The server's output goes to a file: a pipe nobody reads could fill and block it.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                _wait_http(port, ready, proc)
            except RuntimeError as exc:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"{exc}: {' / '.join(tail)}") from None
            return _post_all(proc.pid, port, path, spec)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _post_all(pid: int, port: int, path: str, spec: dict[str, Any]) -> dict[str, Any]:
    import http.client

    import psutil

    from _harness import PeakRss

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    latencies: dict[str, list[int]] = {}
    # The server and its workers (`feast serve` runs gunicorn: a master and a worker).
    pids = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    with PeakRss(pids) as peak:
        for name, case in spec["cases"].items():
            bodies = [json.dumps({"features": case["features"],
                                  "entities": {"user_id": ids}}).encode()
                      for ids in case["entities"]]
            times = []
            for n, body in enumerate([*bodies[:spec["warmup"]], *bodies]):
                start = time.perf_counter_ns()
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                answer = response.read()
                elapsed = time.perf_counter_ns() - start
                if response.status != 200:
                    raise RuntimeError(f"{path}: HTTP {response.status}: {answer[:300]!r}")
                if n >= spec["warmup"]:
                    times.append(elapsed)
            latencies[name] = times
    conn.close()
    return {"latencies": latencies, "peak": peak.peak}


def compare_online(ours: dict[str, list[Any]], theirs: dict[str, list[Any]],
                   features: list[str]) -> tuple[bool, str]:
    names = [ref.split(":", 1)[1] for ref in features]
    if ours.get("user_id") != theirs.get("user_id"):
        return False, "the entity ids differ"
    for name in names:
        if ours.get(name) != theirs.get(name):
            return False, f"{name} differs"
    return True, (f"{len(ours['user_id'])} entities x {len(names)} features equal")


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] / 1e6


def redis_available(url: str) -> str | None:
    """None when Redis answers at `url`, else why not."""
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def drop_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def bench_online(args: argparse.Namespace, workdir: Path, feast: str | None
                 ) -> dict[str, Any]:
    """Every backend: Flywheel in process, over HTTP; Feast in process, over HTTP."""
    import uuid

    folder = workdir / "online"
    folder.mkdir()
    spec_path = generate_online(folder, args.online_users, args.online_reads, args.warmup)
    spec = json.loads(spec_path.read_text())
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    why_not_redis = "skipped (--skip-redis)" if args.skip_redis else \
        redis_available(args.redis_url)
    if why_not_redis is None:
        backends.append(("redis", args.redis_url))
    results: dict[str, Any] = {"backends": {}, "redis": why_not_redis}
    for backend, url in backends:
        tag = uuid.uuid4().hex[:10]
        prefix = f"flywheel_bench_{tag}:"
        ours_url = None if url is None else \
            f"{url}{'&' if '?' in url else '?'}prefix={prefix}"
        root = folder / f"project-{backend}"
        setup_online_project(root, spec_path, ours_url)
        out: dict[str, Any] = {}
        repo = folder / f"feast-{backend}"
        try:
            print(f"  online ({backend}): flywheel in process", file=sys.stderr)
            out["flywheel"] = in_child(_online, str(root), str(spec_path))
            if not args.skip_http:
                print(f"  online ({backend}): flywheel over HTTP", file=sys.stderr)
                port = _free_port()
                out["flywheel_http"] = http_reads(
                    [sys.executable, "-m", "flywheel.cli.main", "--project", str(root),
                     "serve", "--port", str(port)], port, "/healthz",
                    "/v1/features/online", spec)
            if feast:
                print(f"  online ({backend}): feast in process", file=sys.stderr)
                out["feast"] = run_feast(feast, [
                    "online", "--spec", str(spec_path), "--repo", str(repo),
                    "--online", url or "sqlite", "--project", f"flywheel_bench_{tag}"],
                    args.feast_timeout, int(args.feast_memory_gib * 2**30))
                if "error" not in out["feast"] and not args.skip_http:
                    print(f"  online ({backend}): feast over HTTP", file=sys.stderr)
                    port = _free_port()
                    out["feast_http"] = http_reads(
                        [str(Path(feast).parent / "feast"), "-c", str(repo), "serve",
                         "-h", "127.0.0.1", "-p", str(port), "--no-access-log", "-w", "1",
                         "--max-requests", "0"],
                        port, "/health", "/get-online-features", spec)
        finally:
            if url is not None:
                drop_redis_prefix(url, prefix)
                if feast and repo.exists():
                    run_feast(feast, ["teardown", "--repo", str(repo)], 300, 2**34)
        if "feast" in out and "error" not in out["feast"]:
            out["match"] = compare_online(out["flywheel"]["check"], out["feast"]["check"],
                                          spec["check"]["features"])
        results["backends"][backend] = out
    return results


def print_online(args: argparse.Namespace, results: dict[str, Any],
                 feast_version: str) -> None:
    print(f"\nPart 2 — online reads: {args.online_users:,} users, {len(ONLINE_VIEWS)} views x "
          f"{ONLINE_FEATURES} features ({ONLINE_FEATURES // 2} int, "
          f"{ONLINE_FEATURES // 2} float), TTL {ONLINE_TTL.days} days; {args.online_reads:,} "
          f"reads per case, one at a time, after {args.warmup} warm-up reads")
    rows: list[list[str]] = []
    for backend, out in results["backends"].items():
        feast = out.get("feast") if "error" not in out.get("feast", {"error": 1}) else None
        for case in (CASE_ONE, CASE_MANY):
            for label, key, ref in (("flywheel in process", "flywheel", "feast"),
                                    (f"feast {feast_version} in process", "feast", None),
                                    ("flywheel HTTP", "flywheel_http", "feast_http"),
                                    (f"feast {feast_version} HTTP", "feast_http", None)):
                got = out.get(key)
                if not got or "error" in got:
                    continue
                lat = got["latencies"][case]
                other = out.get(ref) if ref else None
                vs = "1.0x" if ref is None else "n/a"
                if other and "error" not in other:
                    vs = f"{_pct(other['latencies'][case], 0.99) / _pct(lat, 0.99):.1f}x"
                rows.append([backend, case, label, f"{_pct(lat, 0.50):.3f}",
                             f"{_pct(lat, 0.99):.3f}", f"{max(lat) / 1e6:.2f}", vs,
                             mib(got["peak"])])
        if feast is None and "feast" in out:
            rows.append([backend, "-", f"feast {feast_version}", "-", "-", "-", "-",
                         out["feast"]["error"][:60]])
    print(table(rows, ["store", "read", "path", "p50 ms", "p99 ms", "max ms", "p99 vs feast",
                       "peak RSS"]))
    for backend, out in results["backends"].items():
        ours = out["flywheel"]
        line = (f"{backend}: materialize {ours['materialized']:,} rows: flywheel "
                f"{ours['materialize']:.1f} s (peak {mib(ours['materialize_peak'])})")
        theirs = out.get("feast")
        if theirs and "error" not in theirs:
            line += (f", feast {theirs['materialize']:.1f} s (peak "
                     f"{mib(theirs['materialize_peak'])}); answers match: "
                     f"{'yes' if out['match'][0] else 'NO'} — {out['match'][1]}")
        print(line)
    if results["redis"]:
        print(f"redis: not measured — {results['redis']}")
    for backend, out in results["backends"].items():
        one = _pct(out["flywheel"]["latencies"][CASE_ONE], 0.99)
        verdict = [f"in-process p99 for 1 entity {one:.3f} ms (target <= 1 ms: "
                   f"{'met' if one <= 1 else 'NOT met'})"]
        theirs = out.get("feast")
        if theirs and "error" not in theirs:
            for case in (CASE_ONE, CASE_MANY):
                ratio = _pct(theirs["latencies"][case], 0.99) / \
                    _pct(out["flywheel"]["latencies"][case], 0.99)
                verdict.append(f"{case}: p99 {ratio:.1f}x lower than feast (target >= 5x: "
                               f"{'met' if ratio >= 5 else 'NOT met'})")
        print(f"{backend} against the targets: " + "; ".join(verdict))


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]


def bench_offline(args: argparse.Namespace, workdir: Path, feast: str | None
                  ) -> dict[str, Any]:
    data, root = workdir / "data", workdir / "project"
    print("  generating the data", file=sys.stderr)
    t0 = time.perf_counter()
    ttl = dt.timedelta(hours=args.ttl_hours)
    info = generate(data, args.entities, args.features_rows, ttl)
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    setup_flywheel(root, data, ttl)
    setup = time.perf_counter() - t0
    ours_runs: list[dict[str, Any]] = []
    feast_runs: list[dict[str, Any]] = []
    for n in range(args.repeat):
        print(f"  point-in-time join: flywheel, run {n + 1} of {args.repeat}", file=sys.stderr)
        ours_runs.append(in_child(_flywheel, str(root), str(data),
                                   str(workdir / "flywheel.parquet")))
        if feast:
            print(f"  point-in-time join: feast, run {n + 1} of {args.repeat}",
                  file=sys.stderr)
            feast_runs.append(run_feast(feast, [
                "offline", "--data", str(data), "--repo", str(workdir / f"feast-repo-{n}"),
                "--out", str(workdir / "feast.parquet"),
                "--ttl-seconds", str(ttl.total_seconds()),
                "--offline-store", args.feast_offline_store],
                args.feast_timeout, int(args.feast_memory_gib * 2**30)))
            if "error" in feast_runs[-1]:
                break
    feast_ok = bool(feast_runs) and all("error" not in r for r in feast_runs)
    match = compare(workdir / "flywheel.parquet", workdir / "feast.parquet") \
        if feast_ok else None
    return {"info": info, "generated": generated, "setup": setup, "ours": ours_runs,
            "feast": feast_runs, "feast_ok": feast_ok, "match": match}


def print_offline(args: argparse.Namespace, result: dict[str, Any], feast_version: str) -> None:
    count, info = args.entities, result["info"]
    ours_runs, feast_runs = result["ours"], result["feast"]
    ours = _median(ours_runs)
    print(f"data: {count:,} entity rows ({info['users']:,} users) x {args.features_rows:,} "
          f"feature rows ({len(FEATURES)} features, TTL {args.ttl_hours:g} h), "
          f"generated in {result['generated']:.1f} s; {info['on_row']:,} entity rows exactly "
          f"at a feature row's time, {info['on_ttl']:,} exactly one TTL after their latest "
          "row")
    print("flywheel setup (not measured): project + derived table written, sorted by user "
          f"and time as transforms write a feature view's source, in {result['setup']:.1f} s\n")
    print("Part 1 — point-in-time join, get_historical_features")
    rows: list[list[str]] = []
    theirs = _median(feast_runs) if result["feast_ok"] else None
    base = theirs["wall"] if theirs else None
    vs = (lambda s: f"{base / s:.1f}x") if base else (lambda s: "n/a")
    rows.append(["flywheel (Arrow table)", f"{count:,}", f"{ours['wall']:.2f}",
                 f"{count / ours['wall']:,.0f}", vs(ours["wall"]), mib(ours["peak"])])
    both = ours["wall"] + ours["pandas"]
    rows.append(["flywheel (+ .to_pandas())", f"{count:,}", f"{both:.2f}",
                 f"{count / both:,.0f}", vs(both), mib(ours["peak"])])
    label = f"feast {feast_version} {args.feast_offline_store} offline store (.to_df())"
    if theirs:
        rows.append([label, f"{count:,}", f"{theirs['wall']:.2f}",
                     f"{count / theirs['wall']:,.0f}", "1.0x", mib(theirs["peak"])])
    elif feast_runs:
        failed = feast_runs[-1]
        rows.append([label, f"{count:,}", f"> {failed['elapsed']:.0f}", "-", "-",
                     f">= {mib(failed['peak'])}"])
    print(table(rows, ["path", "entity rows", "seconds", "rows/s", "vs feast", "peak RSS"]))
    if args.repeat > 1:
        print(f"\nmedian of {args.repeat}; all runs (s): flywheel "
              + ", ".join(f"{r['wall']:.2f}" for r in ours_runs) + "; feast "
              + ", ".join(f"{r['wall']:.2f}" for r in feast_runs if "error" not in r))
    print(f"CPU seconds: flywheel {ours['cpu']:.1f}"
          + (f", feast {theirs['cpu']:.1f}" if theirs else "")
          + " (2 cores = 2 CPU-s a second)")
    if feast_runs and not result["feast_ok"]:
        failed = feast_runs[-1]
        print(f"\nfeast run failed — {failed['error']}")
        if "within" in failed["error"]:
            print(f"flywheel vs feast: more than {failed['elapsed'] / ours['wall']:.0f}x "
                  "faster (feast did not finish); target >= 10x: met")
    if result["match"] and theirs:
        ok, detail, stats = result["match"]
        print(f"\nresults match: {'yes' if ok else 'NO'} — {detail}")
        if ok and stats["left_out"]:
            print(f"feast returned {count - stats['left_out']:,} of the {count:,} entity rows: "
                  "it drops a row with no feature value within the TTL, where Flywheel "
                  "returns the row with nulls")
        if ok:
            print("null features in Flywheel's result (no row within the TTL, or a null "
                  "value): " + ", ".join(f"{k} {v:,}" for k, v in stats["nulls"].items()))
        ratio = theirs["wall"] / ours["wall"]
        target = "met" if ratio >= 10 else "NOT met"
        print(f"flywheel vs feast: {_faster(ratio)} (Arrow), "
              f"{_faster(theirs['wall'] / both)} with .to_pandas(); peak RSS "
              f"{mib(ours['peak'])} vs {mib(theirs['peak'])}; target >= 10x faster: {target}")


def _faster(ratio: float) -> str:
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x SLOWER"


def main() -> None:
    import psutil

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000, help="entity rows")
    parser.add_argument("--features-rows", type=int, default=10_000_000,
                        help="feature table rows (100 per user)")
    parser.add_argument("--ttl-hours", type=float, default=TTL_HOURS,
                        help="the feature view's TTL (feature rows are ~21.6 h apart)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="point-in-time runs of each side, interleaved, each in a fresh "
                             "process; the median is reported")
    parser.add_argument("--online-users", type=int, default=100_000,
                        help="entities materialised to the online store")
    parser.add_argument("--online-reads", type=int, default=2_000,
                        help="timed online reads per case")
    parser.add_argument("--warmup", type=int, default=200, help="untimed reads first")
    parser.add_argument("--skip-offline", action="store_true", help="skip Part 1")
    parser.add_argument("--skip-online", action="store_true", help="skip Part 2")
    parser.add_argument("--skip-http", action="store_true", help="no HTTP reads in Part 2")
    parser.add_argument("--skip-redis", action="store_true", help="SQLite only in Part 2")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--skip-feast", action="store_true", help="run the Flywheel side only")
    parser.add_argument("--feast-python", help="a python with feast installed (default: "
                        "/tmp/feast-venv, created with pip on first use)")
    parser.add_argument("--feast-offline-store", default="file", choices=["file", "duckdb"],
                        help="Feast's offline store for Part 1: file (dask; the default) or "
                             "duckdb (ibis; needs feast[duckdb] in the Feast venv)")
    parser.add_argument("--feast-timeout", type=float, default=600,
                        help="seconds before a Feast run is stopped")
    parser.add_argument("--feast-memory-gib", type=float,
                        default=round(0.8 * psutil.virtual_memory().total / 2**30, 1),
                        help="RSS past which a Feast run is stopped (default: 80%% of RAM)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = parser.parse_args()

    feast, feast_version = (None, "skipped (--skip-feast)") if args.skip_feast else \
        feast_python(args.feast_python)
    if not args.skip_feast and feast is None:
        print(f"!!! Feast is not available: {feast_version}. Running the Flywheel side "
              "only. !!!", file=sys.stderr)
    why_online = None if args.skip_online else online_status()
    workdir = Path(tempfile.mkdtemp(prefix="flywheel-features-"))
    os.chdir(workdir)  # where DuckDB spills (`.tmp`), if it does
    load = os.getloadavg()[0]
    offline = online = None
    try:
        if not args.skip_offline:
            offline = bench_offline(args, workdir, feast)
        if not args.skip_online and why_online is None:
            online = bench_online(args, workdir, feast)
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nfeature store benchmark — {machine()}; load average {load:.2f} at the start")
    print(f"feast: {feast_version if feast else 'NOT RUN — ' + feast_version}\n")
    if offline:
        print_offline(args, offline, feast_version)
    if online:
        print_online(args, online, feast_version)
    elif not args.skip_online:
        print(f"\nPart 2 — online reads: not yet measured ({why_online})")
    failed = (offline and offline["match"] and not offline["match"][0]) or \
        (online and any(not out["match"][0] for out in online["backends"].values()
                        if "match" in out))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
