"""The cache against a model, on real Ray, with TTLs and evictions at work.

An entry may vanish at any moment (evicted, expired, rejected by admission), so the model
only insists that a value read back is the last one written, and that what was deleted,
invalidated, cleared or has expired stays gone.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import raycache

SHARD_BUDGET = 32 * 1024
SHORT_TTL = 0.2
EXPIRY_MARGIN = 0.05
"""How much longer than a TTL to wait: the shard's clock starts a moment before ours."""

keys = st.sampled_from([0, 1, 2, "a", "b", ("t", 1), b"raw"])
sizes = st.integers(0, SHARD_BUDGET + 8 * 1024)  # some values exceed a shard's budget
tag_sets = st.frozensets(st.sampled_from(["red", "blue"]))
_serials = itertools.count()


class Gone:
    """The model's mark of a key that must not be served."""


GONE = Gone()


def value_of(size: int) -> tuple[str, int, str]:
    """Return a value never written before, of about ``size`` bytes."""
    return ("value", next(_serials), "x" * size)


def computed(key: Any, serial: int) -> tuple[str, Any, int]:
    """What ``get_or_compute`` computes: a value that names its key and call."""
    return ("computed", key, serial)


class CacheModel(RuleBasedStateMachine):
    """Drives one cache and checks it against the last value written per key."""

    cache: raycache.Cache

    def __init__(self) -> None:
        super().__init__()
        self.cache.clear()
        self.last: dict[Any, Any] = {}
        self.tags: dict[Any, frozenset[str]] = {}
        self.expiring: dict[Any, float] = {}

    def written(self, key: Any, value: Any, tags: frozenset[str] = frozenset()) -> None:
        self.last[key] = value
        self.tags[key] = tags
        self.expiring.pop(key, None)

    def check(self, key: Any, value: Any) -> None:
        if value is not None:
            assert self.last.get(key, GONE) is not GONE, f"{key!r} came back: {value!r:.60}"
            assert value == self.last[key], f"{key!r} changed value"

    @rule(key=keys, size=sizes, short_ttl=st.booleans(), tags=tag_sets)
    def put(self, key: Any, size: int, short_ttl: bool, tags: frozenset[str]) -> None:
        value = value_of(size)
        try:
            self.cache.put(key, value, ttl=SHORT_TTL if short_ttl else None, tags=tags)
        except raycache.EntryTooLargeError:
            assert size > SHARD_BUDGET // 2  # only a value near the budget may be refused
            return
        self.written(key, value, tags)
        if short_ttl:
            self.expiring[key] = time.monotonic() + SHORT_TTL + EXPIRY_MARGIN

    @rule(batch=st.dictionaries(keys, st.integers(0, 4096), max_size=4))
    def put_many(self, batch: dict[Any, int]) -> None:
        values = {key: value_of(size) for key, size in batch.items()}
        self.cache.put_many(values)
        for key, value in values.items():
            self.written(key, value)

    @rule(key=keys)
    def get(self, key: Any) -> None:
        self.check(key, self.cache.get(key))

    @rule(wanted=st.lists(keys, max_size=5))
    def get_many(self, wanted: list[Any]) -> None:
        found = self.cache.get_many(wanted)
        assert set(found) <= set(wanted)
        for key, value in found.items():
            self.check(key, value)

    @rule(key=keys)
    def contains(self, key: Any) -> None:
        if key in self.cache:
            assert self.last.get(key, GONE) is not GONE

    @rule(key=keys)
    def get_or_compute(self, key: Any) -> None:
        serial = next(_serials)
        value = self.cache.get_or_compute(key, computed, key, serial)
        if value != computed(key, serial):
            self.check(key, value)  # a hit: the entry keeps its tags and its TTL
        else:
            self.written(key, value)

    @rule(key=keys)
    def delete(self, key: Any) -> None:
        existed = self.cache.delete(key)
        assert not existed or self.last.get(key, GONE) is not GONE
        self.last[key] = GONE

    @rule(tag=st.sampled_from(["red", "blue"]))
    def invalidate_tag(self, tag: str) -> None:
        tagged = [k for k, v in self.last.items() if v is not GONE and tag in self.tags[k]]
        assert self.cache.invalidate_tag(tag) <= len(tagged)
        for key in tagged:
            self.last[key] = GONE

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        self.last = dict.fromkeys(self.last, GONE)

    @rule()
    def let_short_ttls_expire(self) -> None:
        if self.expiring:
            time.sleep(max(0.0, max(self.expiring.values()) - time.monotonic()))
            for key in self.expiring:
                self.last[key] = GONE
            self.expiring.clear()

    @invariant()
    def shards_keep_their_budget(self) -> None:
        for row in self.cache.stats()["shards"]:
            assert row["bytes"] <= row["capacity"] == SHARD_BUDGET


@pytest.mark.timeout(300)
@pytest.mark.parametrize("policy", sorted(raycache.POLICIES))
def test_cache_matches_the_model(cache_name: str, policy: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity=2 * SHARD_BUDGET, policy=policy)
    CacheModel.cache = cache
    try:
        run_state_machine_as_test(
            CacheModel,
            settings=settings(
                max_examples=12,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        cache.shutdown()
