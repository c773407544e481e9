"""Tests of raycache.core.store: the contract every policy honours, then each policy's order."""

from __future__ import annotations

import itertools
import math
import random
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from raycache.core.policies import (
    FIFOPolicy,
    GDSFPolicy,
    LFUPolicy,
    LRUPolicy,
    TinyLFUPolicy,
)
from raycache.core.store import (
    DEFAULT_POLICY,
    POLICIES,
    Entry,
    Policy,
    Store,
    StoreStats,
    make_policy,
)
from raycache.errors import EntryTooLargeError
from tests.helpers.clock import Clock

ALL = sorted(POLICIES)
# TinyLFU and adaptive may refuse a new entry; the others always keep the entry just put.
ADMIT_ALL = [name for name in ALL if POLICIES[name].admits_all]


def check_invariants(store: Store) -> None:
    store.check_invariants()


@pytest.fixture(params=ALL)
def policy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def store(policy: str, clock: Clock) -> Store:
    return Store(100, policy=policy, clock=clock)


# ---------------------------------------------------------------- contract, every policy


def test_put_then_get(store: Store, clock: Clock) -> None:
    assert store.put("k", "v", 10, tags=["t"], cost=2.5) == []
    entry = store.get("k")
    assert entry == Entry("k", "v", 10, 2.5, clock.now, None, frozenset({"t"}))
    assert "k" in store and len(store) == 1 and store.bytes == 10
    check_invariants(store)


def test_missing_key(store: Store) -> None:
    assert store.get("nope") is None
    assert store.peek("nope") is None
    assert "nope" not in store
    assert store.delete("nope") is False


def test_none_is_a_key_like_any_other(store: Store) -> None:
    store.put(None, "v", 1)
    store.put(0, "w", 1)
    assert store.get(None).value == "v"  # type: ignore[union-attr]
    assert store.delete(None) is True
    assert None not in store and 0 in store
    check_invariants(store)


def test_replace_is_not_an_eviction(store: Store) -> None:
    store.put("k", "old", 10, tags=["a"])
    assert store.put("k", "new", 30, tags=["b"]) == []
    assert store.get("k").value == "new"  # type: ignore[union-attr]
    assert store.bytes == 30 and len(store) == 1
    assert store.stats().evictions == 0
    assert store.invalidate_tag("a") == []
    assert store.invalidate_tag("b") == ["k"]
    check_invariants(store)


def test_delete(store: Store) -> None:
    store.put("k", "v", 10, tags=["t"])
    assert store.delete("k") is True
    assert store.delete("k") is False
    assert store.bytes == 0 and len(store) == 0
    check_invariants(store)


def test_size_accounting_under_pressure(store: Store) -> None:
    evicted_bytes = 0
    for i in range(50):
        evicted = store.put(i, i, 1 + i % 7, cost=1 + i % 3)
        evicted_bytes += sum(e.size for e in evicted)
        check_invariants(store)
    assert evicted_bytes + store.bytes == sum(1 + i % 7 for i in range(50))
    assert store.stats().evictions == 50 - len(store)


def test_zero_size_entries_are_counted_by_max_entries(policy: str) -> None:
    store = Store(10, policy=policy, max_entries=3)
    for i in range(10):
        store.put(i, i, 0)
        check_invariants(store)
    assert len(store) == 3 and store.bytes == 0


def test_oversized_entry_raises_and_leaves_store_intact(store: Store) -> None:
    store.put("k", "v", 40)
    store.put("other", "w", 50)
    with pytest.raises(EntryTooLargeError, match="entry of 101 bytes exceeds the budget of 100"):
        store.put("k", "huge", 101)
    with pytest.raises(EntryTooLargeError) as info:
        store.put("new", "huge", 500)
    assert (info.value.size, info.value.capacity) == (500, 100)
    assert store.peek("k").value == "v"  # type: ignore[union-attr]
    assert store.keys() == ["k", "other"] and store.bytes == 90
    assert store.stats().evictions == 0
    check_invariants(store)


