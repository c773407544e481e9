"""A resize moves entries to their new owner: nothing lost, nothing older served.

Every key only ever holds one value, derived from the key, so any wrong value is caught.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
import ray

import raycache
from raycache.actors.handles import bind
from raycache.actors.resizing import Move
from raycache.actors.router import Snapshot
from raycache.actors.shard import Shard
from raycache.core.keys import key_digest, key_point
from raycache.core.migration import Arrivals, Parcel, parcel
from raycache.core.ring import Ring
from raycache.core.store import Store

KEYS = 400
WRITTEN = range(KEYS, KEYS + 200)
"""Keys the load writes to; the moved keys are only read, so their survival is the move's."""

TTL_S = 8.0
TRANSIT_S = 1.0
"""How much longer a moved entry may live: its time left restarts when it lands."""
"""Long enough to outlast a resize on a busy machine, so that expiry is told from loss."""


def value_of(key: int) -> Any:
    """The only value ``key`` holds: every sixteenth one an array above the inline limit."""
    return np.arange(20_000) * key if key % 16 == 0 else f"value-{key}-" + "x" * (key % 64)


def is_value_of(key: int, value: Any) -> bool:
    expected = value_of(key)
    if isinstance(expected, np.ndarray):
        return isinstance(value, np.ndarray) and np.array_equal(value, expected)
    return bool(value == expected)


# -- what may land: pure -----------------------------------------------------------------


def _parcel(digest: bytes, tags: tuple[str, ...] = ()) -> Parcel:
    return Parcel(digest, "v", False, 1, None, tags, 1.0)


def test_a_parcel_lands_once_and_never_over_what_happened_here() -> None:
    arrivals = Arrivals(Ring(("shard-0", "shard-1")), "shard-2")
    arrivals.supersede(b"written")
    arrivals.drop_tag("t")
    assert not arrivals.admits(_parcel(b"written"))
    assert not arrivals.admits(_parcel(b"tagged", ("u", "t")))
    assert arrivals.admits(_parcel(b"fresh"))
    assert not arrivals.admits(_parcel(b"fresh"))  # a second copy is older than the first
    arrivals.clear()
    assert not arrivals.admits(_parcel(b"other"))


def test_sources_are_the_previous_owners_of_keys_not_yet_settled() -> None:
    previous = Ring(("shard-0", "shard-1"))
    arrivals = Arrivals(previous, "shard-0")
    digests = [bytes([i]) * 16 for i in range(64)]
    arrivals.supersede(digests[0])
    found = arrivals.sources(digests)
    assert set(found) <= {"shard-1"}
    expected = [d for d in digests[1:] if previous.owner_at(key_point(d)) == "shard-1"]
    assert found.get("shard-1", []) == expected


def test_a_parcel_keeps_the_time_left_tags_and_cost() -> None:
    now = [100.0]
    store = Store(1000, clock=lambda: now[0])
    store.put(b"k", "v", 10, ttl=5.0, tags=("t",), cost=2.5)
    now[0] = 102.0
    entry = store.peek(b"k")
    assert entry is not None
    assert parcel(entry, "v", large=False, now=now[0]) == Parcel(
        b"k", "v", False, 10, 3.0, ("t",), 2.5
    )
    assert parcel(entry, "v", large=False, now=106.0) is None  # expired on the way


# -- resizes on a real cache ------------------------------------------------------------


def _load(
    handle: raycache.Cache, done: threading.Event, problems: list[str], ops: list[int]
) -> None:
    rng = np.random.default_rng(len(problems))
    while not done.is_set():
        try:
            keys = rng.integers(0, KEYS + len(WRITTEN), size=8).tolist()
            for key, value in handle.get_many(keys).items():
                if not is_value_of(key, value):
                    problems.append(f"get_many({key}) = {value!r:.60}")
            key = int(keys[0])
            value = handle.get(key)
            if value is not None and not is_value_of(key, value):
                problems.append(f"get({key}) = {value!r:.60}")
            written = int(rng.choice(WRITTEN))
            handle.put(written, value_of(written))
            ops[0] += 1
        except Exception as error:  # the contract: nothing reaches the caller
            problems.append(repr(error))


