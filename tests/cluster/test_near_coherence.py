"""The coherent near cache on a real Ray: another process's changes reach a near reader.

The writer is a Ray actor, a process of its own, as another job's handle would be. A
change reaches the reader by a push, so each test waits for it with a deadline wide
enough for a loaded machine, never with a fixed sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import ray

import raycache
from raycache.actors.cluster import NAMESPACE, shard_actor_name
from raycache.actors.intake import PUSH_LIMIT
from raycache.core.keys import key_digest
from raycache.core.near_cache import REFERENCE_SIZE

DEADLINE_S = 20.0


@ray.remote(num_cpus=0)
class Writer:
    """A handle on the cache in a process of its own."""

    def __init__(self, name: str) -> None:
        self.cache = raycache.Cache.attach(name)

    def do(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.cache, method)(*args, **kwargs)

    def write_for(self, seconds: float, keys: int, me: int) -> int:
        """Write ``(me, n)`` with n counting up, over ``keys`` keys, for ``seconds``."""
        end = time.monotonic() + seconds
        count = 0
        while time.monotonic() < end:
            self.cache.put(count % keys, (me, count))
            count += 1
        return count


def eventually(check: Callable[[], bool], seconds: float = DEADLINE_S) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.005)
    return check()


def near_reader(name: str, **options: Any) -> raycache.Cache:
    """A near-cache handle whose shards have all answered a poll, so it keeps reads."""
    reader = raycache.Cache.attach(name, near_cache=True, **options)
    reader.get("warm-up")
    assert eventually(lambda: _live(reader))
    return reader


def _live(reader: raycache.Cache) -> bool:
    copies = reader._reader.copies  # type: ignore[union-attr]
    shards = copies._shards
    return len(shards) == reader.config.shards and all(s.live for s in shards.values())


def held(reader: raycache.Cache, key: Any) -> Any:
    """Read ``key`` twice: the second read is the near cache's if it kept the first."""
    reader.get(key)
    return reader.get(key)


def test_another_processs_changes_reach_a_near_reader(fresh_cache: raycache.Cache) -> None:
    writer = Writer.remote(fresh_cache.name)
    fresh_cache.put_many({"a": 1, "b": 1, "c": 1})
    fresh_cache.put("t", 1, tags=["group"])
    reader = near_reader(fresh_cache.name)
    assert [held(reader, key) for key in "abct"] == [1, 1, 1, 1]
    hits = reader._reader.copies.hits  # type: ignore[union-attr]
    assert hits >= 4
    ray.get(writer.do.remote("put", "a", 2))
    assert eventually(lambda: reader.get("a") == 2)
    ray.get(writer.do.remote("delete", "b"))
    assert eventually(lambda: reader.get("b") is None)
    ray.get(writer.do.remote("invalidate_tag", "group"))
    assert eventually(lambda: reader.get("t") is None)
    held(reader, "c")
    ray.get(writer.do.remote("clear"))
    assert eventually(lambda: reader.get("c") is None)
    stats = reader.stats()
    assert stats["near_hits"] >= hits and stats["near_invalidations"] >= 4


def test_a_small_write_is_pushed_and_a_large_or_ttld_one_invalidated(
    fresh_cache: raycache.Cache,
) -> None:
    writer = Writer.remote(fresh_cache.name)
    big = b"x" * (PUSH_LIMIT + 1)
    fresh_cache.put_many({"small": 1, "big": b"", "ttl": 1})
    reader = near_reader(fresh_cache.name)
    assert [held(reader, key) for key in ("small", "big", "ttl")] == [1, b"", 1]
    copies = reader._reader.copies  # type: ignore[union-attr]
    ray.get(writer.do.remote("put", "small", 2))
    assert eventually(lambda: copies.get(key_digest("small")) == 2)  # replaced, not dropped
    ray.get(writer.do.remote("put", "big", big))
    ray.get(writer.do.remote("put", "ttl", 2, ttl=600))
    for key in ("big", "ttl"):
        assert eventually(lambda key=key: copies.get(key_digest(key)) is None)
    assert [reader.get(key) for key in ("small", "big", "ttl")] == [2, big, 2]


def test_a_copy_ends_with_its_entrys_ttl(fresh_cache: raycache.Cache) -> None:
    reader = near_reader(fresh_cache.name)
    fresh_cache.put("brief", "v", ttl=1.0)
    start = time.monotonic()
    assert held(reader, "brief") == "v" or time.monotonic() - start > 1.0
    assert eventually(lambda: reader.get("brief") is None, seconds=5.0)


def test_a_resize_reaches_a_near_reader(fresh_cache: raycache.Cache) -> None:
    writer = Writer.remote(fresh_cache.name)
    fresh_cache.put_many({key: "old" for key in range(30)})
    reader = near_reader(fresh_cache.name)
    assert all(held(reader, key) == "old" for key in range(30))
    ray.get(writer.do.remote("resize", 3))
    ray.get(writer.do.remote("put_many", {key: "new" for key in range(30)}))
    assert eventually(lambda: all(reader.get(key) == "new" for key in range(30)))


def test_a_killed_shard_leaves_no_stale_copy(fresh_cache: raycache.Cache) -> None:
    writer = Writer.remote(fresh_cache.name)
    fresh_cache.put("k", "old")
    reader = near_reader(fresh_cache.name)
    assert held(reader, "k") == "old"
    member = reader.shard_client.member_of(_digest("k"))
    incarnation = reader._reader.copies._shards[member].incarnation  # type: ignore[union-attr]
    hits = reader._reader.copies.hits  # type: ignore[union-attr]
    shard = ray.get_actor(shard_actor_name(fresh_cache.name, member), namespace=NAMESPACE)
    ray.kill(shard, no_restart=False)
    # A put that meets the shard down is dropped, as a cache may: put until one lands.
    assert eventually(
        lambda: ray.get(writer.do.remote("put", "k", "new")) or fresh_cache.get("k") == "new"
    )
    # The reader learns of the death when Ray fails its poll, about a second at most.
    assert eventually(lambda: reader.get("k") == "new")
    copies = reader._reader.copies  # type: ignore[union-attr]
    assert eventually(lambda: copies._shards[member].incarnation != incarnation)
    assert eventually(lambda: held(reader, "k") == "new" and copies.hits > hits)


