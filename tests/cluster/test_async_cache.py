"""The contract of raycache.AsyncCache, against a real local Ray: Cache's, awaited."""

from __future__ import annotations

import asyncio
import os
import pickle
import time
from typing import Any

import numpy as np
import pytest
import ray

import raycache
from raycache.actors.cluster import NAMESPACE
from tests.helpers.aio import asyncio_test, loop_lag

MAX_LAG_S = 0.25
"""The longest the event loop may stall while AsyncCache calls run. Blocking calls would
stall it for seconds (256 round trips of about 1 ms each, at the least); the margin is for
two cores shared by every process of the suite, where a ready coroutine may wait its turn.
The benchmark measures the real figure on a quiet machine."""


async def attached(cache: raycache.Cache) -> raycache.AsyncCache:
    return await raycache.AsyncCache.attach(cache.name)


@asyncio_test
async def test_put_get_default_contains_delete(cache: raycache.Cache) -> None:
    acache = await attached(cache)
    await acache.put("a", {"x": 1})
    assert await acache.get("a") == {"x": 1}
    assert await acache.contains("a")
    assert not await acache.contains("missing")
    assert await acache.get("missing") is None
    assert await acache.get("missing", default=7) == 7
    assert await acache.delete("a") is True
    assert await acache.delete("a") is False
    assert await acache.get("a") is None
    await acache.put_many({"a": 1, "b": 2, "c": 3})
    assert await acache.delete_many(["a", "b", "absent"]) == 2
    assert await acache.get_many(["a", "b", "c"]) == {"c": 3}
    with pytest.raises(TypeError, match=r"await acache.contains\(key\)"):
        _ = "a" in acache


@asyncio_test
async def test_one_cache_for_both_handles(cache: raycache.Cache) -> None:
    cache.put("from-sync", 1)
    acache = raycache.AsyncCache(cache.name)  # get-or-create: joins the running cache
    assert await acache.get("from-sync") == 1
    await acache.put("from-async", 2)
    assert cache.get("from-async") == 2
    assert (await acache.connect()).config == cache.config
    assert repr(acache).startswith(f"AsyncCache({cache.name!r}, shards=2")


@asyncio_test
async def test_get_ref_and_large_values_are_zero_copy(cache: raycache.Cache) -> None:
    acache = await attached(cache)
    assert await acache.get_ref("nothing") is None
    await acache.put("small", 42)
    small = await acache.get_ref("small")
    assert small is not None and await small == 42
    big = np.arange(1_000_000)
    await acache.put("big", big)
    got = await acache.get("big")
    np.testing.assert_array_equal(got, big)
    assert not got.flags.writeable  # mapped from the object store, not copied
    ref = await acache.get_ref("big")
    assert isinstance(ref, ray.ObjectRef)
    np.testing.assert_array_equal(await ref, big)


@asyncio_test
async def test_get_many_put_many_mix_inline_and_large(cache: raycache.Cache) -> None:
    acache = await attached(cache)
    await acache.put_many({i: i * i for i in range(300)})
    assert await acache.get_many(range(-20, 300)) == {i: i * i for i in range(300)}
    assert await acache.get_many([]) == {}
    big = np.ones(200_000)
    await acache.put_many({"small": 1, "big": big}, ttl=60)
    found = await acache.get_many(["small", "big", "nope"])
    assert set(found) == {"small", "big"}
    np.testing.assert_array_equal(found["big"], big)


@pytest.mark.parametrize("batching", [True, False])
@asyncio_test
async def test_concurrent_gets_are_right_batched_or_not(
    cache: raycache.Cache, batching: bool
) -> None:
    acache = await attached(cache)
    acache.batching = batching
    big = np.arange(50_000)  # above the inline limit: a reference in the batch
    await acache.put_many({**{i: i for i in range(200)}, "big": big})
    keys = [*range(-28, 200), *range(20), "big", "big"]  # misses, and keys asked twice
    values = await asyncio.gather(*(acache.get(key, "none") for key in keys))
    for key, value in zip(keys[:-2], values[:-2], strict=True):
        assert value == (key if key >= 0 else "none")
    for value in values[-2:]:
        np.testing.assert_array_equal(value, big)


