"""The durable tier through the cache: values outlive the cluster, in a directory or on S3.

A "restart" here is either a cache shut down and started again under the same name and
storage, on the session's Ray, or a whole driver process with a Ray of its own, run twice
against the same storage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import raycache
from tests.cluster.test_storage_s3 import BUCKET, endpoint  # noqa: F401  (a fixture)
from tests.helpers.aio import asyncio_test
from tests.helpers.cli import last_report, run_cli
from tests.helpers.disk import allocated

DRIVER = """
import json, ray, raycache, numpy as np
ray.init(address="local", num_cpus=2, object_store_memory=150 * 1024**2,
         include_dashboard=False, logging_level="ERROR")
cache = raycache.Cache("restart", shards=2, capacity="64MiB", storage={storage!r})

def record(what):
    with open({log!r}, "a") as log:
        log.write(what + "\\n")

@raycache.memoize(cache=cache)
@ray.remote
def square(n):
    record("square")
    return np.full(50_000, n * n)

@raycache.memoize(cache=cache)
def label(n):
    record("label")
    return f"n={{n}}"

sums = [int(s.sum()) for s in ray.get([square.remote(n) for n in range(3)])]
labels = [label(n) for n in range(3)]
before = cache.get("put")
cache.put("put", {{"run": 1}})
stats = cache.stats()
print(json.dumps({{"sums": sums, "labels": labels, "put": before,
                  "storage_hits": stats["storage_hits"]}}))
cache.shutdown()
"""


def drive(storage: str | None, log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the driver in a process that starts a Ray of its own; return what it printed."""
    code = textwrap.dedent(DRIVER.format(storage=storage, log=str(log)))
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return last_report(done.stdout)


def assert_warm_after_restart(storage: str | None, log: Path, env: dict[str, str]) -> None:
    first = drive(storage, log, env)
    assert first["put"] is None and first["storage_hits"] == 0
    assert sorted(log.read_text().split()) == ["label"] * 3 + ["square"] * 3
    second = drive(storage, log, env)  # a new process, a new Ray: nothing in memory
    assert second["sums"] == first["sums"] == [0, 50_000, 200_000]
    assert second["labels"] == ["n=0", "n=1", "n=2"]
    assert second["put"] == {"run": 1}
    assert second["storage_hits"] == 7
    assert len(log.read_text().split()) == 6  # nothing ran again


def test_a_new_cluster_is_warm_from_a_directory(tmp_path: Path) -> None:
    assert_warm_after_restart(str(tmp_path / "storage"), tmp_path / "runs.log", {})


def test_a_new_cluster_is_warm_from_s3(endpoint: str, tmp_path: Path) -> None:  # noqa: F811
    import pyarrow.fs as pafs

    s3 = pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True)
    if s3.get_file_info(BUCKET).type == pafs.FileType.NotFound:
        s3.create_dir(BUCKET)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        # storage=None in the driver: the environment names it.
        "RAYCACHE_STORAGE": f"s3://{BUCKET}/restart",
    }
    assert_warm_after_restart(None, tmp_path / "runs.log", env)


@pytest.fixture
def durable(cache_name: str, storage: str) -> Iterator[raycache.Cache]:
    """A cache with storage; :func:`restarted` starts it again from its files."""
    handle = raycache.Cache(cache_name, shards=2, capacity="64MiB", storage=storage)
    yield handle
    raycache.Cache(cache_name, storage=storage).shutdown()


def restarted(cache: raycache.Cache, storage: str, **settings: Any) -> raycache.Cache:
    """Shut ``cache`` down, then start it again: memory empty, its storage as it was."""
    cache.shutdown()
    options: dict[str, Any] = {"shards": 2, "capacity": "64MiB", **settings}
    return raycache.Cache(cache.name, storage=storage, **options)


def flush(cache: raycache.Cache) -> None:
    cache.flush()


def test_a_dataframe_comes_back_with_its_dtypes(durable: raycache.Cache, storage: str) -> None:
    frame = pd.DataFrame(
        {
            "i8": np.arange(1000, dtype=np.int8),
            "f32": np.linspace(0, 1, 1000, dtype=np.float32),
            "nullable": pd.array([1, None] * 500, dtype="Int64"),
            "category": pd.Categorical(["a", "b", "c", "d"] * 250),
            "when": pd.date_range("2024-01-01", periods=1000, freq="min", tz="Europe/Paris"),
            "text": [f"row {i}" for i in range(1000)],
            "flag": [True, False] * 500,
        },
        index=pd.RangeIndex(5, 1005, name="row"),
    )
    durable.put("frame", frame)
    cache = restarted(durable, storage)
    pd.testing.assert_frame_equal(cache.get("frame"), frame, check_exact=True)
    assert cache.stats()["storage_hits"] == 1
    pd.testing.assert_frame_equal(cache.get("frame"), frame)  # now from memory
    assert cache.stats()["storage_hits"] == 1


def test_ttl_holds_across_a_restart(durable: raycache.Cache, storage: str) -> None:
    durable.put("short", "s", ttl=8)
    deadline = time.time() + 8
    durable.put("long", "l", ttl=60)
    durable.put("forever", "f")
    cache = restarted(durable, storage)
    assert cache.get("short") == "s"  # promoted with what was left of its time
    time.sleep(deadline - time.time() + 0.2)
    assert cache.get("short") is None
    cache = restarted(cache, storage)
    assert [cache.get(key) for key in ("short", "long", "forever")] == [None, "l", "f"]


CALLS: list[int] = []
"""The calls of :func:`work`: a global, because a closure's contents are in its key."""


def work(n: int) -> int:
    CALLS.append(n)
    return n * 10