@pytest.mark.parametrize("policy", ADMIT_ALL)
def test_entry_of_exactly_the_capacity_fits(policy: str) -> None:
    store = Store(100, policy=policy)
    store.put("a", 1, 60)
    store.put("b", 2, 30)
    evicted = store.put("big", 3, 100)
    assert {e.key for e in evicted} == {"a", "b"}
    assert store.keys() == ["big"] and store.bytes == 100


def test_a_new_entry_is_kept_or_reported_evicted(store: Store) -> None:
    for i in range(30):
        store.put(i, i, 5)
    evicted = store.put("big", 0, 100)
    assert ("big" in store) != ("big" in [e.key for e in evicted])
    check_invariants(store)


def test_max_entries(policy: str) -> None:
    store = Store(1000, policy=policy, max_entries=3)
    for i in range(10):
        evicted = store.put(i, i, 1)
        assert len(evicted) == (1 if i >= 3 else 0)
        check_invariants(store)
    assert len(store) == 3
    assert store.stats().evictions == 7


@pytest.mark.parametrize("policy", ADMIT_ALL)
def test_max_entries_one_keeps_the_newest(policy: str) -> None:
    store = Store(1000, policy=policy, max_entries=1)
    for i in range(5):
        store.put(i, i, 1)
        assert store.keys() == [i]


