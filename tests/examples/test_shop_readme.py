"""The shop example's README runs as written: its shell blocks, in order, in a fresh copy
of the example, with the `flywheel` command of this checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flywheel.scaffold import init_project

SRC = Path(__file__).resolve().parents[2] / "src"
README = SRC / "flywheel" / "examples" / "shop" / "README.md"
SHELL = re.compile(r"^```bash\n(.*?)^```\n", re.S | re.M)


@pytest.mark.slow
def test_the_readme_shell_blocks_run_in_order(tmp_path: Path) -> None:
    root = init_project(tmp_path / "shop", example="shop")
    blocks = SHELL.findall(README.read_text())
    assert len(blocks) == 3
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(SRC),
        "FLYWHEEL_NO_PROGRESS": "1",
    }
    env.pop("FLYWHEEL_PROJECT", None)
    script = "set -euo pipefail\n" + "\n".join(blocks)
    done = subprocess.run(
        ["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "schema_violation" in done.stdout and "unknown_schema" in done.stdout
    assert (root / "deployments" / "purchase.yaml").is_file()
    assert "purchase_drift" in done.stdout
