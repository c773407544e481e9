"""The public contract of raycache.Cache, against a real local Ray."""

from __future__ import annotations

import pickle
import random
import time
import warnings

import numpy as np
import pyarrow as pa
import pytest
import ray

import raycache
from raycache.actors.cluster import NAMESPACE


@ray.remote(num_cpus=0)
class Counter:
    def __init__(self) -> None:
        self.count = 0

    def incr(self) -> int:
        self.count += 1
        return self.count

    def value(self) -> int:
        return self.count


def test_put_get_default_contains_delete(cache: raycache.Cache) -> None:
    cache.put("a", {"x": 1})
    assert cache.get("a") == {"x": 1}
    assert "a" in cache
    assert "missing" not in cache
    assert cache.get("missing") is None
    assert cache.get("missing", default=7) == 7
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert cache.get("a") is None


def test_none_and_falsy_values_are_values(cache: raycache.Cache) -> None:
    cache.put("none", None)
    cache.put("zero", 0)
    assert "none" in cache
    assert cache.get("none", default="absent") is None
    assert cache.get("zero", default="absent") == 0


def test_keys_of_every_supported_type(cache: raycache.Cache) -> None:
    keys = ["s", b"b", 3, 2.5, True, None, ("t", 1, (None, b"x"))]
    for index, key in enumerate(keys):
        cache.put(key, index)
    assert [cache.get(key) for key in keys] == list(range(len(keys)))
    cache.put(1, "int")
    assert cache.get(True) == 4  # True and 1 are different keys


def test_overwrite_replaces(fresh_cache: raycache.Cache) -> None:
    cache = fresh_cache
    cache.put("k", 1)
    cache.put("k", 2)
    assert cache.get("k") == 2
    assert cache.stats()["entries"] == 1


def test_get_ref_small_and_large(cache: raycache.Cache) -> None:
    assert cache.get_ref("nothing") is None
    cache.put("small", 42)
    assert ray.get(cache.get_ref("small")) == 42
    big = np.arange(1_000_000)
    cache.put("big", big)
    ref = cache.get_ref("big")
    assert isinstance(ref, ray.ObjectRef)
    np.testing.assert_array_equal(ray.get(ref), big)


def test_get_many_put_many(cache: raycache.Cache) -> None:
    cache.put_many({i: i * i for i in range(500)})
    found = cache.get_many(range(-50, 500))
    assert found == {i: i * i for i in range(500)}
    assert cache.get_many([]) == {}


def test_delete_many_removes_what_is_there_and_counts_it(cache: raycache.Cache) -> None:
    cache.put_many({i: str(i) for i in range(50)})
    big = np.arange(100_000)
    cache.put("big", big)
    assert cache.delete_many([*range(30), "big", "absent", 0]) == 31
    assert cache.get_many([*range(50), "big"]) == {i: str(i) for i in range(30, 50)}
    assert cache.delete_many([]) == 0