def test_tags(store: Store) -> None:
    store.put("a", 1, 1, tags=["x", "y"])
    store.put("b", 2, 1, tags=("x",))
    store.put("c", 3, 1)
    assert set(store.invalidate_tag("x")) == {"a", "b"}
    assert store.keys() == ["c"]
    assert store.invalidate_tag("y") == []
    assert store.invalidate_tag("never") == []
    assert store.tagged("x") == store.tagged("y") == []
    check_invariants(store)


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ("x", "not a single str"),
        ([1], "tags must be str, got int"),
        (["ok", None], "tags must be str, got NoneType"),
        (5, "tags must be an iterable of str, not int"),
    ],
)
def test_bad_tags(store: Store, tags: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        store.put("k", 1, 1, tags=tags)
    assert len(store) == 0


def test_invalidate_tag_needs_a_str(store: Store) -> None:
    with pytest.raises(TypeError, match="tag must be a str, not int"):
        store.invalidate_tag(1)  # type: ignore[arg-type]


def test_ttl(store: Store, clock: Clock) -> None:
    store.put("k", "v", 10, ttl=10)
    assert store.peek("k").expires_at == clock.now + 10  # type: ignore[union-attr]
    clock.now += 9.999
    assert store.get("k").value == "v"  # type: ignore[union-attr]
    clock.now += 0.001
    assert "k" not in store
    assert store.peek("k") is None
    assert len(store) == 1  # peek and `in` neither count nor purge
    assert store.get("k") is None
    assert len(store) == 0 and store.bytes == 0
    stats = store.stats()
    assert (stats.hits, stats.misses, stats.expirations) == (1, 1, 1)
    check_invariants(store)


def test_expire_purges_everything_expired(store: Store, clock: Clock) -> None:
    store.put("short", 1, 10, ttl=1)
    store.put("long", 2, 10, ttl=100)
    store.put("forever", 3, 10)
    clock.now += 50
    assert store.keys() == ["long", "forever"]
    assert store.expire() == 1
    assert store.expire() == 0
    assert len(store) == 2 and store.bytes == 20
    assert store.stats().expirations == 1
    check_invariants(store)


def test_put_purges_expired_entries_before_evicting_live_ones(policy: str) -> None:
    clock = Clock(1000.0)
    store = Store(30, policy=policy, clock=clock)
    store.put("live", 1, 10)
    store.put("dead", 2, 10, ttl=1)
    clock.now += 1
    assert store.put("new", 3, 20) == []
    assert store.keys() == ["live", "new"]
    assert store.stats().expirations == 1


def test_expired_entries_are_not_reported_live(store: Store, clock: Clock) -> None:
    store.put("a", 1, 1, ttl=1, tags=["t"])
    store.put("b", 2, 1, ttl=1, tags=["t"])
    store.put("c", 3, 1, tags=["t"])
    clock.now += 2
    assert store.delete("a") is False
    assert store.invalidate_tag("t") == ["c"]
    assert len(store) == 0 and store.stats().expirations == 2
    check_invariants(store)


def test_replacing_drops_the_old_ttl(store: Store, clock: Clock) -> None:
    store.put("k", "old", 1, ttl=1)
    store.put("k", "new", 1)
    clock.now += 5
    assert store.get("k").value == "new"  # type: ignore[union-attr]
    assert store.expire() == 0


@pytest.mark.parametrize("ttl", [0, -1, 0.0, math.nan, math.inf])
def test_bad_ttl(store: Store, ttl: Any) -> None:
    with pytest.raises(ValueError, match="ttl must be a finite number of seconds > 0"):
        store.put("k", 1, 1, ttl=ttl)
    assert len(store) == 0


@pytest.mark.parametrize("ttl", [True, "5", [1]])
def test_ttl_of_a_wrong_type(store: Store, ttl: Any) -> None:
    with pytest.raises(TypeError, match="ttl must be a number of seconds or None"):
        store.put("k", 1, 1, ttl=ttl)
    assert len(store) == 0


def test_entry_age_and_expiry() -> None:
    entry = Entry("k", 1, 1, 1.0, created_at=10.0, expires_at=15.0, tags=frozenset())
    assert entry.age(12.5) == 2.5
    assert not entry.expired(14.9) and entry.expired(15.0)
    assert not Entry("k", 1, 1, 1.0, 10.0, None, frozenset()).expired(1e18)


def test_stats(policy: str) -> None:
    store = Store(100, policy=policy, max_entries=3, clock=Clock(1000.0))
    for key in "abc":
        store.put(key, key, 1)
    assert store.get("a") is not None
    assert store.get("z") is None
    store.put("d", "d", 1)
    assert store.stats() == StoreStats(
        hits=1, misses=1, evictions=1, expirations=0, entries=3, bytes=3, capacity=100
    )
    assert store.stats().hit_ratio == 0.5
    assert StoreStats(0, 0, 0, 0, 0, 0, 1).hit_ratio == 0.0


def test_clear(store: Store, clock: Clock) -> None:
    store.put("a", 1, 10, tags=["t"])
    store.put("b", 2, 10, ttl=1)
    clock.now += 5
    assert store.clear() == 2
    assert len(store) == 0 and store.bytes == 0 and store.tagged("t") == []
    check_invariants(store)  # no tag index left behind
    assert store.stats().evictions == 0
    assert store.clear() == 0
    store.put("a", 3, 10)
    check_invariants(store)


def test_resize(store: Store) -> None:
    for i in range(10):
        store.put(i, i, 10)
    evicted = store.resize(35)
    assert len(evicted) == 7 and store.capacity == 35 and store.bytes == 30
    assert store.stats().evictions == 7 and store.stats().capacity == 35
    assert store.resize(1000) == []
    check_invariants(store)


@pytest.mark.parametrize(
    ("capacity", "error", "match"),
    [
        (0, ValueError, "capacity must be at least 1, got 0"),
        (-5, ValueError, "capacity must be at least 1, got -5"),
        (True, TypeError, "capacity must be an int, got bool"),
        (1.5, TypeError, "capacity must be an int, got float"),
        ("10", TypeError, "capacity must be an int, got str"),
    ],
)
def test_bad_capacity(store: Store, capacity: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Store(capacity)
    store.put("k", 1, 50)
    with pytest.raises(error, match=match):
        store.resize(capacity)
    assert store.capacity == 100 and "k" in store


@pytest.mark.parametrize(
    ("max_entries", "error", "match"),
    [
        (0, ValueError, "max_entries must be at least 1, got 0"),
        (2.0, TypeError, "max_entries must be an int, got float"),
        (False, TypeError, "max_entries must be an int, got bool"),
    ],
)
def test_bad_max_entries(max_entries: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Store(10, max_entries=max_entries)


def test_bad_policy() -> None:
    known = "adaptive, fifo, gdsf, lfu, lru, tinylfu"
    with pytest.raises(ValueError, match=f"^unknown policy 'arc'; choose one of: {known}$"):
        Store(10, policy="arc")
    with pytest.raises(TypeError, match="policy must be a policy name or a Policy, not int"):
        Store(10, policy=3)  # type: ignore[arg-type]
    used = LRUPolicy()
    used.insert(entry("k"))
    with pytest.raises(ValueError, match="policy must be empty"):
        Store(10, policy=used)
    with pytest.raises(TypeError, match="clock must be callable, not float"):
        Store(10, clock=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "error", "match"),
    [
        (-1, ValueError, "size must be at least 0, got -1"),
        (1.0, TypeError, "size must be an int, got float"),
        (True, TypeError, "size must be an int, got bool"),
        ("3", TypeError, "size must be an int, got str"),
    ],
)
def test_bad_size(store: Store, size: Any, error: type[Exception], match: str) -> None:
    store.put("k", "v", 1)
    with pytest.raises(error, match=match):
        store.put("k", "w", size)
    assert store.peek("k").value == "v"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("cost", "error", "match"),
    [
        (-0.5, ValueError, r"cost must be a finite number >= 0, got -0.5"),
        (math.inf, ValueError, "cost must be a finite number >= 0, got inf"),
        (math.nan, ValueError, "cost must be a finite number >= 0, got nan"),
        (True, TypeError, "cost must be a real number, got bool"),
        ("1", TypeError, "cost must be a real number, got str"),
    ],
)
def test_bad_cost(store: Store, cost: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        store.put("k", "v", 1, cost=cost)
    assert len(store) == 0


def test_int_cost_and_ttl_are_accepted(store: Store, clock: Clock) -> None:
    store.put("k", "v", 1, cost=0, ttl=3)
    entry = store.peek("k")
    assert entry is not None and entry.cost == 0.0 and entry.expires_at == clock.now + 3


def test_unhashable_key(store: Store) -> None:
    with pytest.raises(TypeError, match="unhashable"):
        store.put(["list"], 1, 1)  # type: ignore[arg-type]
    assert len(store) == 0 and store.bytes == 0
    check_invariants(store)


def test_properties_and_repr(store: Store, policy: str) -> None:
    store.put("k", 1, 7)
    assert store.policy_name == policy and store.capacity == 100 and store.max_entries is None
    assert repr(store) == f"Store(capacity=100, bytes=7, entries=1, policy={policy!r})"


def test_make_policy() -> None:
    for name, cls in POLICIES.items():
        made = make_policy(name)
        assert type(made) is cls and made.name == name and len(made) == 0
        assert make_policy(name) is not made
    with pytest.raises(TypeError, match="policy name must be a str, not NoneType"):
        make_policy(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        POLICIES["mine"] = LRUPolicy  # type: ignore[index]


def test_a_policy_instance_is_accepted() -> None:
    store = Store(10, policy=GDSFPolicy())
    store.put("k", 1, 1)
    assert store.policy_name == "gdsf"


class NewestFirst(Policy):
    """A policy that always refuses the newcomer: exercises admission rejection."""

    name = "newest"
    admits_all = False

    def __init__(self) -> None:
        self.order: OrderedDict[Hashable, Entry] = OrderedDict()

    def insert(self, entry: Entry) -> None:
        self.order[entry.key] = entry

    def touch(self, entry: Entry) -> None:
        pass

    def remove(self, entry: Entry) -> None:
        del self.order[entry.key]

    def victim(self) -> Entry:
        return next(reversed(self.order.values()))

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.order)


def test_a_refused_entry_is_returned_as_evicted() -> None:
    store = Store(10, policy=NewestFirst())
    store.put("a", 1, 6)
    [refused] = store.put("b", 2, 6)
    assert (refused.key, refused.value) == ("b", 2)
    assert store.keys() == ["a"] and store.stats().evictions == 1
    check_invariants(store)


# --------------------------------------------------------------- model-based, every policy

KEYS = st.sampled_from([0, 1, 2, 3, 4, 5, "a", None])
SIZES = st.integers(0, 3) | st.integers(0, 8)  # mostly small, so several entries fit
TAGS = ("red", "blue")


class StoreMachine(RuleBasedStateMachine):
    """Store against a dict: values never change, evictions are exactly those reported."""

    def __init__(self, policy: str) -> None:
        super().__init__()
        self.policy = policy
        self.clock = Clock(1000.0)
        self.store: Store | None = None
        # key -> (value, expires_at, size, tags)
        self.model: dict[Hashable, tuple[int, float | None, int, frozenset[str]]] = {}
        self.values = itertools.count()

    @property
    def s(self) -> Store:
        assert self.store is not None
        return self.store

    def live(self, key: Hashable) -> bool:
        if key not in self.model:
            return False
        expires_at = self.model[key][1]
        return expires_at is None or self.clock.now < expires_at

    def drop_expired(self) -> None:
        self.model = {k: v for k, v in self.model.items() if self.live(k)}

    def forget_evicted(self, evicted: list[Entry]) -> None:
        assert len({id(e) for e in evicted}) == len(evicted)
        for entry in evicted:
            assert self.model.pop(entry.key)[0] == entry.value

    @initialize(capacity=st.integers(8, 24), max_entries=st.none() | st.integers(2, 8))
    def create(self, capacity: int, max_entries: int | None) -> None:
        self.store = Store(capacity, policy=self.policy, max_entries=max_entries, clock=self.clock)

    @rule(
        key=KEYS,
        size=SIZES,
        ttl=st.none() | st.sampled_from([1, 2.5, 4]),
        tags=st.frozensets(st.sampled_from(TAGS)),
        cost=st.sampled_from([0.0, 1.0, 5.0]),
    )
    def put(
        self, key: Hashable, size: int, ttl: float | None, tags: frozenset[str], cost: float
    ) -> None:
        value = next(self.values)
        evicted = self.s.put(key, value, size, ttl=ttl, tags=tags, cost=cost)
        self.drop_expired()  # put purges every expired entry
        expires_at = None if ttl is None else self.clock.now + ttl
        self.model[key] = (value, expires_at, size, tags)
        self.forget_evicted(evicted)
        if self.policy in ADMIT_ALL:
            assert key in self.model

    @rule(items=st.lists(st.tuples(KEYS, SIZES), min_size=1, max_size=8))
    def put_plain(self, items: list[tuple[Hashable, int]]) -> None:
        for key, size in items:
            self.put(key, size, None, frozenset(), 1.0)

    @rule(key=KEYS, excess=st.integers(1, 10))
    def put_too_large(self, key: Hashable, excess: int) -> None:
        before = self.s.peek(key)
        with pytest.raises(EntryTooLargeError):
            self.s.put(key, -1, self.s.capacity + excess)
        assert self.s.peek(key) is before

    @rule(key=KEYS)
    def get(self, key: Hashable) -> None:
        entry = self.s.get(key)
        if self.live(key):
            assert entry is not None and entry.value == self.model[key][0]
        else:
            assert entry is None
            self.model.pop(key, None)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=8))
    def get_many(self, keys: list[Hashable]) -> None:
        before = self.s.stats()
        entries = self.s.get_many(keys)
        for key, entry in zip(keys, entries, strict=True):
            if self.live(key):
                assert entry is not None and entry.value == self.model[key][0]
            else:
                assert entry is None
                self.model.pop(key, None)
        after = self.s.stats()
        assert after.hits - before.hits == sum(entry is not None for entry in entries)
        assert after.misses - before.misses == sum(entry is None for entry in entries)

    @rule(key=KEYS)
    def peek(self, key: Hashable) -> None:
        entry = self.s.peek(key)
        assert (key in self.s) == self.live(key) == (entry is not None)
        if entry is not None:
            assert entry.value == self.model[key][0]

    @rule(key=KEYS)
    def delete(self, key: Hashable) -> None:
        assert self.s.delete(key) == self.live(key)
        self.model.pop(key, None)

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5]))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(tag=st.sampled_from(TAGS))
    def invalidate_tag(self, tag: str) -> None:
        tagged = {k for k, v in self.model.items() if tag in v[3]}
        assert set(self.s.invalidate_tag(tag)) == {k for k in tagged if self.live(k)}
        for key in tagged:
            del self.model[key]

    @rule()
    def expire(self) -> None:
        assert self.s.expire() == sum(not self.live(k) for k in self.model)
        self.drop_expired()

    @rule(capacity=st.integers(8, 24))
    def resize(self, capacity: int) -> None:
        evicted = self.s.resize(capacity)
        self.drop_expired()
        self.forget_evicted(evicted)

    @precondition(lambda self: len(self.model) > 3)  # else clear() keeps the store too empty
    @rule()
    def clear(self) -> None:
        assert self.s.clear() == len(self.model)
        self.model.clear()

    @precondition(lambda self: self.store is not None)
    @invariant()
    def agrees_with_model(self) -> None:
        check_invariants(self.s)
        live = {k for k in self.model if self.live(k)}
        assert set(self.s.keys()) == live
        for key in live:
            entry = self.s.peek(key)
            assert entry is not None and entry.value == self.model[key][0]
        assert len(self.s) == len(self.model)
        assert self.s.bytes == sum(v[2] for v in self.model.values())


