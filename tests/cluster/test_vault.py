"""References a cache hands out outlive its shards: each node's vault owns the objects.

The shards here are killed for real (``ray.kill``) and the references read back with the
caller's own ``ray.get``; the object store is measured as the raylets count it.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import ray

import raycache
from raycache.actors.cluster import NAMESPACE, shard_actor_name, shard_id
from tests.cluster.test_placement import run_on_cluster
from tests.helpers.memory import object_store_bytes, settled_object_store_bytes

LARGE = 25_000
"""Elements of an int64 array above Ray's inline limit: the vault keeps it."""

KEYS = 40
"""Distinct calls the callers make, so that most are hits."""


def expected(index: int) -> Any:
    """What ``numbered(index)`` returns: large for even indices, small for odd ones."""
    return np.arange(LARGE, dtype=np.int64) * index if index % 2 == 0 else f"small-{index}"


@ray.remote(num_cpus=0)
def numbered(index: int) -> Any:
    return expected(index)


def correct(index: int, value: Any) -> bool:
    want = expected(index)
    if isinstance(want, np.ndarray):
        return isinstance(value, np.ndarray) and np.array_equal(value, want)
    return bool(value == want)


def shards_of(cache: raycache.Cache) -> list[Any]:
    names = [shard_actor_name(cache.name, shard_id(i)) for i in range(cache.config.shards)]
    return [ray.get_actor(name, namespace=NAMESPACE) for name in names]


def kill_shards(cache: raycache.Cache, *, no_restart: bool = False) -> None:
    for shard in shards_of(cache):
        ray.kill(shard, no_restart=no_restart)


def _pid(_: Any) -> int:
    return os.getpid()


def restart_shards(cache: raycache.Cache, timeout: float = 60.0) -> None:
    """Kill every shard and wait until Ray has restarted each one in a new process."""
    before = ray.get([shard.__ray_call__.remote(_pid) for shard in shards_of(cache)])
    kill_shards(cache)
    deadline = time.monotonic() + timeout
    for shard, pid in zip(shards_of(cache), before, strict=True):
        while _pid_or_none(shard) in (pid, None):
            assert time.monotonic() < deadline, "a shard did not come back"
            time.sleep(0.1)


def _pid_or_none(shard: Any) -> int | None:
    try:
        return int(ray.get(shard.__ray_call__.remote(_pid)))
    except ray.exceptions.RayActorError:
        return None


@pytest.fixture
def memoized(fresh_cache: raycache.Cache) -> Any:
    return raycache.memoize(cache=fresh_cache)(numbered)