@asyncio_test
async def test_ttl_tags_clear_and_stats(cache_name: str) -> None:
    acache = raycache.AsyncCache(cache_name, shards=2, capacity="8MiB", ttl=30)
    await acache.put("u1", 1, tags=["users"])
    await acache.put("u2", 2, tags=("users", "vip"))
    await acache.put("short", 1, ttl=2)
    assert await acache.get("short") == 1
    await asyncio.sleep(2.5)
    assert await acache.get("short") is None
    assert await acache.invalidate_tag("users") == 2
    assert await acache.get("u1") is None
    await acache.put_many({i: i for i in range(20)})
    stats = await acache.stats()
    assert stats["entries"] == 20 and stats["expirations"] >= 1
    assert stats["capacity"] == 8 * 2**20 and len(stats["shards"]) == 2
    await acache.clear()
    assert (await acache.stats())["entries"] == 0
    await acache.shutdown()
    with pytest.raises(raycache.CacheNotFoundError):
        await raycache.AsyncCache.attach(cache_name)


@ray.remote(num_cpus=0)
def shout(text: str) -> str:
    return text.upper() + "!"


@asyncio_test
async def test_get_or_compute_takes_sync_and_async_functions(cache: raycache.Cache) -> None:
    acache = await attached(cache)
    loop = asyncio.get_running_loop()

    async def fetch(x: int, *, plus: int) -> tuple[int, bool]:
        await asyncio.sleep(0.01)
        return x + plus, asyncio.get_running_loop() is loop

    assert await acache.get_or_compute("async", fetch, 1, plus=2, ttl=60) == (3, True)
    assert await acache.get_or_compute("async", fetch, 100, plus=0) == (3, True)  # a hit
    assert await acache.get_or_compute("sync", str.upper, "x") == "X"
    assert await acache.get("sync") == "X"
    assert await acache.get_or_compute("by-task", shout, "y") == "Y!"


@asyncio_test
async def test_concurrent_get_or_compute_runs_once_and_shares_errors(
    cache: raycache.Cache,
) -> None:
    acache = await attached(cache)
    calls: list[int] = []

    async def slow(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.5)
        return x * 10

    results = await asyncio.gather(*(acache.get_or_compute("once", slow, 4) for _ in range(4)))
    assert results == [40] * 4 and calls == [4]

    async def failing() -> int:
        await asyncio.sleep(0.3)
        raise KeyError("no such row")

    outcomes = await asyncio.gather(
        *(acache.get_or_compute("fails", failing) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, KeyError) and "no such row" in str(o) for o in outcomes)
    assert not await acache.contains("fails")


def test_the_sync_cache_refuses_a_coroutine_function(cache: raycache.Cache) -> None:
    async def fetch() -> int:
        return 1

    with pytest.raises(TypeError, match="returned an awaitable"):
        cache.get_or_compute("coroutine", fetch)
    assert "coroutine" not in cache  # nothing cached, no coroutine object above all


class TestBadInput:
    @asyncio_test
    async def test_bad_keys_and_arguments(self, cache: raycache.Cache) -> None:
        acache = await attached(cache)
        for key in ([1], {"a": 1}, object()):
            for call in (
                acache.get(key),
                acache.put(key, 1),
                acache.delete(key),
                acache.contains(key),
                acache.get_ref(key),
                acache.get_many([1, key]),
                acache.get_or_compute(key, lambda: 1),
            ):
                with pytest.raises(TypeError, match="cache keys must be"):
                    await call
        with pytest.raises(TypeError, match="cache keys must be"):
            await acache.put_many({"ok": 1, object(): 2})
        assert not await acache.contains("ok")
        for ttl in (0, -1, float("nan")):
            with pytest.raises(ValueError, match="ttl must be"):
                await acache.put("k", 1, ttl=ttl)
            with pytest.raises(ValueError, match="ttl must be"):
                await acache.get_or_compute("k", lambda: 1, ttl=ttl)
        with pytest.raises(TypeError, match="not a single str"):
            await acache.put("k", 1, tags="users")
        with pytest.raises(TypeError, match="tags must be str"):
            await acache.invalidate_tag(3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="put_many takes a mapping"):
            await acache.put_many([("k", 1)])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="shards must be at least 1"):
            await acache.resize(0)
        await acache.put("still", "works")
        assert await acache.get("still") == "works"

    def test_bad_settings_raise_at_construction(self, ray_session: None) -> None:
        with pytest.raises(ValueError, match="capacity must be"):
            raycache.AsyncCache("never-created", capacity="8 gigs")
        with pytest.raises(ValueError, match="choose one of"):
            raycache.AsyncCache("never-created", policy="arc")
        with pytest.raises(ValueError, match="cache name"):
            raycache.AsyncCache("a/b")
        with pytest.raises(ValueError, match="timeout must be"):
            raycache.AsyncCache("never-created", timeout=0)
        with pytest.raises(raycache.CacheNotFoundError, match="no cache named 'nope'"):
            asyncio.run(raycache.AsyncCache.attach("nope"))
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
        assert not any(name.startswith("never-created") for name in names)

    @asyncio_test
    async def test_oversized_value_raises(self, cache_name: str) -> None:
        acache = raycache.AsyncCache(cache_name, shards=2, capacity=1_000_000)
        with pytest.raises(raycache.EntryTooLargeError):
            await acache.put("k", b"x" * 600_000)
        await acache.shutdown()