@pytest.mark.parametrize("policy", ALL)
def test_store_against_a_dict_model(policy: str) -> None:
    run_state_machine_as_test(
        lambda: StoreMachine(policy),  # type: ignore[arg-type]  # a factory is documented
        settings=settings(max_examples=80, stateful_step_count=50, deadline=None),
    )


# ------------------------------------------------------------------------- policy order

OPS = st.lists(st.tuples(st.sampled_from(["get", "put"]), st.integers(0, 7)), max_size=80)


@pytest.mark.parametrize(("policy", "reads_reorder"), [("lru", True), ("fifo", False)])
@settings(max_examples=80, deadline=None)
@given(ops=OPS)
def test_lru_and_fifo_match_an_ordered_dict(policy: str, reads_reorder: bool, ops: Any) -> None:
    store = Store(4, policy=policy)
    model: OrderedDict[int, None] = OrderedDict()
    for op, key in ops:
        if op == "get":
            assert (store.get(key) is not None) == (key in model)
            if reads_reorder and key in model:
                model.move_to_end(key)
            continue
        model[key] = None
        model.move_to_end(key)  # re-putting counts as a new arrival for both
        expected = [model.popitem(last=False)[0]] if len(model) > 4 else []
        assert [e.key for e in store.put(key, key, 1)] == expected
    # The policy's order is the model's: shrinking evicts all but the last, oldest first.
    assert [e.key for e in store.resize(1)] == list(model)[:-1]
    assert store.keys() == list(model)[-1:]