def test_resize_2_3_2_under_load_keeps_the_keys_and_serves_no_wrong_value(
    fresh_cache: raycache.Cache,
) -> None:
    cache = fresh_cache
    cache.put_many({key: value_of(key) for key in range(KEYS)})
    problems: list[str] = []
    ops = [0]
    done = threading.Event()
    handles = [raycache.Cache.attach(cache.name) for _ in range(2)]
    threads = [threading.Thread(target=_load, args=(h, done, problems, ops)) for h in handles]
    for thread in threads:
        thread.start()
    kept = {}
    try:
        for shards in (3, 2):
            time.sleep(1)
            started = time.monotonic()
            cache.resize(shards)
            print(f"resize to {shards}: {time.monotonic() - started:.2f} s")
            found = cache.get_many(range(KEYS))
            kept[shards] = len(found) / KEYS
            assert all(is_value_of(key, value) for key, value in found.items())
        time.sleep(1)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    print(f"kept {kept}, {ops[0]} load rounds, problems {problems[:3]}")
    assert problems == []
    assert ops[0] > 20
    assert kept[3] >= 0.99 and kept[2] >= 0.99
    assert [row["shard"] for row in cache.stats()["shards"]] == ["shard-0", "shard-1"]


def test_ttl_and_tags_survive_a_resize(fresh_cache: raycache.Cache) -> None:
    cache = fresh_cache
    written = time.monotonic()
    for key in range(60):
        cache.put(key, value_of(key), ttl=TTL_S)
    # The last entry's TTL started when its put landed, at most now: on a loaded machine
    # that is well after the first put, so its expiry is counted from here, not `written`.
    expired_by = time.monotonic() + TTL_S + TRANSIT_S
    for key in range(60, 120):
        cache.put(key, value_of(key), tags=("tagged",))
    cache.put_many({key: value_of(key) for key in range(120, 180)})
    cache.resize(3)
    assert time.monotonic() - written < TTL_S, "too slow to tell expiry from loss"
    moved = cache.stats()["shards"][2]["entries"]
    assert moved > 20  # about a third of the keys moved to the new shard
    assert len(cache.get_many(range(180))) == 180
    assert cache.invalidate_tag("tagged") == 60
    cache.resize(2)
    assert cache.get_many(range(60, 120)) == {}  # invalidated stays invalidated
    time.sleep(max(0.0, expired_by - time.monotonic()))
    assert cache.get_many(range(60)) == {}  # the time left moved with the entries
    assert len(cache.get_many(range(120, 180))) == 60


def test_what_happens_to_a_key_during_a_move_wins_over_its_arrival(
    fresh_cache: raycache.Cache,
) -> None:
    """Drives one move by hand, as the router would, pausing where a client may step in."""
    cache = fresh_cache
    client = cache.shard_client
    ring, shards = client.snapshot.ring, dict(client.shards)
    on_1 = [k for k in range(400) if ring.owner_at(key_point(key_digest(k))) == "shard-1"]
    written, deleted, tagged, cleared, untouched, pulled = on_1[:6]
    for key in (written, deleted, untouched, pulled):
        cache.put(key, value_of(key))
    cache.put(tagged, value_of(tagged), tags=("t",))
    cache.put(cleared, value_of(cleared))

    shrunk = ring.with_members(["shard-0"])
    move = Move(ring, {member: bind(shard, Shard.give) for member, shard in shards.items()})
    ray.get([s.set_ring.remote(shrunk, cache.config.capacity, move) for s in shards.values()])
    client.route_by(Snapshot(shrunk, shards, cache.config))
    assert is_value_of(pulled, cache.get(pulled))  # the new owner asks the old one

    parcels = ray.get(shards["shard-1"].hand_over.remote())  # taken, not delivered yet
    assert len(parcels) == 5
    cache.put(written, "a newer write")
    assert cache.get(deleted) is None  # on its way: a miss, never an older value
    cache.delete(deleted)
    new_owner = shards["shard-0"]
    ray.get(new_owner.invalidate_tag.remote("t"))  # a broadcast's call, without the router
    assert ray.get(new_owner.receive.remote(parcels, shrunk.epoch)) == 2
    assert cache.get(written) == "a newer write"
    assert cache.get(deleted) is None and cache.get(tagged) is None
    assert is_value_of(untouched, cache.get(untouched))
    ray.get(new_owner.clear.remote())
    assert ray.get(new_owner.receive.remote(parcels, shrunk.epoch)) == 0


@pytest.mark.parametrize("shards", [1, 3])
def test_a_resize_keeps_large_values_readable(cache_name: str, shards: int) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB")
    big = {key: np.full(50_000, key) for key in range(24)}
    cache.put_many(big)
    cache.resize(shards)
    for key, value in big.items():
        np.testing.assert_array_equal(cache.get(key), value)
    cache.shutdown()


def test_a_handle_with_an_older_ring_invalidates_entries_that_moved(
    fresh_cache: raycache.Cache,
) -> None:
    older = raycache.Cache.attach(fresh_cache.name)
    for key in range(60):
        fresh_cache.put(key, value_of(key), tags=("t",))
    fresh_cache.resize(3)
    assert older.invalidate_tag("t") == 60
    assert fresh_cache.get_many(range(60)) == {}
