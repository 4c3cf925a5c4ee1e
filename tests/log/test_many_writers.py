"""Many processes writing and compacting one project: each acknowledged event stored once.

Four writer processes share one project whose writers compact in the background every
second commit (`ingest.compact_min_files: 2`): two collector servers fed over HTTP by
client threads of this test, and two SDK processes (`tests.log.processes sdk`) that also
call `project.log.compact()` every few batches. Every writer sends ids of its own, re-sends
some batches (an HTTP client re-sends to the *other* server) and sends ids that all the
writers share, so the event-id dedupe must hold across processes while compactions of the
same table run in several of them at once.

The load lasts a few seconds, and longer if no compaction has been committed by then: how
much is written depends on the machine, what is checked does not. At the end (every writer
stopped cleanly: SIGTERM for the servers, exit code 0 for all), the log must hold every
acknowledged id exactly once, no id twice and nothing that was never sent; the table must
have been compacted during the run (or the test did not test compaction), and no process
may have printed a traceback.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.api.support import make_project
from tests.log.processes import (
    MAX_STEPS,
    CommitWatch,
    events,
    kill,
    lines,
    operations,
    says_ready,
    sends,
    server_url,
    start_server,
    start_worker,
    stop,
    stored_ids,
    table_dir,
    wait_until,
)

pytestmark = pytest.mark.slow

SERVERS = 2
CLIENTS_PER_SERVER = 2
SDK_WRITERS = 2
LOAD_SECONDS = 3.5
MAX_LOAD_SECONDS = 30
"""The load goes on past LOAD_SECONDS until a compaction was committed, up to this."""


@dataclass
class Client:
    """One HTTP client thread's record: ids sent, ids acknowledged, anything unexpected."""

    name: str
    sent: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _post(client: httpx.Client, ids: list[str], record: Client) -> None:
    record.sent.extend(ids)
    try:
        response = client.post("/v1/events", json=events(ids))
    except httpx.HTTPError as exc:
        record.problems.append(f"{record.name}: {type(exc).__name__}: {exc}")
        return
    if response.status_code != 200:
        record.problems.append(f"{record.name}: HTTP {response.status_code}: "
                               f"{response.text[:300]}")
        return
    body = response.json()
    if body["accepted"] + body["duplicates"] == len(ids) and not body["rejected"]:
        record.acked.extend(ids)
    else:
        record.problems.append(f"{record.name}: not acknowledged: {body}")


def _http_load(own: str, other: str, record: Client, stop_load: threading.Event) -> None:
    """Send `sends(record.name)` to the server at `own`, re-sent batches to `other`, until
    `stop_load` is set (checked after each request, so that at least one is sent)."""
    with httpx.Client(base_url=own, timeout=60) as first, \
            httpx.Client(base_url=other, timeout=60) as second:
        for kind, ids in sends(record.name, MAX_STEPS):
            _post(second if kind == "again" else first, ids, record)
            if stop_load.is_set() or len(record.problems) > 20:
                return