def test_fifo_ignores_reads() -> None:
    store = Store(3, policy="fifo")
    for key in "abc":
        store.put(key, key, 1)
    for _ in range(5):
        store.get("a")
    assert [e.key for e in store.put("d", "d", 1)] == ["a"]
    assert [e.key for e in store.put("e", "e", 1)] == ["b"]


@settings(max_examples=80, deadline=None)
@given(ops=OPS)
def test_lfu_matches_a_counting_model(ops: Any) -> None:
    store = Store(4, policy="lfu")
    uses: dict[int, tuple[int, int]] = {}  # key -> (use count, time of last use)
    for time, (op, key) in enumerate(ops):
        if op == "get":
            assert (store.get(key) is not None) == (key in uses)
            if key in uses:
                uses[key] = (uses[key][0] + 1, time)
            continue
        uses[key] = (uses.get(key, (0, 0))[0] + 1, time)
        expected = []
        if len(uses) > 4:
            # least frequent, then least recent; the key just put is never the victim
            victim = min((k for k in uses if k != key), key=lambda k: uses[k])
            del uses[victim]
            expected = [victim]
        assert [e.key for e in store.put(key, key, 1)] == expected


def test_lfu_evicts_least_frequent_then_least_recent() -> None:
    store = Store(3, policy="lfu")
    for key in "abc":
        store.put(key, key, 1)
    for key in "cba":
        store.get(key)  # all used twice; c least recently
    store.get("a")
    assert [e.key for e in store.put("d", "d", 1)] == ["c"]
    assert [e.key for e in store.put("e", "e", 1)] == ["d"]  # d: 1 use; e is new


