"""Processes for the multi-process log tests, and what they send.

The tests start real processes against one project: collector servers
(`python -m flywheel.api.server`), SDK writers and compactors. The last two live here:

    python -m tests.log.processes sdk ROOT NAME OUT_DIR GO_FILE STOP_FILE
    python -m tests.log.processes compact ROOT

An SDK writer opens the project, prints `ready`, waits for GO_FILE, then sends the batches
of `sends(NAME)` with `project.ingest` until STOP_FILE exists (or a bound is reached),
calling `project.log.compact()` every few batches. It appends each batch's ids to
OUT_DIR/NAME.sent before sending it, and to OUT_DIR/NAME.acked only after the ingest call
acknowledged every event of it. Any exception is printed to stderr with its traceback and
the loop goes on, so that a test sees every failure, not only the first.

A compactor opens the project and compacts its log tables over and over, printing one line
to stdout after each attempt, until it is killed (or a bound is reached).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import httpx

from flywheel.project import Project
from tests.helpers import page_view

TABLE = "com.example/page_view"
REPO = Path(__file__).resolve().parents[2]
BATCH = 20
RESEND_EVERY = 4
"""Every 4th batch of a writer is sent a second time, right after the first."""
SHARED_EVERY = 5
"""Every 5th step a writer also sends a batch half made of ids that every writer sends."""
_LISTENING = re.compile(rb"on http://127\.0\.0\.1:(\d+) ")


# What writers send -------------------------------------------------------------------------
def sends(writer: str, steps: int) -> Iterator[tuple[str, list[str]]]:
    """(kind, ids) of each request of `writer`: "own" ids only it sends, "again" for an own
    batch re-sent, "shared" for ids half shared by all writers (the same ones at the same
    step of each writer) and half its own."""
    half = BATCH // 2
    for step in range(steps):
        own = [f"{writer}-{step}-{i}" for i in range(BATCH)]
        yield "own", own
        if step % RESEND_EVERY == RESEND_EVERY - 1:
            yield "again", own
        if step % SHARED_EVERY == 0:
            yield "shared", ([f"shared-{step // SHARED_EVERY}-{i}" for i in range(half)]
                             + [f"{writer}-{step}-s{i}" for i in range(half)])


def events(ids: Sequence[str]) -> list[dict[str, object]]:
    return [page_view(i, event_id=event_id) for i, event_id in enumerate(ids)]


# Helpers for the tests ---------------------------------------------------------------------
def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60,
               interval: float = 0.02) -> None:
    """Poll `condition` every `interval` seconds until it holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def start_server(root: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """The collector in its own process on a free port; stdout and stderr go to `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flywheel.api.server", "--project", str(root),
             "--port", "0"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


def server_url(process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60) -> str:
    """The base URL of a server from `start_server`, once it answers `/healthz`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        found = _LISTENING.search(log_path.read_bytes())
        if found is not None:
            url = f"http://127.0.0.1:{int(found.group(1))}"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"the server did not start:\n{log_path.read_text(errors='replace')}")


def start_worker(args: Sequence[str], out_path: Path, err_path: Path,
                 ) -> subprocess.Popen[bytes]:
    """`python -m tests.log.processes ARGS`, stdout and stderr to files."""
    with out_path.open("ab") as out, err_path.open("ab") as err:
        return subprocess.Popen([sys.executable, "-m", "tests.log.processes", *args],
                                stdout=out, stderr=err, cwd=REPO)


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM, then the exit code (SIGKILL and fail if it does not end in time)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(30)
        raise AssertionError(f"process {process.args!r} did not stop within {timeout:.0f}s"
                             ) from None


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL `process` if it still runs, and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait(30)


def says_ready(process: subprocess.Popen[bytes], out_path: Path) -> bool:
    """Has a worker printed `ready` (or ended, which a test then reports)?"""
    return "ready" in lines(out_path) or process.poll() is not None


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def stored_ids(root: Path) -> list[str]:
    """The `event_id` column of the page-view log table, as a fresh process sees it."""
    with Project.open(root) as project:
        ids: list[str] = project.log.read(TABLE, columns=["event_id"]).column(
            "event_id").to_pylist()
    return ids


def table_dir(root: Path) -> Path:
    """The folder of the page-view log table."""
    with Project.open(root) as project:
        ref = project.log.table(TABLE)
        return Path(project.log_store.handle(ref).uri.removeprefix("file://"))


class CommitWatch:
    """The `commitInfo.operation` of each commit of a Delta table, read once per commit
    file; `poll()` adds the commits made since the last call."""

    def __init__(self, base: Path) -> None:
        self._log = base / "_delta_log"
        self._read: set[str] = set()
        self.operations: list[str] = []

    def poll(self) -> list[str]:
        for commit in sorted(self._log.glob("[0-9]*.json")):
            if commit.name in self._read:
                continue
            self._read.add(commit.name)  # commit files appear whole (put-if-absent)
            for line in commit.read_text().splitlines():
                action = json.loads(line) if line.strip() else {}
                if "commitInfo" in action:
                    self.operations.append(str(action["commitInfo"].get("operation")))
        return self.operations


def operations(root: Path) -> list[str]:
    """The `commitInfo.operation` of every commit of the page-view log table."""
    return CommitWatch(table_dir(root)).poll()


# The processes -----------------------------------------------------------------------------
MAX_STEPS = 5_000
MAX_SECONDS = 120
COMPACT_EVERY = 5


def _append(out: IO[str], ids: Sequence[str]) -> None:
    out.write("".join(f"{event_id}\n" for event_id in ids))
    out.flush()


def sdk_writer(root: Path, name: str, out_dir: Path, go: Path, stop_file: Path) -> None:
    with Project.open(root) as project, (out_dir / f"{name}.sent").open("a") as sent, \
            (out_dir / f"{name}.acked").open("a") as acked:
        project.ingestor  # noqa: B018 -- open the stores before saying ready
        print("ready", flush=True)
        wait_until(go.exists, "the go file", timeout=MAX_SECONDS)
        started = time.monotonic()
        for number, (_, ids) in enumerate(sends(name, MAX_STEPS)):
            _append(sent, ids)
            try:
                result = project.ingest(events(ids))
            except Exception:
                traceback.print_exc()
            else:
                if result.accepted + result.duplicates == len(ids) and not result.rejected:
                    _append(acked, ids)
                else:
                    print(f"not acknowledged: {result.as_dict()}"[:500], file=sys.stderr,
                          flush=True)
            if number % COMPACT_EVERY == COMPACT_EVERY - 1:
                try:
                    project.log.compact()
                except Exception:
                    traceback.print_exc()
            if stop_file.exists() or time.monotonic() - started > MAX_SECONDS:
                break
        sys.stderr.flush()


def compactor(root: Path) -> None:
    started = time.monotonic()
    with Project.open(root) as project:
        for number in range(100_000):
            try:
                project.log.compact()
                outcome = "compacted"
            except Exception as exc:
                traceback.print_exc()
                outcome = f"failed ({type(exc).__name__})"
            print(f"{number} {outcome}", flush=True)
            if time.monotonic() - started > MAX_SECONDS:
                return


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.log.processes")
    commands = parser.add_subparsers(dest="command", required=True)
    sdk = commands.add_parser("sdk")
    for arg in ("root", "name", "out_dir", "go", "stop"):
        sdk.add_argument(arg)
    compact = commands.add_parser("compact")
    compact.add_argument("root")
    args = parser.parse_args(argv)
    if args.command == "sdk":
        sdk_writer(Path(args.root), args.name, Path(args.out_dir), Path(args.go),
                   Path(args.stop))
    else:
        compactor(Path(args.root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
