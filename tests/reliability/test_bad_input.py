"""Wrong types and values at every public entry point: each gets its documented exception
or fallback, before or without harm to the cache, which serves normally afterwards."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import ray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import raycache

_round_trips = itertools.count()
fuzz = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

bad_keys = st.one_of(
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sets(st.integers(), max_size=3),
    st.builds(object),
    st.just(np.int64(3)),
    st.tuples(st.integers(), st.lists(st.integers(), max_size=2)),
)
non_positive_ttls = st.one_of(
    st.floats(max_value=0.0), st.integers(max_value=0), st.just(math.nan), st.just(math.inf)
)
wrong_type_ttls = st.one_of(st.text(max_size=3), st.lists(st.integers(), max_size=2), st.just(True))
bad_capacities = st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=True),
    st.sampled_from(["", "lots", "-1GiB", "0%", "150%", "12 parsecs", "GiB"]),
    st.lists(st.integers(), max_size=2),
)
bad_shards = st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=2), st.just(True))
bad_policies = st.one_of(
    st.text(max_size=8).filter(lambda name: name not in raycache.POLICIES), st.integers()
)


def assert_still_serves(cache: raycache.Cache) -> None:
    key = ("round-trip", next(_round_trips))
    cache.put(key, key)
    assert cache.get(key) == key


def expect(
    cache: raycache.Cache,
    error: type[Exception] | tuple[type[Exception], ...],
    call: Callable[[], Any],
) -> None:
    with pytest.raises(error):
        call()
    assert_still_serves(cache)


def test_bad_keys_raise_type_error_at_every_entry_point(cache: raycache.Cache) -> None:
    @fuzz
    @given(key=bad_keys)
    def check(key: Any) -> None:
        expect(cache, TypeError, lambda: cache.get(key))
        expect(cache, TypeError, lambda: cache.put(key, 1))
        expect(cache, TypeError, lambda: cache.delete(key))
        expect(cache, TypeError, lambda: key in cache)
        expect(cache, TypeError, lambda: cache.get_ref(key))
        expect(cache, TypeError, lambda: cache.get_many(["fine", key]))
        expect(cache, TypeError, lambda: cache.put_many({key: 1}))
        expect(cache, TypeError, lambda: cache.get_or_compute(key, int))

    check()


def test_bad_ttls_raise_value_or_type_error(cache: raycache.Cache) -> None:
    @fuzz
    @given(ttl=non_positive_ttls, wrong=wrong_type_ttls)
    def check(ttl: Any, wrong: Any) -> None:
        expect(cache, ValueError, lambda: cache.put("k", 1, ttl=ttl))
        expect(cache, ValueError, lambda: cache.put_many({"k": 1}, ttl=ttl))
        expect(cache, ValueError, lambda: cache.get_or_compute("k", int, ttl=ttl))
        expect(cache, ValueError, lambda: raycache.memoize(ttl=ttl))
        expect(cache, ValueError, lambda: raycache.memoize(refresh_after=ttl))
        expect(cache, TypeError, lambda: cache.put("k", 1, ttl=wrong))

    check()


BAD_NAMES = ("", " padded ", "a/b", "a\\b", ".", "..", "a\0b", "line\nbreak", "x" * 64)
"""Names that would leave the storage folder, break a path or a label, or run too long."""


def test_keys_nested_past_the_limit_are_a_type_error(cache: raycache.Cache) -> None:
    deep: Any = ()
    for _ in range(5000):
        deep = (deep,)
    with pytest.raises(TypeError, match="nest"):
        cache.put(deep, 1)
    with pytest.raises(TypeError, match="nest"):
        cache.get(deep)


def test_bad_settings_are_refused_before_any_cache_starts(cache_name: str, tmp_path: Any) -> None:
    @fuzz
    @given(capacity=bad_capacities, shards=bad_shards, policy=bad_policies, ttl=non_positive_ttls)
    def check(capacity: Any, shards: Any, policy: Any, ttl: Any) -> None:
        with pytest.raises((ValueError, TypeError)):
            raycache.Cache(cache_name, capacity=capacity)
        with pytest.raises((ValueError, TypeError)):
            raycache.Cache(cache_name, shards=shards)
        with pytest.raises((ValueError, TypeError)):
            raycache.Cache(cache_name, policy=policy)
        with pytest.raises(ValueError):
            raycache.Cache(cache_name, ttl=ttl)
        with pytest.raises(ValueError):
            raycache.Cache(cache_name, near_cache_ttl=ttl)

    check()
    for name in BAD_NAMES:
        with pytest.raises(ValueError, match="cache name"):
            raycache.Cache(name)
    huge = "1" + "0" * 400
    for overflowing in ({"capacity": huge}, {"capacity": int(huge)}, {"ttl": 10**400}):
        with pytest.raises(ValueError):
            raycache.Cache(cache_name, **overflowing)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="storage_capacity"):
        raycache.Cache(cache_name, storage=str(tmp_path), storage_capacity=huge)
    with pytest.raises(TypeError):
        raycache.Cache(42)  # type: ignore[arg-type]
    with pytest.raises(raycache.CacheNotFoundError):
        raycache.Cache.attach(cache_name)  # nothing was started by any refused call


def test_bad_resize_leaves_the_shards_as_they_were(fresh_cache: raycache.Cache) -> None:
    @fuzz
    @given(shards=bad_shards)
    def check(shards: Any) -> None:
        expect(fresh_cache, (ValueError, TypeError), lambda: fresh_cache.resize(shards))  # type: ignore[arg-type]
        assert len(fresh_cache.stats()["shards"]) == 2

    check()


def test_bad_tags_and_batches_raise_type_error(cache: raycache.Cache) -> None:
    expect(cache, TypeError, lambda: cache.put("k", 1, tags="users"))
    expect(cache, TypeError, lambda: cache.put("k", 1, tags=[1]))
    expect(cache, TypeError, lambda: cache.put("k", 1, tags=None))  # type: ignore[arg-type]
    expect(cache, TypeError, lambda: cache.invalidate_tag(5))  # type: ignore[arg-type]
    expect(cache, TypeError, lambda: cache.get_many(None))  # type: ignore[arg-type]
    expect(cache, TypeError, lambda: cache.put_many([("a", 1)]))  # type: ignore[arg-type]
    assert cache.get(("a", 1)) is None  # a list of pairs is refused, not half-stored


def test_values_too_large_for_a_shard_leave_the_old_value(cache: raycache.Cache) -> None:
    budget = cache.config.shard_capacity()
    too_large = np.zeros(budget // 8 + 1)
    cache.put("k", "old")
    expect(cache, raycache.EntryTooLargeError, lambda: cache.put("k", too_large))
    assert cache.get("k") == "old"
    expect(cache, raycache.EntryTooLargeError, lambda: cache.put_many({"k": too_large}))
    assert cache.get("k") == "old"
    # Too large to cache is not too large to compute: it is returned, not kept.
    assert cache.get_or_compute("big", np.zeros, too_large.size).size == too_large.size
    assert "big" not in cache
    assert_still_serves(cache)


def make_lock() -> threading.Lock:
    return threading.Lock()


def test_unpicklable_values_raise_type_error_and_nothing_sticks(cache: raycache.Cache) -> None:
    cache.put("k", "old")
    expect(cache, TypeError, lambda: cache.put("k", threading.Lock()))
    expect(cache, TypeError, lambda: cache.put_many({"k": threading.Lock()}))
    assert cache.get("k") == "old"
    expect(cache, TypeError, lambda: cache.get_or_compute("arg", len, threading.Lock()))
    expect(cache, TypeError, lambda: cache.get_or_compute("result", make_lock))
    # The failed computation is forgotten: the key computes afresh, not stuck on it.
    assert cache.get_or_compute("result", int, 7) == 7
    assert cache.stats()["shards"][0]["pending"] + cache.stats()["shards"][1]["pending"] == 0


class NotAFunction:
    pass


def plain(x: int) -> int:
    return x + 1


@ray.remote
class Actor:
    pass


def test_memoize_refuses_what_it_cannot_memoize(cache: raycache.Cache) -> None:
    @fuzz
    @given(thing=st.one_of(st.integers(), st.lists(st.integers(), max_size=2), st.builds(object)))
    def check(thing: Any) -> None:
        expect(cache, TypeError, lambda: raycache.memoize(thing))
        expect(cache, TypeError, lambda: raycache.memoize(cache=thing))

    check()
    for name in BAD_NAMES:
        expect(cache, ValueError, lambda: raycache.memoize(cache=name))  # noqa: B023
    expect(cache, TypeError, lambda: raycache.memoize("not a function"))
    expect(cache, TypeError, lambda: raycache.memoize(NotAFunction))
    expect(cache, TypeError, lambda: raycache.memoize(Actor))
    expect(cache, TypeError, lambda: raycache.memoize(ignore="x"))
    expect(cache, ValueError, lambda: raycache.memoize(ignore=["y"])(plain))
    expect(cache, ValueError, lambda: raycache.memoize(ray.remote(num_returns=2)(plain)))
    memoized = raycache.memoize(cache=cache)(plain)
    expect(cache, TypeError, lambda: memoized(threading.Lock()))  # an argument with no key
    expect(cache, TypeError, lambda: memoized(1, 2))  # not the function's signature
    expect(cache, TypeError, lambda: raycache.memoize(cache=cache)(make_lock)())
    assert memoized(1) == 2