def test_gdsf_keeps_expensive_small_entries_over_cheap_large_ones() -> None:
    for policy, survivor in [("gdsf", "dear-small"), ("lru", "cheap-large")]:
        store = Store(100, policy=policy)
        store.put("dear-small", 1, 10, cost=10.0)
        store.put("cheap-large", 2, 40, cost=1.0)
        store.put("filler", 3, 60)
        assert store.keys() == [survivor, "filler"], policy


def test_gdsf_ages_out_entries_that_were_popular_once() -> None:
    policy = GDSFPolicy()
    store = Store(3, policy=policy)
    store.put("old-star", 0, 1)
    for _ in range(5):
        store.get("old-star")
    for i in range(20):
        store.put(i, i, 1)
    assert "old-star" not in store
    assert policy.inflation > 5


def entry(key: Hashable, size: int = 1, cost: float = 1.0) -> Entry:
    return Entry(key, key, size, cost, 0.0, None, frozenset())


def test_gdsf_compacts_its_heap() -> None:
    policy = GDSFPolicy()
    k = entry("k")
    policy.insert(k)
    for _ in range(1000):
        policy.touch(k)
    assert policy.records < 100
    assert policy.victim() is k


def test_lfu_and_gdsf_spare_the_newest_entry_only_while_others_remain() -> None:
    for policy in (LFUPolicy(), GDSFPolicy()):
        old, new = entry("old", 1, 100.0), entry("new", 1000, 0.0)
        policy.insert(old)
        policy.touch(old)
        policy.insert(new)
        assert policy.victim() is old
        policy.remove(old)
        assert policy.victim() is new
        policy.remove(new)
        with pytest.raises(KeyError):
            policy.victim()


