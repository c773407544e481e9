"""The ``raycache`` command run as a separate process, attached to the test session's Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import ray


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``raycache ARGS`` against this process's cluster; return what it did."""
    address = ray.get_runtime_context().gcs_address
    return subprocess.run(
        [sys.executable, "-m", "raycache.cli", *args, "--address", address],
        capture_output=True,
        text=True,
        timeout=120,
    )


def last_report(stdout: str) -> dict[str, Any]:
    """Return the last JSON object a child process printed on ``stdout``.

    A Ray driver may print the autoscaler's events on stdout as well, so the
    report is looked for rather than taken from the last line.
    """
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report among what the process printed:\n{stdout[-2000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report