def test_a_batch_larger_than_a_message_goes_as_several(
    cache: raycache.Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("raycache.client.routing.MAX_BATCH", 7)
    items = {f"k{i}": i for i in range(300)}
    cache.put_many(items)
    assert cache.get_many([*items, "absent"]) == items
    assert cache.delete_many(list(items)[:100]) == 100
    assert len(cache.get_many(items)) == 200


def test_get_many_mixes_inline_and_large_values(cache: raycache.Cache) -> None:
    big = np.ones(200_000)
    cache.put_many({"small": 1, "big": big})
    found = cache.get_many(["small", "big", "nope"])
    assert set(found) == {"small", "big"}
    np.testing.assert_array_equal(found["big"], big)


def test_ttl_expires_entries(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="8MiB", ttl=30)
    cache.put("short", 1, ttl=0.3)
    cache.put("default", 2)
    assert cache.get("short") == 1
    time.sleep(0.6)
    assert cache.get("short") is None
    assert "short" not in cache
    assert cache.get("default") == 2
    stats = cache.stats()
    assert stats["expirations"] >= 1
    cache.shutdown()


def test_tags_and_invalidate(cache: raycache.Cache) -> None:
    cache.put("u1", 1, tags=["users"])
    cache.put("u2", 2, tags=("users", "vip"))
    cache.put("o1", 3, tags=["orders"])
    assert cache.invalidate_tag("users") == 2
    assert cache.get("u1") is None and cache.get("u2") is None
    assert cache.get("o1") == 3
    assert cache.invalidate_tag("users") == 0


def test_clear(cache: raycache.Cache) -> None:
    cache.put_many({i: i for i in range(50)})
    cache.clear()
    assert cache.get_many(range(50)) == {}
    assert cache.stats()["entries"] == 0


def test_stats_fields(fresh_cache: raycache.Cache) -> None:
    cache = fresh_cache
    cache.put("a", 1)
    cache.get("a")
    cache.get("b")
    stats = cache.stats()
    for field in ("hits", "misses", "hit_ratio", "evictions", "expirations", "entries",
                  "bytes", "capacity", "shards"):  # fmt: skip
        assert field in stats
    assert stats["hits"] == 1 and stats["misses"] == 1 and stats["hit_ratio"] == 0.5
    assert stats["capacity"] == 64 * 2**20
    assert len(stats["shards"]) == 2
    assert {row["shard"] for row in stats["shards"]} == {"shard-0", "shard-1"}


def test_get_or_compute_counts_one_miss_then_one_hit(fresh_cache: raycache.Cache) -> None:
    assert fresh_cache.get_or_compute("counted", str.upper, "x") == "X"
    # The task reports its result to the shard by a message that may still be on its way.
    deadline = time.monotonic() + 30
    while fresh_cache.stats()["entries"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fresh_cache.get_or_compute("counted", str.upper, "x") == "X"
    stats = fresh_cache.stats()
    assert (stats["misses"], stats["hits"]) == (1, 1)


def test_get_or_compute_caches_and_computes_once(cache: raycache.Cache) -> None:
    counter = Counter.remote()

    def slow_square(x: int) -> int:
        ray.get(counter.incr.remote())
        time.sleep(1.0)
        return x * x

    @ray.remote(num_cpus=0)
    def caller(handle: raycache.Cache) -> int:
        return handle.get_or_compute("sq", slow_square, 9)

    results = ray.get([caller.remote(cache) for _ in range(8)])
    assert results == [81] * 8
    assert ray.get(counter.value.remote()) == 1
    assert cache.get_or_compute("sq", slow_square, 9) == 81
    assert ray.get(counter.value.remote()) == 1
    assert cache.get("sq") == 81


def test_get_or_compute_passes_kwargs_and_ttl(cache: raycache.Cache) -> None:
    assert cache.get_or_compute("kw", lambda a, b=0: a + b, 1, b=2, ttl=60) == 3
    assert cache.get("kw") == 3  # read-your-writes, even before the task reports back


def test_a_computed_key_is_present_at_once(cache: raycache.Cache) -> None:
    for n in range(5):
        assert cache.get_or_compute(("present", n), int, n) == n
        assert ("present", n) in cache


def test_get_or_compute_large_result_is_held_as_ref(cache: raycache.Cache) -> None:
    value = cache.get_or_compute("arr", np.arange, 500_000)
    np.testing.assert_array_equal(value, np.arange(500_000))
    deadline = time.time() + 10
    while cache.stats()["entries"] == 0 and time.time() < deadline:
        time.sleep(0.05)
    np.testing.assert_array_equal(cache.get("arr"), np.arange(500_000))
    assert cache.stats()["bytes"] >= 4_000_000


def test_get_or_compute_error_reaches_caller_and_is_not_cached(cache: raycache.Cache) -> None:
    def boom() -> int:
        raise KeyError("no such row")

    with pytest.raises(KeyError, match="no such row"):
        cache.get_or_compute("boom", boom)
    assert "boom" not in cache
    assert cache.get_or_compute("boom", lambda: 5) == 5


def test_handle_pickles_into_tasks_and_actors(cache: raycache.Cache) -> None:
    cache.put("shared", "hello")
    assert pickle.loads(pickle.dumps(cache)).get("shared") == "hello"

    @ray.remote(num_cpus=0)
    def read(handle: raycache.Cache) -> str:
        return handle.get("shared")

    @ray.remote(num_cpus=0)
    class Writer:
        def __init__(self, handle: raycache.Cache) -> None:
            self.handle = handle

        def write(self) -> None:
            self.handle.put("from-actor", 5)

    assert ray.get(read.remote(cache)) == "hello"
    writer = Writer.remote(cache)
    ray.get(writer.write.remote())
    assert cache.get("from-actor") == 5


def test_get_or_create_by_name(cache: raycache.Cache) -> None:
    cache.put("k", "v")
    again = raycache.Cache(cache.name)
    assert again.get("k") == "v"
    assert again.config == cache.config
    attached = raycache.Cache.attach(cache.name)
    assert attached.get("k") == "v"


def test_conflicting_settings_warn_and_keep_the_running_ones(fresh_cache: raycache.Cache) -> None:
    cache = fresh_cache
    with pytest.warns(UserWarning, match="already running with capacity="):
        other = raycache.Cache(cache.name, capacity="1GiB")
    assert other.config.capacity == 64 * 2**20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raycache.Cache(cache.name, capacity="64MiB", shards=2)


def test_attach_to_missing_cache_raises(ray_session: None) -> None:
    with pytest.raises(raycache.CacheNotFoundError, match="no cache named 'nope'"):
        raycache.Cache.attach("nope")


def test_actors_are_named_after_the_cache(cache: raycache.Cache) -> None:
    names = {
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == NAMESPACE
    }
    assert {f"{cache.name}/router", f"{cache.name}/shard-0", f"{cache.name}/shard-1"} <= names
    shard = ray.get_actor(f"{cache.name}/shard-0", namespace=NAMESPACE)
    assert "Shard" in repr(shard)


def test_byte_budget_holds_under_random_workload(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity=2_000_000, policy="lfu")
    rng = random.Random(5)
    for _ in range(300):
        key = rng.randrange(200)
        if rng.random() < 0.6:
            cache.put(key, b"x" * rng.choice([10, 1_000, 50_000, 200_000]))
        else:
            cache.get(key)
        if rng.random() < 0.1:
            for row in cache.stats()["shards"]:
                assert row["bytes"] <= row["capacity"]
    stats = cache.stats()
    assert stats["bytes"] <= stats["capacity"] == 2_000_000
    assert stats["evictions"] > 0
    cache.shutdown()


@pytest.mark.parametrize("policy", sorted(raycache.POLICIES))
def test_every_policy_runs_on_the_cluster(cache_name: str, policy: str) -> None:
    cache = raycache.Cache(f"{cache_name}-{policy}", shards=2, capacity=100_000, policy=policy)
    for i in range(100):
        cache.put(i, b"y" * 5_000)
        cache.get(i)
    stats = cache.stats()
    assert stats["bytes"] <= 100_000 and stats["evictions"] > 0
    assert stats["policy"] == policy
    cache.shutdown()


def test_resize_keeps_most_keys_and_stays_correct(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB")
    other_client = raycache.Cache.attach(cache_name)
    cache.put_many({i: i for i in range(1_000)})
    cache.resize(3)
    kept = cache.get_many(range(1_000))
    assert all(value == key for key, value in kept.items())
    assert len(kept) >= 600  # about 2/3 stay where they were
    assert len(other_client.get_many(range(1_000))) == len(kept)  # picks up the new epoch
    cache.resize(1)
    assert all(value == key for key, value in cache.get_many(range(1_000)).items())
    cache.put("after", 1)
    assert other_client.get("after") == 1
    assert len(cache.stats()["shards"]) == 1
    cache.shutdown()


def test_killed_shard_restarts_and_misses_instead_of_failing(fresh_cache: raycache.Cache) -> None:
    cache = fresh_cache
    cache.put_many({i: i for i in range(100)})
    shard = ray.get_actor(f"{cache.name}/shard-0", namespace=NAMESPACE)
    ray.kill(shard, no_restart=False)
    found = cache.get_many(range(100))
    assert all(value == key for key, value in found.items())
    for key in range(100):
        assert cache.get(key) in (key, None)
    deadline = time.time() + 30
    while len(cache.stats()["shards"]) < 2 and time.time() < deadline:
        time.sleep(0.2)
    cache.put_many({i: i for i in range(100)})
    assert cache.get_many(range(100)) == {i: i for i in range(100)}


def test_shutdown_removes_the_actors(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="1MiB")
    cache.shutdown()
    with pytest.raises(raycache.CacheNotFoundError):
        raycache.Cache.attach(cache_name)


class TestBadInput:
    @pytest.mark.parametrize("key", [[1], {"a": 1}, {1}, object(), (1, [2])])
    def test_bad_keys_raise_type_error(self, cache: raycache.Cache, key: object) -> None:
        for call in (
            lambda: cache.get(key),
            lambda: cache.put(key, 1),
            lambda: cache.delete(key),
            lambda: key in cache,
            lambda: cache.get_ref(key),
            lambda: cache.get_many([1, key]),
            lambda: cache.get_or_compute(key, lambda: 1),
        ):
            with pytest.raises(TypeError, match="cache keys must be"):
                call()
        cache.put("still", "works")
        assert cache.get("still") == "works"

    def test_put_many_with_a_bad_key_stores_nothing(self, cache: raycache.Cache) -> None:
        with pytest.raises(TypeError, match="cache keys must be"):
            cache.put_many({"ok": 1, object(): 2})
        assert "ok" not in cache

    @pytest.mark.parametrize("capacity", [0, -5, "8 gigs", "200%", ""])
    def test_bad_capacity(self, ray_session: None, capacity: object) -> None:
        with pytest.raises(ValueError, match="capacity must be"):
            raycache.Cache("never-created", capacity=capacity)  # type: ignore[arg-type]

    @pytest.mark.parametrize("capacity", [1.5, True, [1]])
    def test_capacity_of_a_wrong_type(self, ray_session: None, capacity: object) -> None:
        with pytest.raises(TypeError, match="capacity must be an int of bytes or a str"):
            raycache.Cache("never-created", capacity=capacity)  # type: ignore[arg-type]

    def test_unknown_policy_lists_known_ones(self, ray_session: None) -> None:
        known = "adaptive, fifo, gdsf, lfu, lru, tinylfu"
        with pytest.raises(ValueError, match=f"choose one of: {known}"):
            raycache.Cache("never-created", policy="arc")

    @pytest.mark.parametrize("ttl", [0, -1, float("nan")])
    def test_bad_ttl(self, cache: raycache.Cache, ttl: float) -> None:
        with pytest.raises(ValueError, match="ttl must be"):
            cache.put("k", 1, ttl=ttl)
        with pytest.raises(ValueError, match="ttl must be"):
            cache.put_many({"k": 1}, ttl=ttl)
        with pytest.raises(ValueError, match="ttl must be"):
            cache.get_or_compute("k", lambda: 1, ttl=ttl)
        with pytest.raises(ValueError, match="ttl must be"):
            raycache.Cache("never-created", ttl=ttl)

    def test_bad_tags(self, cache: raycache.Cache) -> None:
        with pytest.raises(TypeError, match="not a single str"):
            cache.put("k", 1, tags="users")
        with pytest.raises(TypeError, match="tags must be str"):
            cache.put("k", 1, tags=[1])
        with pytest.raises(TypeError, match="tags must be str"):
            cache.invalidate_tag(3)  # type: ignore[arg-type]

    def test_bad_names_and_shards(self, ray_session: None) -> None:
        with pytest.raises(ValueError, match="cache name"):
            raycache.Cache("a/b")
        with pytest.raises(TypeError, match="cache name must be a str"):
            raycache.Cache(5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="shards must be at least 1"):
            raycache.Cache("never-created", shards=0)

    def test_bad_resize(self, cache: raycache.Cache) -> None:
        with pytest.raises(ValueError, match="shards must be at least 1"):
            cache.resize(0)
        with pytest.raises(TypeError, match="shards must be an int"):
            cache.resize("3")  # type: ignore[arg-type]

    def test_oversized_value_raises_and_keeps_the_old_one(self, cache_name: str) -> None:
        cache = raycache.Cache(cache_name, shards=2, capacity=1_000_000)
        cache.put("k", b"old")
        with pytest.raises(raycache.EntryTooLargeError, match="exceeds the budget of 500000"):
            cache.put("k", b"x" * 600_000)
        with pytest.raises(raycache.EntryTooLargeError):
            cache.put_many({"k": b"x" * 600_000})
        assert cache.get("k") == b"old"
        cache.shutdown()

    def test_oversized_computed_value_is_returned_but_not_cached(self, cache_name: str) -> None:
        cache = raycache.Cache(cache_name, shards=2, capacity=1_000_000)
        value = cache.get_or_compute("big", lambda: b"x" * 600_000)
        assert len(value) == 600_000
        time.sleep(0.5)
        assert "big" not in cache
        cache.shutdown()

    def test_unpicklable_value_raises_and_cache_still_serves(self, cache: raycache.Cache) -> None:
        import threading

        with pytest.raises(TypeError):
            cache.put("lock", threading.Lock())
        cache.put("fine", 1)
        assert cache.get("fine") == 1

    def test_no_instances_were_created_by_bad_input(self, ray_session: None) -> None:
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
        assert not any(name.startswith("never-created") for name in names)


def test_large_arrow_table_is_zero_copy(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="512MiB")
    rows = 100 * 2**20 // 8
    big = pa.table({"x": np.arange(rows, dtype=np.int64)})
    small = pa.table({"x": np.arange(2**20 // 8, dtype=np.int64)})
    cache.put("big", big)
    cache.put("small", small)
    got = cache.get("big")
    assert got.equals(big)
    # A zero-copy read maps the object store: the buffers are not writable copies.
    assert not got.column("x").chunks[0].buffers()[1].is_mutable

    def p50(key: str) -> float:
        times = []
        for _ in range(15):
            started = time.perf_counter()
            cache.get(key)
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]

    p50("big"), p50("small")  # warm both paths
    assert p50("big") < 5 * p50("small") + 0.005  # 100x the data, about the same cost
    cache.shutdown()


def test_shutdown_twice_is_harmless(cache_name: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="1MiB")
    cache.shutdown()
    cache.shutdown()