@pytest.mark.parametrize("cls", [LRUPolicy, FIFOPolicy, TinyLFUPolicy])
def test_empty_policy_has_no_victim(cls: type[Policy]) -> None:
    with pytest.raises(KeyError, match="empty policy"):
        cls().victim()


def cache_aside(store: Store, key: Hashable, size: int = 1) -> bool:
    """Read ``key``; on a miss, put it back the way a memoizer would. Return whether it hit."""
    if store.get(key) is not None:
        return True
    store.put(key, key, size)
    return False


def test_tinylfu_resists_a_scan() -> None:
    # Each round reads the 10 hot keys once, then 200 keys never seen before: more than
    # the cache holds, so LRU has flushed every hot key by the time it is read again.
    hot_hits = {}
    for policy in ("tinylfu", "lru"):
        store = Store(100, policy=policy)
        scan = itertools.count(1000)
        hits = 0
        for round_ in range(30):
            round_hits = sum(cache_aside(store, key) for key in range(10))
            hits += round_hits if round_ >= 10 else 0
            for _ in range(200):
                cache_aside(store, next(scan))
            check_invariants(store)
        hot_hits[policy] = hits / 200
    assert hot_hits == {"tinylfu": 1.0, "lru": 0.0}


def test_tinylfu_demotes_only_once_it_evicts_and_then_a_few_at_a_time() -> None:
    # Below its budget a store has nothing to protect against, so hits promote and
    # nothing is demoted; once it evicts, protected converges to its share.
    policy = TinyLFUPolicy()
    store = Store(1000, policy=policy)
    for _ in range(3):
        for key in range(100):
            cache_aside(store, key, 5)
    assert policy._protected.count >= 90 and policy._probation.count <= 10
    for key in range(100, 400):
        cache_aside(store, key, 5)
        cache_aside(store, key, 5)
        check_invariants(store)
    main = policy._protected.bytes + policy._probation.bytes
    assert policy._protected.bytes <= 0.8 * main + 5