@asyncio_test
async def test_killed_shards_are_misses_never_errors_or_wrong_values(
    fresh_cache: raycache.Cache,
) -> None:
    acache = await attached(fresh_cache)
    await acache.put_many({i: i for i in range(100)})

    async def compute(key: int) -> int:
        return key

    for index in (0, 1):
        shard = ray.get_actor(f"{fresh_cache.name}/shard-{index}", namespace=NAMESPACE)
        ray.kill(shard, no_restart=False)
        gets = [acache.get(key) for key in range(100)]
        loads = [acache.get_or_compute(("c", key), compute, key) for key in range(20)]
        values = await asyncio.gather(*gets, acache.get_many(range(100)), *loads)
        assert all(value in (key, None) for key, value in enumerate(values[:100]))
        assert all(value == key for key, value in values[100].items())
        assert values[101:] == list(range(20))
    deadline = time.monotonic() + 30
    while len((await acache.stats())["shards"]) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await acache.put_many({i: i for i in range(100)})
    assert await acache.get_many(range(100)) == {i: i for i in range(100)}


@ray.remote(num_cpus=0)
class AsyncReader:
    """An async actor that reads and writes through AsyncCache handles."""

    def __init__(self, handle: raycache.AsyncCache) -> None:
        self.handle = handle

    async def round_trip(self, name: str) -> dict[str, Any]:
        attached = await raycache.AsyncCache.attach(name)
        await attached.put("from-actor", os.getpid())
        async with loop_lag() as lags:
            values = await asyncio.gather(*(self.handle.get(i) for i in range(64)))
        return {"values": values, "worst_lag": max(lags, default=0.0)}


@asyncio_test
async def test_from_an_async_actor(cache: raycache.Cache) -> None:
    acache = await attached(cache)
    await acache.put_many({i: -i for i in range(64)})
    assert await pickle.loads(pickle.dumps(acache)).get(0) == 0
    reader = AsyncReader.remote(acache)  # type: ignore[attr-defined]
    outcome = await reader.round_trip.remote(cache.name)
    assert outcome["values"] == [-i for i in range(64)]
    assert outcome["worst_lag"] < MAX_LAG_S
    assert await acache.get("from-actor") not in (None, os.getpid())
    ray.kill(reader)


@asyncio_test
async def test_the_event_loop_never_stalls(cache: raycache.Cache) -> None:
    acache = await attached(cache)
    await acache.put_many({i: i for i in range(256)})

    async def compute(key: int) -> int:
        await asyncio.sleep(0.01)
        return key

    async with loop_lag() as lags:
        for round_ in range(5):
            gets = [acache.get(i) for i in range(256)]
            puts = [acache.put(("p", round_, i), i) for i in range(16)]
            loads = [acache.get_or_compute(("c", round_, i % 4), compute, i % 4) for i in range(8)]
            results = await asyncio.gather(*gets, *puts, *loads)
            assert results[:256] == list(range(256))
    assert len(lags) > 10, "the probe ran throughout"
    assert max(lags) < MAX_LAG_S, f"the loop stalled for {max(lags) * 1e3:.0f} ms"
