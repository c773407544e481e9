"""Ray's autoscaler (v2) adds workers for memoized tasks, removes them once idle, and no
result is lost: on a fake multi-node cluster (:mod:`scripts.fake_cluster`) started from
``cluster.yaml``'s node types, as ``ray up`` would start it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scripts.fake_cluster import Scale, running

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import os, sys, tempfile, time
import numpy as np
import ray
import raycache

ray.init(address=sys.argv[1], logging_level="ERROR")
runs = tempfile.mkdtemp()
cache = raycache.Cache("elastic", elastic=True, capacity="300MiB")
head = ray.get_runtime_context().get_node_id()
print("shards on head", all(row["node"] == head for row in cache.stats()["shards"]))

@raycache.memoize(cache="elastic")
@ray.remote(num_cpus=2)  # more than the head has: only a worker can run it
def expensive(i):
    open(os.path.join(runs, f"{i}-{time.time_ns()}"), "w").close()
    return np.full(200_000, i, dtype=np.float64)

def alive():
    return sum(1 for node in ray.nodes() if node["Alive"])

first = ray.get([expensive.remote(i) for i in range(12)])
print("computed", len(os.listdir(runs)), "with workers", alive() > 1)
del first
deadline = time.time() + 300
while alive() > 1 and time.time() < deadline:
    time.sleep(1)
print("workers left", alive() - 1)
again = ray.get([expensive.remote(i) for i in range(12)], timeout=60)
print("results", sum(float(r[0]) == i and len(r) == 200_000 for i, r in enumerate(again)))
print("recomputed", len(os.listdir(runs)) - 12)
cache.shutdown()
"""


@pytest.mark.slow
def test_the_autoscaler_removes_idle_workers_and_every_result_is_still_a_hit() -> None:
    scale = Scale(max_workers=2, min_workers=0, idle_timeout_minutes=0.25)
    with running(ROOT / "cluster.yaml", scale) as cluster:
        environment = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(DRIVER), cluster.address],
            capture_output=True,
            text=True,
            timeout=540,
            env=environment,
        )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    print("\n".join(lines))
    assert "shards on head True" in lines
    assert "computed 12 with workers True" in lines  # the autoscaler added workers
    assert "workers left 0" in lines  # and removed them once idle
    assert "results 12" in lines
    assert "recomputed 0" in lines  # every result outlived the worker it was computed on
