"""The first read of a large DataFrame after a restart: a fresh process with its own Ray.

A restart is what the durable tier is for, and its first read is its hardest: nothing is
in memory, the shard checks the file (its checksum and the Arrow offsets, or its MAC
with a storage key), and the reader maps and decodes it. Each sample here is one new
Python process that starts a Ray of its own, makes the cache, and times its first
``cache.get`` of the frame, once its shard is up and the machine is quiet; the page cache
is warm, as on a machine that wrote the files.

The baselines are timed the same way, each in a new process: ``joblib.Memory``'s first
load, plain and with ``mmap_mode="r"``, and ``pandas.read_parquet``.

Targets: unsigned, at least 10x faster than joblib.Memory and at least as fast as its
mmap mode; signed, at least 3x faster than joblib.Memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import joblib

from benchmarks.harness.datasets import make_mixed_frame
from benchmarks.output.report import Row, Summary, comparison, summarize
from raycache.core.keys import key_digest
from raycache.core.storage import StorageTier, parse_storage
from raycache.core.storage.trust import entrust

CACHE = "bench-restart"
KEY = "the benchmark's storage key, long enough"

# Every reader first waits for the machine to be quiet: the Ray of the reader before may
# still be shutting down, and a vault of it copying the last hit into its object store.
_QUIET = """
import os, time
from raycache.actors.priority import spare_cores_now
deadline = time.monotonic() + 20
while spare_cores_now(0.2) < 0.8 * (os.cpu_count() or 1) and time.monotonic() < deadline:
    pass
"""

# Both kinds of reader have pandas imported before the clock starts, as a program that
# reads a DataFrame has.
_RAYCACHE = """
import time, pandas, ray, raycache
ray.init(address="local", num_cpus=2, object_store_memory=1024**3,
         include_dashboard=False, logging_level="ERROR")
cache = raycache.Cache({cache!r}, shards=1, capacity="1GiB", storage={root!r},
                       storage_key={key!r}, timeout=60)
cache.stats(), cache.get("absent")  # the shard is up, and has looked in its folder once
{quiet}
started = time.perf_counter()
frame = cache.get("frame")
elapsed = time.perf_counter() - started
assert len(frame) == {rows}, type(frame)
print('elapsed', elapsed)
"""

_BASELINE = """
import time, joblib, pandas as pd
from benchmarks.harness.datasets import make_mixed_frame
plain = joblib.Memory({joblib!r}, verbose=0).cache(make_mixed_frame)
mapped = joblib.Memory({joblib!r}, mmap_mode="r", verbose=0).cache(make_mixed_frame)
read = {{"joblib": lambda: plain({nbytes}), "joblib_mmap": lambda: mapped({nbytes}),
        "parquet": lambda: pd.read_parquet({parquet!r})}}[{which!r}]
{quiet}
started = time.perf_counter()
frame = read()
elapsed = time.perf_counter() - started
assert len(frame) == {rows}
print('elapsed', elapsed)
"""

READERS = ("unsigned", "signed", "joblib", "joblib_mmap", "parquet")


def prepare(root: Path, nbytes: int) -> int:
    """Write the frame to the tier (signed and not), joblib.Memory and Parquet; return rows."""
    frame = make_mixed_frame(nbytes)
    for key, folder in ((None, "unsigned"), (KEY, "signed")):
        storage = entrust(parse_storage(root / folder), key=key, shared=False, environ={})
        assert storage is not None
        assert StorageTier(storage, CACHE).write(key_digest("frame"), frame)
    joblib.Memory(root / "joblib", verbose=0).cache(make_mixed_frame)(nbytes)
    frame.to_parquet(root / "frame.parquet")
    return len(frame)


def first_read(which: str, root: Path, nbytes: int, rows: int) -> float:
    """Return the seconds of one first read by ``which``, in a new process."""
    if which in ("unsigned", "signed"):
        key = KEY if which == "signed" else None
        code = _RAYCACHE.format(
            cache=CACHE, root=str(root / which), key=key, rows=rows, quiet=_QUIET
        )
    else:
        code = _BASELINE.format(
            joblib=str(root / "joblib"),
            parquet=str(root / "frame.parquet"),
            nbytes=nbytes,
            which=which,
            rows=rows,
            quiet=_QUIET,
        )
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {which} reader failed: {done.stderr[-2000:]}")
    # A Ray driver may print the autoscaler's events on stdout too.
    timings = [line for line in done.stdout.splitlines() if line.startswith("elapsed ")]
    return float(timings[-1].split()[-1])


def measure(nbytes: int, runs: int) -> dict[str, Summary]:
    """Return the first-read times of every reader, ``runs`` each, in rotating order."""
    with tempfile.TemporaryDirectory(prefix="raycache-restart-") as directory:
        root = Path(directory)
        rows = prepare(root, nbytes)
        times: dict[str, list[float]] = {which: [] for which in READERS}
        for run in range(runs):
            order = READERS[run % len(READERS) :] + READERS[: run % len(READERS)]
            for which in order:
                times[which].append(first_read(which, root, nbytes, rows))
        return {which: summarize(samples) for which, samples in times.items()}


def rows_of(timed: dict[str, Summary]) -> list[Row]:
    """Return the rows comparing the restart reads with each baseline, with verdicts."""
    unsigned, signed = timed["unsigned"], timed["signed"]
    return [
        comparison("restart, unsigned vs joblib.Memory", unsigned, timed["joblib"],
                   "joblib.Memory", max_ratio=0.1, target=">= 10x faster"),
        comparison("restart, unsigned vs joblib mmap", unsigned, timed["joblib_mmap"],
                   "joblib mmap_mode='r'", max_ratio=1.0, target="at least as fast"),
        comparison("restart, unsigned vs read_parquet", unsigned, timed["parquet"],
                   "read_parquet"),
        comparison("restart, signed vs joblib.Memory", signed, timed["joblib"],
                   "joblib.Memory", max_ratio=1 / 3, target=">= 3x faster"),
        comparison("restart, signed vs unsigned", signed, unsigned, "unsigned"),
    ]  # fmt: skip