def test_the_near_cache_stays_within_its_byte_bound(fresh_cache: raycache.Cache) -> None:
    fresh_cache.put_many({key: b"x" * 1000 for key in range(100)})
    reader = near_reader(fresh_cache.name, near_cache_capacity=20_000)
    for key in range(100):
        assert held(reader, key) == b"x" * 1000
    copies = reader._reader.copies  # type: ignore[union-attr]
    assert 0 < copies.bytes <= 20_000 and 0 < len(copies) <= 20
    assert eventually(lambda: 0 < reader.stats()["near_bytes"] <= 20_000)


def test_a_large_value_is_held_by_reference(fresh_cache: raycache.Cache) -> None:
    array = np.arange(500_000, dtype=np.int64)  # 4 MB, kept in the object store
    fresh_cache.put("big", array)
    reader = near_reader(fresh_cache.name)
    np.testing.assert_array_equal(held(reader, "big"), array)
    copies = reader._reader.copies  # type: ignore[union-attr]
    assert copies.hits >= 1 and copies.bytes == REFERENCE_SIZE


def test_a_handle_reads_its_own_writes(fresh_cache: raycache.Cache) -> None:
    reader = near_reader(fresh_cache.name)
    for value in range(50):
        reader.put("mine", value)
        assert reader.get("mine") == value
        assert reader.get_many(["mine"]) == {"mine": value}


@pytest.mark.slow
def test_reads_never_go_back_in_time(fresh_cache: raycache.Cache) -> None:
    """4 reader threads, 2 writer processes, 200 keys, 30 s: no value goes back in time."""
    keys, seconds = 200, 30.0
    writers = [Writer.remote(fresh_cache.name) for _ in range(2)]
    reader = near_reader(fresh_cache.name)
    errors: list[str] = []
    reads = [0]

    def read() -> None:
        latest: dict[tuple[int, int], int] = {}  # (key, writer) -> newest count seen
        end = time.monotonic() + seconds
        while time.monotonic() < end and not errors:
            key = reads[0] % keys
            reads[0] += 1
            value = reader.get(key)
            if value is None:
                continue
            me, count = value
            if count < latest.get((key, me), -1):
                errors.append(f"key {key}: ({me}, {count}) after ({me}, {latest[(key, me)]})")
            latest[(key, me)] = max(count, latest.get((key, me), -1))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    written = ray.get([w.write_for.remote(seconds, keys, me) for me, w in enumerate(writers)])
    for thread in threads:
        thread.join()
    assert not errors, errors[:5]
    assert min(written) > keys and reads[0] > 1000
    final = fresh_cache.get_many(range(keys))
    assert eventually(lambda: all(reader.get(key) == final[key] for key in range(keys)))
    assert reader._reader.copies.hits > 0  # type: ignore[union-attr]


def test_an_async_handle_keeps_a_coherent_near_cache(fresh_cache: raycache.Cache) -> None:
    import asyncio

    async def scenario() -> tuple[Any, Any, int]:
        reader = await raycache.AsyncCache.attach(fresh_cache.name, near_cache=True)
        await reader.get("warm-up")
        await asyncio.sleep(0.5)
        first = await reader.get("k")
        await reader.get("k")
        fresh_cache.put("k", "new")
        for _ in range(2000):
            if await reader.get("k") == "new":
                break
            await asyncio.sleep(0.01)
        hits = reader._reader.copies.hits  # type: ignore[union-attr]
        return first, await reader.get("k"), hits

    fresh_cache.put("k", "old")
    first, last, hits = asyncio.run(scenario())
    assert (first, last) == ("old", "new") and hits >= 1


def test_an_async_handles_batched_gets_fill_its_near_cache(fresh_cache: raycache.Cache) -> None:
    import asyncio

    fresh_cache.put_many({key: f"v{key}" for key in range(20)})

    async def scenario() -> tuple[list[Any], list[Any], int]:
        reader = await raycache.AsyncCache.attach(fresh_cache.name, near_cache=True)
        await reader.get("warm-up")
        copies = reader._reader.copies  # type: ignore[union-attr]
        for _ in range(200):  # until every shard has answered a poll
            if len(copies._shards) == 2 and all(s.live for s in copies._shards.values()):
                break
            await asyncio.sleep(0.05)
        first = await asyncio.gather(*(reader.get(key) for key in range(20)))  # one batch
        second = await asyncio.gather(*(reader.get(key) for key in range(20)))
        return first, second, copies.hits

    first, second, hits = asyncio.run(scenario())
    assert first == second == [f"v{key}" for key in range(20)] and hits >= 20


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"near_cache": "yes"}, TypeError),
        ({"near_cache_capacity": "10%"}, ValueError),
        ({"near_cache_capacity": 0}, ValueError),
        ({"near_cache_capacity": "lots"}, ValueError),
        ({"near_cache_ttl": -1}, ValueError),
    ],
)
def test_bad_near_cache_arguments(
    fresh_cache: raycache.Cache, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error, match="near_cache"):
        raycache.Cache.attach(fresh_cache.name, **options)


def _digest(key: Any) -> bytes:
    from raycache.core.keys import key_digest

    return key_digest(key)
