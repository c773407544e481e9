"""Every example runs, so none of them rots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(example: Path) -> None:
    # Each example starts its own Ray, never one that happens to run on this machine.
    env = {**os.environ, "RAY_ADDRESS": "local"}
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