class Caller(threading.Thread):
    """Makes batches of memoized calls and reads them back until told to stop."""

    def __init__(self, memoized: Any, seed: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self._memoized = memoized
        self._rng = random.Random(seed)
        self._done = stop
        self.reads = 0
        self.errors: list[str] = []
        self.wrong: list[int] = []

    def run(self) -> None:
        while not self._done.is_set():
            indices = [self._rng.randrange(KEYS) for _ in range(8)]
            try:
                refs = [self._memoized.remote(index) for index in indices]
                time.sleep(self._rng.random() / 20)  # a shard may die between hit and read
                values = ray.get(refs, timeout=60)
            except Exception as error:  # the contract under test: nothing reaches the caller
                self.errors.append(repr(error))
                continue
            self.reads += len(values)
            self.wrong += [
                i for i, value in zip(indices, values, strict=True) if not correct(i, value)
            ]


@pytest.mark.timeout(180)
def test_memoized_references_stay_readable_while_shards_are_killed(
    fresh_cache: raycache.Cache, memoized: Any
) -> None:
    ray.get([memoized.remote(index) for index in range(KEYS)])  # workers up, entries in
    stop = threading.Event()
    callers = [Caller(memoized, seed, stop) for seed in range(4)]
    for caller in callers:
        caller.start()
    rng = random.Random(0)
    kills = 0
    for _ in range(8):
        time.sleep(1.0)
        member = shard_id(rng.randrange(fresh_cache.config.shards))
        shard = ray.get_actor(shard_actor_name(fresh_cache.name, member), namespace=NAMESPACE)
        ray.kill(shard, no_restart=False)
        kills += 1
    stop.set()
    for caller in callers:
        caller.join(timeout=120)
    assert kills == 8
    assert [error for caller in callers for error in caller.errors] == []
    assert [index for caller in callers for index in caller.wrong] == []
    info = memoized.cache_info()
    print(f"{sum(caller.reads for caller in callers)} reads; {info}")
    assert info.hits + info.merged >= 20  # references handed out by shards, then read


@pytest.mark.parametrize("no_restart", [False, True], ids=["restarted", "replaced"])
def test_a_reference_from_get_ref_outlives_its_shard(
    fresh_cache: raycache.Cache, no_restart: bool
) -> None:
    value = expected(2)
    fresh_cache.put("large", value)
    ref = fresh_cache.get_ref("large")
    assert ref is not None
    kill_shards(fresh_cache, no_restart=no_restart)
    assert np.array_equal(ray.get(ref, timeout=60), value)


def test_a_restarted_shard_takes_back_its_large_entries(fresh_cache: raycache.Cache) -> None:
    fresh_cache.put("large", expected(4), ttl=600, tags=("kept",))
    fresh_cache.put("small", expected(3))
    fresh_cache.put("expiring", expected(6), ttl=0.5)
    time.sleep(0.6)
    restart_shards(fresh_cache)
    assert np.array_equal(fresh_cache.get("large"), expected(4))
    assert fresh_cache.get("small") is None  # small values lived in the shard's heap
    assert fresh_cache.get("expiring") is None
    assert fresh_cache.invalidate_tag("kept") == 1  # its tags came back with it


def test_a_memoized_result_is_served_by_the_restarted_shard(
    fresh_cache: raycache.Cache, memoized: Any
) -> None:
    first = memoized.remote(8)
    assert correct(8, ray.get(first))
    time.sleep(0.2)  # the task's report reaches its shard
    restart_shards(fresh_cache)
    again = memoized.remote(8)
    assert again.hex() == first.hex()  # the same object, not a recomputation
    assert correct(8, ray.get(again))


@pytest.fixture
def own_cache(cache_name: str) -> Iterator[raycache.Cache]:
    """A cache this test shuts down itself."""
    handle = raycache.Cache(cache_name, shards=2, capacity="8MiB")
    yield handle
    handle.shutdown()


def test_clear_and_shutdown_give_the_object_store_back(own_cache: raycache.Cache) -> None:
    baseline = object_store_bytes()
    memoized = raycache.memoize(cache=own_cache)(numbered)
    for index in range(0, 20, 2):
        own_cache.put(index, expected(index))
    indices = range(20, 40, 2)
    values = ray.get([memoized.remote(index) for index in indices])
    assert all(correct(*pair) for pair in zip(indices, values, strict=True))
    del values
    assert object_store_bytes() >= baseline + 20 * LARGE * 8
    own_cache.clear()
    assert settled_object_store_bytes(baseline) <= baseline
    for index in range(0, 20, 2):
        own_cache.put(index, expected(index))
    own_cache.shutdown()
    assert settled_object_store_bytes(baseline) <= baseline


def test_evicted_values_leave_the_object_store(own_cache: raycache.Cache) -> None:
    baseline = object_store_bytes()
    capacity = own_cache.stats()["capacity"]
    for index in range(0, 200, 2):  # about 20 MB through an 8 MiB cache
        own_cache.put(index, expected(index))
    assert settled_object_store_bytes(baseline + capacity) <= baseline + capacity


PLACEMENT = """
from raycache.core.keys import key_digest

cache = raycache.Cache("vaulted", capacity="90MiB")
client = cache.shard_client
keys = range(24)
for key in keys:
    cache.put(key, np.full(50_000, key))
refs = {key: cache.get_ref(key) for key in keys}
locations = ray.experimental.get_object_locations(list(refs.values()))
local = owned = 0
for key, ref in refs.items():
    node = ray.get(client.shard_of(key_digest(key)).stats.remote()).node
    vault = ray.get_actor("vault:" + node, namespace="raycache")
    owned += ref.hex() in ray.get(vault.holdings.remote("vaulted"))
    local += locations[ref]["node_ids"] == [node]
print("nodes", len({row["node"] for row in cache.stats()["shards"]}))
print("local", local, "owned", owned)
"""


@pytest.mark.slow
def test_a_large_value_lives_on_its_shards_node_owned_by_the_vault_there() -> None:
    lines = run_on_cluster(PLACEMENT)
    assert "nodes 3" in lines
    assert "local 24 owned 24" in lines
