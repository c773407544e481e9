"""`raycache demo` at a small size: cold, warm, restarted from its files, and after a change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_recomputes_only_what_a_changed_partition_touches(tmp_path: Path) -> None:
    chart = tmp_path / "demo.png"
    done = subprocess.run(
        [sys.executable, "-m", "raycache.cli", "demo", "--rows", "60000", "--partitions", "3",
         "--chart", str(chart)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RAY_ADDRESS": "local"},
        cwd=tmp_path,  # where the demo's storage goes: fresh, so the first pass is cold
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "60,000 trips in 3 partitions" in out
    assert "recomputed: load 1, clean 1, aggregate 1, merge 1, top_k 1 (of 3, 3, 3, 1, 1)" in out
    assert "top zones by revenue" in out and "speedup" in out and "restart" in out
    assert "storage: hits 11 " in out  # every task of the restarted pass: 3 + 3 + 3 + 1 + 1
    assert any((tmp_path / ".raycache-demo").rglob("*.rc"))
    assert chart.stat().st_size > 10_000