def test_tinylfu_admits_a_key_once_it_is_popular() -> None:
    store = Store(10, policy="tinylfu")
    for i in range(10):
        for _ in range(3):
            cache_aside(store, i)
    hits = [cache_aside(store, "newcomer") for _ in range(8)]
    assert not hits[0] and hits[-1]


def test_tinylfu_refuses_a_one_off_entry_bigger_than_the_window() -> None:
    store = Store(100, policy="tinylfu")
    for _ in range(3):
        for i in range(10):
            cache_aside(store, i, 9)
    evicted = store.put("big", 0, 50)
    assert [e.key for e in evicted] == ["big"]
    assert len(store) == 10


def zipf_stream(n_keys: int, n_requests: int, skew: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) ** skew for rank in range(n_keys)]
    keys = list(range(n_keys))
    rng.shuffle(keys)  # popularity must not follow insertion order or key value
    return rng.choices(keys, weights=weights, k=n_requests)


def hit_ratios(stream: list[int], sizes: dict[int, int], capacity: int) -> dict[str, float]:
    ratios = {}
    for policy in ALL:
        store = Store(capacity, policy=policy)
        for key in stream:
            cache_aside(store, key, sizes[key])
        ratios[policy] = store.stats().hit_ratio
    return ratios


def test_tinylfu_and_gdsf_beat_lru_on_a_zipf_stream() -> None:
    stream = zipf_stream(n_keys=2000, n_requests=30_000, skew=0.9, seed=7)
    rng = random.Random(11)
    sizes = {key: rng.randint(1, 8) for key in range(2000)}
    ratios = hit_ratios(stream, sizes, capacity=400)
    print("zipf hit ratios:", {k: round(v, 3) for k, v in ratios.items()})
    assert ratios["tinylfu"] >= ratios["lru"]
    assert ratios["gdsf"] >= ratios["lru"]


def test_tagged_lists_live_entries_without_touching_them() -> None:
    clock = Clock(1000.0)
    store = Store(1000, clock=clock)
    store.put("a", 1, 10, tags=("f",))
    store.put("b", 2, 20, tags=("f",), ttl=5)
    store.put("c", 3, 30, tags=("g",))
    assert sorted(entry.key for entry in store.tagged("f")) == ["a", "b"]
    clock.now += 6
    assert [entry.key for entry in store.tagged("f")] == ["a"]
    assert store.tagged("nothing") == []
    assert store.stats().hits == 0


def test_the_default_policy_is_adaptive() -> None:
    assert DEFAULT_POLICY == "adaptive"
    assert Store(10).policy_name == DEFAULT_POLICY


def test_hottest_first_lists_live_keys_in_reverse_eviction_order(
    store: Store, clock: Clock
) -> None:
    for key in "abcd":
        store.put(key, key, size=1, ttl=10 if key == "b" else None)
    store.get("a")  # a hit: "a" is hotter than it was
    clock.now += 11  # "b" expired
    hottest = store.hottest_first()
    assert sorted(map(str, hottest)) == ["a", "c", "d"]
    assert set(hottest) == set(store.keys())
    if store.policy_name == "lru":
        assert hottest == ["a", "d", "c"]  # the reverse of the order LRU evicts in