def test_every_acknowledged_event_is_stored_once_across_writer_processes(
        tmp_path: Path) -> None:
    """Exactly once across processes, compactions included; every problem found is
    reported together (duplicates, losses, tracebacks), not only the first."""
    root = tmp_path / "shared"
    make_project(root, ingest={"compact_min_files": 2}).close()
    out = tmp_path / "out"
    out.mkdir()
    go, stop_file = out / "go", out / "stop"
    stop_load = threading.Event()

    with ExitStack() as cleanup:
        servers = [start_server(root, out / f"server{n}.log") for n in range(SERVERS)]
        sdk_names = [f"sdk{n}" for n in range(SDK_WRITERS)]
        writers = [start_worker(["sdk", str(root), name, str(out), str(go), str(stop_file)],
                                out / f"{name}.out", out / f"{name}.err")
                   for name in sdk_names]
        for process in [*servers, *writers]:
            cleanup.callback(kill, process)

        urls = [server_url(process, out / f"server{n}.log")
                for n, process in enumerate(servers)]
        for name, process in zip(sdk_names, writers, strict=True):
            wait_until(partial(says_ready, process, out / f"{name}.out"), f"{name} to be ready")
            assert process.poll() is None, (out / f"{name}.err").read_text()

        clients = [Client(f"http{s}c{c}") for s in range(SERVERS)
                   for c in range(CLIENTS_PER_SERVER)]
        threads = [threading.Thread(
            target=_http_load, args=(urls[n // CLIENTS_PER_SERVER],
                                     urls[(n // CLIENTS_PER_SERVER + 1) % SERVERS],
                                     record, stop_load))
            for n, record in enumerate(clients)]
        watch = CommitWatch(table_dir(root))
        go.touch()
        started = time.monotonic()
        for thread in threads:
            thread.start()

        def load_done() -> bool:
            elapsed = time.monotonic() - started
            finished = (not any(t.is_alive() for t in threads)
                        and all(p.poll() is not None for p in writers))
            return (finished or elapsed > MAX_LOAD_SECONDS
                    or (elapsed > LOAD_SECONDS and "OPTIMIZE" in watch.poll()))

        wait_until(load_done, "the load", timeout=2 * MAX_LOAD_SECONDS, interval=0.05)
        stop_file.touch()
        stop_load.set()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)
        codes = {name: process.wait(120) for name, process in zip(sdk_names, writers,
                                                                    strict=True)}
        elapsed = time.monotonic() - started
        codes |= {f"server{n}": stop(process) for n, process in enumerate(servers)}

    sent = {i for record in clients for i in record.sent}
    sent |= {i for name in sdk_names for i in lines(out / f"{name}.sent")}
    acked_by = {record.name: record.acked for record in clients}
    acked_by |= {name: lines(out / f"{name}.acked") for name in sdk_names}
    acked = {i for ids in acked_by.values() for i in ids}
    stored = stored_ids(root)
    counts = Counter(stored)
    compactions = operations(root).count("OPTIMIZE")
    print(f"\n{len(acked)} distinct ids acknowledged in {elapsed:.1f}s "
          f"({', '.join(f'{name}: {len(ids)}' for name, ids in acked_by.items())}); "
          f"{len(stored)} rows stored; {compactions} compactions committed")

    problems = [p for record in clients for p in record.problems][:10]
    problems += [f"{name}: {line}" for name in sdk_names for line in lines(out / f"{name}.err")
                 if line.startswith("not acknowledged")][:10]
    problems += [f"{name} exited with {code}" for name, code in codes.items() if code != 0]
    twice = sorted(i for i, n in counts.items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} ids stored more than once "
                        f"({len(stored) - len(counts)} extra rows), e.g. {twice[:5]}")
    lost = sorted(acked - counts.keys())
    if lost:
        problems.append(f"{len(lost)} acknowledged ids are not stored, e.g. {lost[:5]}")
    unknown = sorted(counts.keys() - sent)
    if unknown:
        problems.append(f"{len(unknown)} stored ids were never sent, e.g. {unknown[:5]}")
    silent = [name for name, ids in acked_by.items() if not ids]
    if silent:
        problems.append(f"no event was acknowledged to {', '.join(silent)}")
    if not compactions:
        problems.append("the table was never compacted (no OPTIMIZE commit)")
    logs = [out / f"server{n}.log" for n in range(SERVERS)]
    logs += [out / f"{name}.err" for name in sdk_names]
    first = ""
    for log in logs:
        found = _tracebacks(log.read_text(errors="replace"))
        if found:
            first = first or found[0]
            kinds = Counter(block.splitlines()[-1] for block in found)
            problems.append(f"{log.name} printed {len(found)} traceback(s): " + "; ".join(
                f"{kind} (x{n})" for kind, n in kinds.most_common()))
    if first:
        problems.append(f"the first traceback:\n{first}")
    if problems:
        pytest.fail("\n".join(problems))


def _tracebacks(text: str) -> list[str]:
    """Each traceback in `text`, from its first line to its exception line."""
    found = []
    for block in text.split("Traceback (most recent call last):")[1:]:
        body = []
        for line in block.splitlines()[1:]:
            body.append(line)
            if line and not line[0].isspace():  # the exception line ends it
                break
        found.append("\n".join(["Traceback (most recent call last):", *body]))
    return found
