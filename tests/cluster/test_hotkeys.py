"""Hot keys: shards flag them, and a handle with a near cache spares their shard."""

from __future__ import annotations

import time

import pytest

import raycache
from raycache.core.heat import Heat
from raycache.core.near_cache import NearCache


def test_heat_resets_every_second() -> None:
    now = [0.0]
    heat = Heat(threshold=3, clock=lambda: now[0])
    assert [heat.hit(b"k") for _ in range(3)] == [False, False, True]
    now[0] = 1.5
    assert heat.hit(b"k") is False
    assert heat.hit(b"other") is False


def test_near_cache_expires_discards_and_stays_bounded() -> None:
    now = [0.0]
    near = NearCache(ttl=1.0, max_entries=2, clock=lambda: now[0])
    near.put(b"a", 1)
    near.put(b"b", 2)
    near.put(b"c", 3)
    assert len(near) == 2
    assert near.get(b"a", None) is None  # the oldest went to make room
    near.discard(b"b")
    assert near.get(b"b", None) is None
    assert near.get(b"c", None) == 3
    now[0] = 1.0
    assert near.get(b"c", None) is None


def test_near_cache_evicts_the_least_recently_read() -> None:
    near = NearCache(ttl=10.0, max_entries=2, clock=lambda: 0.0)
    near.put(b"a", 1)
    near.put(b"b", 2)
    assert near.get(b"a", None) == 1
    near.put(b"c", 3)
    assert near.get(b"b", None) is None
    assert (near.get(b"a", None), near.get(b"c", None)) == (1, 3)
    near.clear()
    assert len(near) == 0


def _shard_hits(cache: raycache.Cache) -> int:
    return int(cache.stats()["hits"])


def test_near_cache_spares_the_shard_of_a_hot_key(fresh_cache: raycache.Cache) -> None:
    fresh_cache.put("hot", "value")
    near = raycache.Cache.attach(fresh_cache.name, near_cache_ttl=30)
    before = _shard_hits(fresh_cache)
    assert all(near.get("hot") == "value" for _ in range(400))
    served_by_shard = _shard_hits(fresh_cache) - before
    assert served_by_shard <= 110  # until the key turned hot, then none
    plain_before = _shard_hits(fresh_cache)
    assert all(fresh_cache.get("hot") == "value" for _ in range(50))
    assert _shard_hits(fresh_cache) - plain_before == 50  # no near cache: every read


def test_staleness_is_bounded_and_own_writes_show_at_once(fresh_cache: raycache.Cache) -> None:
    fresh_cache.put("hot", 1)
    near = raycache.Cache.attach(fresh_cache.name, near_cache_ttl=0.5)
    for _ in range(150):
        near.get("hot")
    fresh_cache.put("hot", 2)  # another handle writes
    assert near.get("hot") in (1, 2)
    time.sleep(0.6)
    assert near.get("hot") == 2  # never older than the bound
    for _ in range(150):
        near.get("hot")
    near.put("hot", 3)
    assert near.get("hot") == 3  # its own write, at once
    near.delete("hot")
    assert near.get("hot") is None


def test_bad_near_cache_ttl(fresh_cache: raycache.Cache) -> None:
    with pytest.raises(ValueError, match="near_cache_ttl must be"):
        raycache.Cache.attach(fresh_cache.name, near_cache_ttl=0)
    with pytest.raises(TypeError, match="near_cache_ttl must be"):
        raycache.Cache(fresh_cache.name, near_cache_ttl="1s")  # type: ignore[arg-type]
