"""The README runs as written: every code block, in order, from an empty folder.

Shell blocks run in one simulated terminal (the working folder carries over from block
to block), Python blocks in one namespace (as in a notebook opened in that folder), and
a block whose first line is a comment naming a file, or whose preceding line is such a
path followed by a colon, is written to that file. Two sections are not run here
because the suite itself is what they start: "Install and test" must be what `.ci/run`
runs, and "Benchmarks" must name scripts that the benchmark tests run at a tiny size.

One rewrite is made, and only to the shell: port 8000 becomes a free port, because
another program on a test machine may hold 8000.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
FILE_COMMENT = re.compile(r"^(?:#|--) ((?:[\w.-]+/)*[\w.-]+\.(?:py|sql|yaml|yml|json))\s*$")
PATH_BEFORE = re.compile(r"`([^`\s]+)`:\s*$")
NOT_RUN = {"", "Install and test", "Benchmarks"}
"""Sections whose blocks are not run here: the opening block (install, then `flywheel
demo`, which tests/demo runs), the install and test commands (CI's own), benchmarks."""


@dataclass(frozen=True, slots=True)
class Block:
    section: str
    language: str
    code: str
    line: int
    file: str | None
    """Where the block's content goes, when it is a file's content."""


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        before = text[:match.start()]
        sections = re.findall(r"^## (.+)$", before, re.M)
        previous = [ln for ln in before.splitlines() if ln.strip()]
        language, code = match.group(1), match.group(2)
        first = code.splitlines()[0] if code else ""
        named = FILE_COMMENT.match(first)
        path_before = PATH_BEFORE.search(previous[-1]) if previous else None
        target = named.group(1) if named else path_before.group(1) if path_before else None
        blocks.append(Block(section=sections[-1] if sections else "", language=language,
                            code=code, line=before.count("\n") + 2, file=target))
    return blocks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_every_block_has_a_known_kind() -> None:
    for block in readme_blocks(README.read_text()):
        runnable = block.language in {"bash", "python"} or block.file is not None
        assert runnable or block.section in NOT_RUN, (
            f"README.md:{block.line}: a {block.language or 'plain'} block that is neither "
            "a command, Python, nor a named file")


def test_install_and_test_commands_are_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    [block] = [b for b in readme_blocks(README.read_text()) if b.section == "Install and test"]
    for command in block.code.splitlines():
        assert command in ci, f"README's `{command}` is not a line of .ci/run"


def test_the_first_two_code_lines_install_and_run_the_demo() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    first = readme_blocks(README.read_text())[0]
    assert first.section == "" and first.language == "bash"
    install, demo = first.code.splitlines()
    assert install in ci, "the README's install command is not the one CI runs"
    assert demo == ".venv/bin/flywheel demo"


def test_benchmark_commands_name_scripts_the_bench_tests_run() -> None:
    [block] = [b for b in readme_blocks(README.read_text()) if b.section == "Benchmarks"]
    bench_tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_bench*.py"))
    for command in block.code.splitlines():
        script = re.search(r"bench/(\w+\.py)", command)
        assert script, f"not a benchmark command: {command}"
        assert (ROOT / "bench" / script.group(1)).is_file()
        assert f'"{script.group(1)}"' in bench_tests, f"no test runs bench/{script.group(1)}"


class Terminal:
    """Shell blocks, run one after another as if typed into one terminal."""

    def __init__(self, folder: Path) -> None:
        self.cwd = folder
        self.port = free_port()
        bin_dir = str(Path(sys.executable).parent)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
        self.env.update(PATH=f"{bin_dir}{os.pathsep}{self.env.get('PATH', '')}",
                        FLYWHEEL_NO_PROGRESS="1")

    def run(self, block: Block) -> None:
        code = block.code.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        code = re.sub(r"flywheel serve(?= |$)", f"flywheel serve --port {self.port}", code,
                      flags=re.M)
        where = self.cwd / ".readme-cwd"
        script = ("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
                  f"cd {self.cwd}\n{code}\npwd > {where}\n")
        done = subprocess.run(["bash", "-c", script], env=self.env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, (
            f"README.md:{block.line}: exit {done.returncode}\n{code}\n"
            f"stdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}")
        self.cwd = Path(where.read_text().strip())
        where.unlink()


@pytest.mark.slow
def test_readme_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `. .venv/bin/activate` in the README is the environment running this test.
    (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    terminal = Terminal(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    ran = 0
    for block in readme_blocks(README.read_text()):
        if block.section in NOT_RUN:
            continue
        if block.file is not None:
            target = terminal.cwd / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code)
        elif block.language == "bash":
            terminal.run(block)
        else:
            monkeypatch.chdir(terminal.cwd)
            exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)
        ran += 1
    assert ran >= 20
    project = namespace["project"]
    # What the README says came out of it.
    assert namespace["report"].recovered == 1
    assert {m.name for m in namespace["monitoring"].monitors} == {
        "visits_quality", "purchase_drift", "purchase_live"}
    assert namespace["drift"].columns[0].drifted
    assert project.registry.get("purchase@champion").version == 1
    assert project.registry.get("purchase@challenger").version == 3   # from the shell
    assert "user_daily" in str(namespace["version"].lineage["entities"]["tables"])
    assert namespace["run"].output("accuracy") > 0.5
    frame = namespace["frame"]
    assert len(frame) > 1000 and frame["pages"].notna().all() and frame["label"].any()
    # Serving: the notebook's answers, the server's, their log, and the feedback joined.
    answer = namespace["answer"]
    assert answer[0]["missing"] == [] and answer[1]["missing"] != []
    assert 0.0 <= answer[0]["outputs"]["probability"] <= 1.0
    predictions = project.log.read("dev.flywheel/prediction").to_pylist()
    assert len(predictions) >= 4   # two in the notebook, one over /v1, one over /v2
    assert len({p["event_id"] for p in predictions}) == len(predictions)
    joined = project.tables.read("predictions_with_feedback").to_pylist()
    first = namespace["batch"].rows[0].prediction_id
    assert [r["outcome"] for r in joined if r["prediction_id"] == first] == [1.0]
    assert namespace["result"].rows == project.tables.read("user_daily").num_rows
