"""No unbounded stall: reads wait at most the handle's timeout for a shard that is down."""

from __future__ import annotations

import pickle
import time

import pytest
import ray

import raycache
from raycache.actors.cluster import NAMESPACE, shard_actor_name, shard_id

TIMEOUT = 0.25
SLACK = 0.35  # the machine's own noise: two cores shared by every Ray process of the suite


def test_reads_of_a_restarting_shard_are_bounded_misses(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB", timeout=TIMEOUT)
    try:
        keys = list(range(60))
        cache.put_many({key: key * 3 for key in keys})
        shard = ray.get_actor(shard_actor_name(cache_name, shard_id(0)), namespace=NAMESPACE)
        ray.kill(shard, no_restart=False)  # a crash: Ray restarts it under the same handle
        worst = 0.0
        found: dict[int, int] = {}
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            for key in keys:
                started = time.monotonic()
                value = cache.get(key)
                worst = max(worst, time.monotonic() - started)
                if value is not None:
                    assert value == key * 3
                    found[key] = value
            started = time.monotonic()
            many = cache.get_many(keys)
            worst = max(worst, time.monotonic() - started)
            assert all(value == key * 3 for key, value in many.items())
            started = time.monotonic()
            computed = cache.get_or_compute(("computed", 1), lambda: "here")
            worst = max(worst, time.monotonic() - started)
            assert computed == "here"
        assert worst <= TIMEOUT + SLACK, f"a read waited {worst:.3f} s"
        assert found, "the surviving shard kept serving"
    finally:
        cache.shutdown()


def test_an_avoided_shard_is_used_again_once_it_answers(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB", timeout=TIMEOUT)
    try:
        shard = ray.get_actor(shard_actor_name(cache_name, shard_id(1)), namespace=NAMESPACE)
        ray.kill(shard, no_restart=False)
        for key in range(40):
            cache.get(key)  # some of these time out and avoid shard-1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            cache.put_many({key: key for key in range(40)})
            if len(cache.get_many(range(40))) == 40:
                break
            time.sleep(0.2)
        assert cache.get_many(range(40)) == {key: key for key in range(40)}
    finally:
        cache.shutdown()


def test_the_timeout_is_checked_and_travels_with_the_handle(cache: raycache.Cache) -> None:
    with pytest.raises(ValueError, match="timeout"):
        raycache.Cache(cache.name, timeout=0)
    with pytest.raises(TypeError, match="timeout"):
        raycache.Cache.attach(cache.name, timeout="fast")  # type: ignore[arg-type]
    handle = raycache.Cache.attach(cache.name, timeout=0.5)
    assert pickle.loads(pickle.dumps(handle)).shard_client.health.timeout == 0.5


def test_computations_started_on_a_restarting_shard_are_bounded(cache_name: str) -> None:
    # A memoized call run on the cluster looks its key up, then asks the shard to start
    # the computation. A restarting shard is avoided once a call to it fails or is late:
    # the caller computes the value itself.
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB", timeout=TIMEOUT)
    try:
        triple = raycache.memoize(cache=cache, run_on="cluster")(_triple)
        assert [triple(x) for x in range(20)] == [3 * x for x in range(20)]
        shard = ray.get_actor(shard_actor_name(cache_name, shard_id(0)), namespace=NAMESPACE)
        ray.kill(shard, no_restart=False)
        time.sleep(0.5)  # dead: a lookup it answered as it died would send a compute after it
        worst = 0.0
        for x in range(20, 60):
            started = time.monotonic()
            assert triple(x) == 3 * x
            worst = max(worst, time.monotonic() - started)
        assert worst <= 2 * TIMEOUT + SLACK, f"a computation waited {worst:.3f} s"
    finally:
        cache.shutdown()


def _triple(x: int) -> int:
    return 3 * x
