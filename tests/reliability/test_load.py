"""A steady rate of mixed operations: shard memory stays flat, and ``clear()`` gives the
object store back.

``RAYCACHE_LOAD_SECONDS`` sets how long the load runs (60 seconds by default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

import raycache
from tests.helpers.memory import object_store_bytes, settled_object_store_bytes, shard_rss
from tests.helpers.workload import KEYS, Client, while_running

SECONDS = float(os.environ.get("RAYCACHE_LOAD_SECONDS", "60"))
RATE = 150.0
SAMPLE_EVERY = 5.0
RSS_GROWTH_LIMIT = 32 * 2**20
"""How much a shard's resident memory may grow once warm: allocator noise, not a leak."""


@dataclass(frozen=True)
class Sample:
    """One look at the cache while the load runs."""

    entries: int
    bytes: int
    pending: int
    rss: dict[str, int]
    object_store: int


def sample(cache: raycache.Cache) -> Sample:
    stats = cache.stats()
    pending = sum(row["pending"] for row in stats["shards"])
    return Sample(stats["entries"], stats["bytes"], pending, shard_rss(cache), object_store_bytes())


@pytest.mark.timeout(SECONDS * 3 + 120)
def test_memory_stays_flat_under_steady_load_and_clear_frees_it(
    fresh_cache: raycache.Cache,
) -> None:
    baseline = object_store_bytes()
    samples: list[Sample] = []

    def take_sample() -> bool:
        samples.append(sample(fresh_cache))
        return True

    client = Client(fresh_cache, seed=1)
    tally, _ = while_running(
        lambda: client.run(int(SECONDS * RATE), rate=RATE), take_sample, SAMPLE_EVERY
    )
    assert tally.exceptions == [] and tally.wrong == []
    warm, last = samples[1], samples[-1]
    print(f"{len(samples)} samples; warm {warm}; last {last}")
    capacity = fresh_cache.stats()["capacity"]
    for seen in samples:
        # The workload's keys, its memoized calls and its memoized tasks' results.
        assert seen.entries <= 3 * KEYS
        assert seen.bytes <= capacity
    for member, rss in last.rss.items():
        assert rss - warm.rss[member] <= RSS_GROWTH_LIMIT, f"{member} grew"
    for seen in samples:  # the object store tracks what the cache holds, not what it served
        assert seen.object_store - baseline <= 2 * seen.bytes + 2**20

    fresh_cache.clear()
    assert settled_object_store_bytes(baseline) <= baseline
    assert sample(fresh_cache).pending == 0
