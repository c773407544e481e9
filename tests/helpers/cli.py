"""The ``raycache`` command run as a separate process, attached to the test session's Ray."""

from __future__ import annotations

import subprocess
import sys

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
