"""Values outlive the driver that cached them: separate driver processes on one cluster."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import ray

import raycache

WRITER = """
import numpy as np, pyarrow as pa, ray, raycache
ray.init(address={address!r}, logging_level="ERROR")
cache = raycache.Cache({name!r}, shards=2, capacity="256MiB")
cache.put("small", {{"answer": 42}})
cache.put("table", pa.table({{"x": np.arange(4_000_000, dtype=np.int64)}}))
print(cache.get_or_compute("computed", lambda n: np.arange(n), 300_000).sum())
"""

READER = """
import numpy as np, pyarrow as pa, ray, raycache
ray.init(address={address!r}, logging_level="ERROR")
cache = raycache.Cache.attach({name!r})
assert cache.get("small") == {{"answer": 42}}
assert cache.get("table").equals(pa.table({{"x": np.arange(4_000_000, dtype=np.int64)}}))
np.testing.assert_array_equal(cache.get("computed"), np.arange(300_000))
assert cache.get_or_compute("computed", lambda n: 1 / 0, 300_000) is not None
print("read", len(cache.get_many(["small", "table", "computed"])))
"""


def _run_driver(template: str, name: str) -> str:
    address = ray.get_runtime_context().gcs_address
    code = textwrap.dedent(template.format(address=address, name=name))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_second_driver_reads_after_first_exits(cache_name: str) -> None:
    assert _run_driver(WRITER, cache_name).split()[-1] == str(sum(range(300_000)))
    # The writer's process is gone: what it cached is owned by the shards, not by it.
    assert _run_driver(READER, cache_name).split()[-1] == "3"
    raycache.Cache.attach(cache_name).shutdown()
