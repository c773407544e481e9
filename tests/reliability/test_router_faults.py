"""A killed router loses no entry and fails no call; the cache gets a router back by itself.

The router is killed both ways: restartable (Ray starts it again under the same handle)
and for good (a client starts it again from the cache's recorded settings).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest
import ray

import raycache
from raycache.actors import registry
from raycache.actors.cluster import NAMESPACE, router_name
from raycache.client.admin import cache_names
from tests.helpers.cli import run_cli

KEYS = 100
RECOVERY_S = 10.0
"""How long the cache may take to answer its router's calls again after a kill."""


def value_of(key: int) -> Any:
    """The only value ``key`` holds: every tenth one an array above the inline limit."""
    return np.arange(20_000) * key if key % 10 == 0 else f"value-{key}"


def assert_all_there(cache: raycache.Cache, keys: range) -> None:
    for key in keys:
        np.testing.assert_equal(cache.get(key), value_of(key))


def kill_router(cache: raycache.Cache, *, restartable: bool) -> None:
    router = ray.get_actor(router_name(cache.name), namespace=NAMESPACE)
    ray.kill(router, no_restart=not restartable)


def timed(what: str, call: Any) -> Any:
    """Return ``call()``, asserting that it answered within :data:`RECOVERY_S`."""
    started = time.monotonic()
    result = call()
    took = time.monotonic() - started
    print(f"{what}: {took:.2f} s")
    assert took < RECOVERY_S
    return result


@pytest.mark.parametrize("restartable", [True, False], ids=["restartable", "for-good"])
def test_a_killed_router_loses_no_entry_and_fails_no_call(
    fresh_cache: raycache.Cache, restartable: bool
) -> None:
    cache = fresh_cache
    cache.put_many({key: value_of(key) for key in range(KEYS)})
    kill_router(cache, restartable=restartable)

    assert_all_there(cache, range(KEYS))  # from the handle's ring, without the router
    for key in range(KEYS, KEYS + 20):
        cache.put(key, value_of(key))
    assert_all_there(cache, range(KEYS + 20))

    attached = timed("attach", lambda: raycache.Cache.attach(cache.name))
    stats = timed("stats", attached.stats)
    assert stats["entries"] == KEYS + 20 and len(stats["shards"]) == 2
    timed("resize", lambda: attached.resize(3))
    assert_all_there(attached, range(KEYS + 20))
    assert_all_there(cache, range(KEYS + 20))  # the old handle follows the new ring
    assert len(cache.stats()["shards"]) == 3


def test_a_restarted_router_places_keys_where_they_were(fresh_cache: raycache.Cache) -> None:
    cache = fresh_cache
    before = cache.shard_client.snapshot.ring
    kill_router(cache, restartable=False)
    after = raycache.Cache.attach(cache.name).shard_client.snapshot.ring
    assert after.epoch > before.epoch and after.members == before.members
    digests = [bytes([i]) * 16 for i in range(256)]
    assert [before.owner(d) for d in digests] == [after.owner(d) for d in digests]


def test_a_cache_without_a_router_is_listed_and_shut_down(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="16MiB")
    cache.put_many({key: value_of(key) for key in range(10)})
    kill_router(cache, restartable=False)
    assert cache_name in cache_names()
    cache.shutdown()
    assert registry.shards(cache_name) == {}
    assert cache_name not in cache_names()
    with pytest.raises(raycache.CacheNotFoundError):
        raycache.Cache.attach(cache_name)


def test_the_command_line_works_on_a_cache_whose_router_was_killed(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="16MiB")
    cache.put_many({key: value_of(key) for key in range(10)})
    kill_router(cache, restartable=False)
    status = run_cli("status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    assert rows[cache_name]["entries"] == 10
    kill_router(cache, restartable=False)
    assert run_cli("shutdown", cache_name).returncode == 0
    assert registry.shards(cache_name) == {} and cache_name not in cache_names()