def test_invalidation_reaches_the_files(durable: raycache.Cache, storage: str) -> None:
    CALLS.clear()
    memoized = raycache.memoize(cache=durable)(work)
    assert [memoized(n) for n in range(4)] == [0, 10, 20, 30]
    durable.put("tagged", 1, tags=["t"])
    durable.put("deleted", 2)
    cache = restarted(durable, storage)
    memoized = raycache.memoize(cache=cache)(work)
    assert memoized(0) == 0 and len(CALLS) == 4  # warm from storage
    assert memoized.clear() == 4  # one in memory, three only in files
    assert cache.invalidate_tag("t") == 1
    assert cache.delete("deleted") is True
    cache = restarted(cache, storage)
    memoized = raycache.memoize(cache=cache)(work)
    assert [cache.get("tagged"), cache.get("deleted")] == [None, None]
    assert memoized(1) == 10 and len(CALLS) == 5  # computed again
    cache.put("x", 1)
    cache.clear()
    cache = restarted(cache, storage)
    assert cache.get("x") is None
    assert cache.stats()["storage_entries"] == 0
    assert memoized(1) == 10  # through a handle from before the restart, which finds the new one


def test_corrupt_files_are_misses_and_recomputed(durable: raycache.Cache, storage: str) -> None:
    durable.put("small", "value")
    durable.put("large", np.arange(200_000))
    assert durable.get_or_compute("computed", lambda: 7) == 7
    flush(durable)
    files = list(Path(storage).rglob("*.rc"))
    assert len(files) == 3
    for path in files:
        path.write_bytes(b"garbage" * 100)
    cache = restarted(durable, storage)
    assert cache.get_many(["small", "large"]) == {}
    assert cache.get_or_compute("computed", lambda: 8) == 8
    stats = cache.stats()
    assert stats["storage_hits"] == 0 and stats["storage_corrupt"] >= 2


def test_memory_evictions_leave_the_files(cache_name: str, storage: str) -> None:
    cache = raycache.Cache(
        cache_name, shards=2, capacity="2MiB", storage=storage, storage_capacity="3MiB"
    )
    try:
        for key in range(40):
            cache.put(key, np.full(25_000, key))  # 200 KB apiece: 8 MB in all
        flush(cache)
        stats = cache.stats()
        assert stats["evictions"] > 0 and 0 < stats["storage_bytes"] <= 3 * 1024**2
        on_disk = allocated(list(Path(storage).rglob("*.rc")))
        assert on_disk == stats["storage_bytes"]  # each shard keeps its share of the budget
        got = {key: cache.get(key) for key in range(40)}
        kept = [key for key, value in got.items() if value is not None]
        assert len(kept) > stats["entries"]  # more than memory holds: some from files
        assert all(got[key][0] == key for key in kept)
        assert cache.stats()["storage_hits"] > 0
    finally:
        cache.shutdown()


def test_unreachable_storage_is_counted_and_memory_carries_on(
    cache_name: str, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    cache = raycache.Cache(cache_name, shards=1, capacity="64MiB", storage=str(storage))
    try:
        cache.put("before", 0)
        flush(cache)
        os.rename(storage, tmp_path / "gone")
        storage.write_text("a file where the directory was")  # every write now fails
        for key in range(12):
            cache.put(key, key)
        flush(cache)
        assert [cache.get(key) for key in range(12)] == list(range(12))
        assert cache.get("before") == 0
        stats = cache.stats()
        assert 0 < stats["storage_write_errors"] <= 6  # then it stopped trying
    finally:
        cache.shutdown()


def test_unusable_storage_settings_raise_at_creation(cache_name: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="not supported"):
        raycache.Cache(cache_name, storage="ftp://host/cache")
    with pytest.raises(ValueError, match="cannot be created"):
        raycache.Cache(cache_name, storage=str(blocker / "below"))
    with pytest.raises(ValueError, match="needs storage"):
        raycache.Cache(cache_name, storage_capacity="1GiB")
    with pytest.raises(ValueError, match="storage volume"):
        raycache.Cache(cache_name, storage="s3://bucket/x", storage_capacity="30%")
    with pytest.raises(ValueError, match="storage_capacity"):
        raycache.Cache(cache_name, storage=str(tmp_path), storage_capacity="lots")
    with pytest.raises(ValueError):
        raycache.AsyncCache(cache_name, storage="ftp://host/cache")


def test_the_cli_clear_removes_the_files(durable: raycache.Cache, storage: str) -> None:
    durable.put_many({key: key for key in range(6)})
    flush(durable)
    assert len(list(Path(storage).rglob("*.rc"))) == 6
    assert run_cli("clear", durable.name).returncode == 0
    assert list(Path(storage).rglob("*.rc")) == []


@asyncio_test
async def test_an_async_cache_reads_what_a_restart_left(cache_name: str, storage: str) -> None:
    first = raycache.AsyncCache(cache_name, shards=2, storage=storage)
    await first.put("k", {"v": 1})
    await first.shutdown()
    second = raycache.AsyncCache(cache_name, shards=2, storage=storage)
    assert await second.get("k") == {"v": 1}
    assert (await second.stats())["storage_hits"] == 1
    await second.shutdown()


def test_keys_that_move_on_a_resize_keep_their_files(durable: raycache.Cache, storage: str) -> None:
    durable.put_many({key: f"v{key}" for key in range(30)})
    durable.resize(3)  # the keys that change owner move to it; their files stay put
    assert durable.get_many(range(30)) == {key: f"v{key}" for key in range(30)}
    flush(durable)
    assert durable.stats()["storage_entries"] == 30
