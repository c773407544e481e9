"""get_or_compute_many: one lease round per shard, one loader call for the missing keys."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
import ray

import raycache
from raycache.actors.cluster import NAMESPACE
from tests.helpers.aio import asyncio_test


class Loader:
    """A batch loader that counts the keys it computes and how often it is called."""

    def __init__(self, delay_s: float = 0.0, leave_out: frozenset[Any] = frozenset()) -> None:
        self.calls: list[list[Any]] = []
        self.computed: Counter[Any] = Counter()
        self._delay_s = delay_s
        self._leave_out = leave_out
        self._lock = threading.Lock()

    def __call__(self, keys: list[Any]) -> dict[Any, Any]:
        with self._lock:
            self.calls.append(list(keys))
            self.computed.update(keys)
        time.sleep(self._delay_s)
        return {key: f"value of {key}" for key in keys if key not in self._leave_out}


def test_the_missing_keys_are_computed_in_one_call_and_cached(cache: raycache.Cache) -> None:
    cache.put_many({1: "value of 1", 2: "value of 2"})
    loader = Loader()
    keys = list(range(1, 41))
    assert cache.get_or_compute_many(keys, loader) == {k: f"value of {k}" for k in keys}
    assert len(loader.calls) == 1 and sorted(loader.calls[0]) == list(range(3, 41))
    assert cache.get_many(keys) == {k: f"value of {k}" for k in keys}
    assert cache.get_or_compute_many(keys, loader) == {k: f"value of {k}" for k in keys}
    assert len(loader.calls) == 1  # all hits now


def test_keys_the_loader_leaves_out_are_left_out_and_not_cached(cache: raycache.Cache) -> None:
    loader = Loader(leave_out=frozenset({"b"}))
    assert cache.get_or_compute_many(["a", "b", "c"], loader) == {
        "a": "value of a",
        "c": "value of c",
    }
    assert "b" not in cache
    assert cache.get_or_compute_many(["b"], Loader()) == {"b": "value of b"}


def test_a_loader_error_reaches_the_caller_and_nothing_is_cached(cache: raycache.Cache) -> None:
    def failing(keys: list[Any]) -> dict[Any, Any]:
        raise ValueError("the database is down")

    with pytest.raises(ValueError, match="the database is down"):
        cache.get_or_compute_many(["x", "y"], failing)
    assert cache.get_many(["x", "y"]) == {}
    assert cache.get_or_compute_many(["x"], Loader()) == {"x": "value of x"}


def test_a_loader_that_returns_no_mapping_is_refused(cache: raycache.Cache) -> None:
    with pytest.raises(TypeError, match="must return a mapping"):
        cache.get_or_compute_many(["k"], lambda keys: [1])
    with pytest.raises(TypeError, match="function of a list of keys"):
        cache.get_or_compute_many(["k"], "not a function")  # type: ignore[arg-type]
    assert "k" not in cache


def test_concurrent_callers_compute_each_key_once(cache: raycache.Cache) -> None:
    loader = Loader(delay_s=0.5)
    results: list[dict[Any, Any]] = []
    batches = [list(range(0, 60)), list(range(30, 90)), list(range(0, 90, 2))]
    threads = [
        threading.Thread(target=lambda b=b: results.append(cache.get_or_compute_many(b, loader)))
        for b in batches
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(map(len, results)) == sorted(map(len, batches))
    for found in results:
        assert all(value == f"value of {key}" for key, value in found.items())
    assert set(loader.computed) == set(range(90))
    assert max(loader.computed.values()) == 1  # none computed twice


@asyncio_test
async def test_an_async_cache_awaits_a_coroutine_loader(cache: raycache.Cache) -> None:
    acache = await raycache.AsyncCache.attach(cache.name)
    calls: list[list[Any]] = []

    async def load(keys: list[Any]) -> dict[Any, Any]:
        calls.append(keys)
        return {key: key * 2 for key in keys}

    assert await acache.get_or_compute_many([1, 2, 3], load) == {1: 2, 2: 4, 3: 6}
    assert await acache.get_or_compute_many([1, 2, 3, 4], load) == {1: 2, 2: 4, 3: 6, 4: 8}
    assert calls == [[1, 2, 3], [4]]


def test_a_killed_shard_costs_recomputation_never_an_error_or_a_wrong_value(
    fresh_cache: raycache.Cache,
) -> None:
    cache = fresh_cache
    cache.put_many({i: f"value of {i}" for i in range(0, 100, 2)})
    ray.kill(ray.get_actor(f"{cache.name}/shard-0", namespace=NAMESPACE), no_restart=False)
    loader = Loader()
    found = cache.get_or_compute_many(range(100), loader)
    assert found == {i: f"value of {i}" for i in range(100)}
    deadline = time.time() + 30
    while len(cache.stats()["shards"]) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert cache.get_or_compute_many(range(100), Loader()) == found
