"""Large storage hits read from their mapped file, with the object-store copy as a fallback.

A large entry read back from a local storage reaches its reader as a small object that
unpickles as the value, decoded from the file mapped by the reader: no copy into the
object store is on the reader's path. The vault copies it there in the background, and
that copy serves a reader whose file has gone.
"""

from __future__ import annotations

import mmap
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

import raycache
from raycache.client.steps import run
from raycache.core.keys import key_digest
from raycache.core.protocol import Code

ROWS = 200_000  # 1.6 MB a value: far above the size that shards keep inline


def is_mapped(array: np.ndarray[Any, Any]) -> bool:
    """Whether ``array``'s memory is a mapping of a file, rather than a copy."""
    base: Any = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)


@pytest.fixture
def stored(cache_name: str, storage: str) -> Iterator[raycache.Cache]:
    """A cache whose storage holds ``"big"``, restarted: its memory is empty."""
    first = raycache.Cache(cache_name, shards=2, capacity="64MiB", storage=storage)
    first.put("big", np.arange(ROWS, dtype=np.float64))
    first.shutdown()
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB", storage=storage)
    yield cache
    cache.shutdown()


def wait_for_the_copy(cache: raycache.Cache, digest: bytes) -> None:
    """Wait until the shard serves ``digest`` from its copy in the object store."""
    deadline = time.monotonic() + 30
    while run(cache.shard_client.lookup(digest)).code is not Code.REF:
        assert time.monotonic() < deadline, "the copy into the object store never finished"
        time.sleep(0.05)


@ray.remote
def mapped_sum(array: np.ndarray[Any, Any]) -> tuple[bool, float]:
    return is_mapped(array), float(array.sum())


def test_a_large_hit_is_read_from_its_mapped_file(stored: raycache.Cache) -> None:
    value = stored.get("big")
    np.testing.assert_array_equal(value, np.arange(ROWS, dtype=np.float64))
    assert is_mapped(value)
    assert stored.stats()["storage_hits"] == 1


def test_a_memoized_hit_is_mapped_by_the_task_that_reads_it(cache_name: str, storage: str) -> None:
    def build(name: str) -> Any:
        cache = raycache.Cache(name, shards=2, capacity="64MiB", storage=storage)

        @raycache.memoize(cache=cache)
        @ray.remote
        def column(n: int) -> np.ndarray[Any, Any]:
            return np.full(ROWS, float(n))

        return cache, column

    cache, column = build(cache_name)
    ray.get(column.remote(3))
    cache.shutdown()
    cache, column = build(cache_name)
    try:
        mapped, total = ray.get(mapped_sum.remote(column.remote(3)))
        assert (mapped, total) == (True, 3.0 * ROWS)
        assert column.cache_info().misses == 0
    finally:
        cache.shutdown()


def test_a_hit_outlives_its_file(stored: raycache.Cache, storage: str) -> None:
    digest = key_digest("big")
    reply = run(stored.shard_client.lookup(digest))
    assert reply.code is Code.INLINE  # the mapped file, unpickled here
    shutil.rmtree(storage)  # every file gone: readers fall back on the promoted copy
    mapped, total = ray.get(mapped_sum.remote(reply.call))
    assert not mapped
    assert total == float(np.arange(ROWS, dtype=np.float64).sum())
    np.testing.assert_array_equal(ray.get(reply.call), np.arange(ROWS, dtype=np.float64))


def test_the_promoted_copy_serves_once_it_is_made(stored: raycache.Cache) -> None:
    digest = key_digest("big")
    assert run(stored.shard_client.lookup(digest)).code is Code.INLINE
    wait_for_the_copy(stored, digest)
    value = stored.get("big")
    assert not is_mapped(value)
    np.testing.assert_array_equal(value, np.arange(ROWS, dtype=np.float64))


def test_a_file_overwritten_after_the_hit_is_not_read(stored: raycache.Cache, storage: str) -> None:
    digest = key_digest("big")
    reply = run(stored.shard_client.lookup(digest))
    wait_for_the_copy(stored, digest)  # made from the file as it was checked
    for path in Path(storage).rglob("*.rc"):
        with path.open("r+b") as file:  # garbage in place: the same inode, a new version
            file.write(b"\xff" * 4096)
    mapped, total = ray.get(mapped_sum.remote(reply.call))
    assert not mapped
    assert total == float(np.arange(ROWS, dtype=np.float64).sum())
