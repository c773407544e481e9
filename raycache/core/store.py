"""The cache core of one shard: a byte-budgeted :class:`Store` with pluggable eviction.

Each raycache shard actor wraps one :class:`Store`. The store does every piece of
bookkeeping that is the same for all policies -- byte accounting, TTLs, tags and
counted statistics -- and asks a small :class:`~raycache.core.policies.Policy` one
question: which entry goes next? The policies live in :mod:`raycache.core.policies`,
the schedule of TTLs in :mod:`raycache.core.expiry`.

This module is part of the pure core: it imports nothing from Ray, so it can be
tested and benchmarked in a plain Python process. Nothing here is thread-safe; a
shard actor runs one call at a time.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Final, TypeAlias

from raycache.core import validation
from raycache.core.entry import Entry
from raycache.core.expiry import ExpirySchedule
from raycache.core.policies import DEFAULT_POLICY, POLICIES, Policy, make_policy
from raycache.core.stats import StoreStats
from raycache.errors import EntryTooLargeError

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "Clock",
    "Entry",
    "Policy",
    "Store",
    "StoreStats",
    "make_policy",
]

Clock: TypeAlias = Callable[[], float]
"""A source of the current time in seconds; only differences between readings matter."""

# One shared empty set: most entries carry no tags, and a set apiece would cost bytes.
_NO_TAGS: Final[frozenset[str]] = frozenset()


class Store:
    """A cache of at most ``capacity`` bytes (and ``max_entries`` entries) on one shard.

    The store keeps the byte budget, TTLs, tags and statistics; the policy chooses
    what to evict when a ``put`` goes over budget. Expired entries are never returned.
    They are purged when looked up, by :meth:`expire`, and all at once by every
    :meth:`put` and :meth:`resize`; until then they count in ``len()`` and ``bytes``.

    >>> store = Store(capacity=10, policy="lru")
    >>> store.put("a", b"aaaa", size=4)
    []
    >>> store.put("b", b"bbbb", size=4)
    []
    >>> store.get("a").value
    b'aaaa'
    >>> [entry.key for entry in store.put("c", b"cccc", size=4)]
    ['b']
    >>> store.keys(), store.bytes
    (['a', 'c'], 8)
    >>> store.get("b") is None
    True
    >>> s = store.stats()
    >>> s.hits, s.misses, s.evictions
    (1, 1, 1)

    Time comes from ``clock``, so a test can move it by hand; tags name groups of
    entries to drop at once:

    >>> now = [100.0]
    >>> store = Store(1000, clock=lambda: now[0])
    >>> store.put("report", "...", size=3, ttl=60, tags=["user:7"])
    []
    >>> store.put("avatar", "...", size=3, tags=["user:7"])
    []
    >>> now[0] += 61
    >>> store.get("report") is None, store.policy_name
    (True, 'adaptive')
    >>> store.invalidate_tag("user:7")
    ['avatar']
    >>> store.check_invariants()
    """

    def __init__(
        self,
        capacity: int,
        *,
        policy: str | Policy = DEFAULT_POLICY,
        max_entries: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._capacity = validation.integer(capacity, "capacity", minimum=1)
        self._max_entries = (
            None
            if max_entries is None
            else validation.integer(max_entries, "max_entries", minimum=1)
        )
        self._max_len = sys.maxsize if self._max_entries is None else self._max_entries
        self._policy = _own_policy(policy)
        if not callable(clock):
            raise TypeError(f"clock must be callable, not {type(clock).__name__}")
        self._clock = clock
        self._entries: dict[Hashable, Entry] = {}
        self._bytes = 0
        self._tags: dict[str, set[Hashable]] = {}
        self._expiry = ExpirySchedule(self._entries)
        self._hits = self._misses = self._evictions = self._expirations = 0

    @property
    def capacity(self) -> int:
        """The byte budget."""
        return self._capacity

    @property
    def max_entries(self) -> int | None:
        """The entry budget, or None for no limit."""
        return self._max_entries

    @property
    def bytes(self) -> int:
        """The sum of the sizes of the entries held."""
        return self._bytes

    @property
    def policy_name(self) -> str:
        """The name of the eviction policy."""
        return self._policy.name

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return self.peek(key) is not None

    def __repr__(self) -> str:
        return (
            f"Store(capacity={self._capacity}, bytes={self._bytes}, "
            f"entries={len(self._entries)}, policy={self._policy.name!r})"
        )

    def get(self, key: Hashable) -> Entry | None:
        """Return the live entry under ``key`` and count a hit, else count a miss."""
        entry = self._entries.get(key)
        if entry is not None:
            expires_at = entry.expires_at
            if expires_at is None or self._clock() < expires_at:
                self._hits += 1
                self._policy.touch(entry)
                return entry
            self._discard(entry)
            self._expirations += 1
        self._misses += 1
        return None

    def get_many(self, keys: Iterable[Hashable]) -> list[Entry | None]:
        """Return :meth:`get` of each key, in order, judging expiry at one reading of the clock.

        >>> store = Store(capacity=10, policy="lru")
        >>> _ = store.put("a", b"aa", size=2)
        >>> [entry and entry.value for entry in store.get_many(["a", "b"])]
        [b'aa', None]
        """
        # A batch of hits is a shard's usual read: one loop, not a call of get per key.
        entries, touch, now = self._entries, self._policy.touch, self._clock()
        found: list[Entry | None] = []
        hits = 0
        for key in keys:
            entry = entries.get(key)
            if entry is not None and (entry.expires_at is None or now < entry.expires_at):
                touch(entry)
                hits += 1
                found.append(entry)
            else:
                found.append(self.get(key))  # a miss or an expiry, counted by get
        self._hits += hits
        return found

    def peek(self, key: Hashable) -> Entry | None:
        """Return the live entry under ``key`` without counting or touching anything."""
        entry = self._entries.get(key)
        if entry is None or entry.expires_at is None or self._clock() < entry.expires_at:
            return entry
        return None

    def put(
        self,
        key: Hashable,
        value: Any,
        size: int,
        *,
        ttl: float | None = None,
        tags: Iterable[str] = (),
        cost: float = 1.0,
    ) -> list[Entry]:
        """Store ``value`` under ``key`` and return the entries evicted to make room.

        ``size`` is the value's size in bytes, ``ttl`` its lifetime in seconds,
        ``tags`` names for :meth:`invalidate_tag`, and ``cost`` the seconds it took to
        compute (weighed by GDSF). An entry already under ``key`` is replaced, which
        is not an eviction. The new entry itself is among those returned if the
        policy refused to admit it. An entry bigger than the capacity raises
        :class:`~raycache.errors.EntryTooLargeError` and leaves the store unchanged.
        """
        # Arguments of the usual types skip the validation calls: this is the hot path.
        if size.__class__ is not int or size < 0:
            size = validation.integer(size, "size", minimum=0)
        if cost.__class__ is not float or not 0.0 <= cost < math.inf:
            cost = validation.number(cost, "cost")
        frozen_tags = _NO_TAGS if tags == () else frozenset(validation.strings(tags, "tags"))
        if ttl is not None:
            ttl = validation.seconds(ttl, "ttl")
        if size > self._capacity:
            raise EntryTooLargeError(size, self._capacity)
        now = self._clock()
        # _purge_expired inlined: under uniform TTLs nearly every put purges an entry.
        if self._expiry.next_due <= now:
            self._expirations += self._expiry.purge(now, self._discard)
        entries = self._entries
        old = entries.pop(key, None)
        entry = Entry(key, value, size, cost, now, None if ttl is None else now + ttl, frozen_tags)
        entries[key] = entry
        self._bytes += size
        if old is None:
            self._policy.insert(entry)
        else:
            self._unaccount(old)
            self._policy.replace(old, entry)
        if frozen_tags:
            self._tag(entry)
        if ttl is not None:
            self._expiry.add(entry, now + ttl)
        if self._bytes > self._capacity or len(entries) > self._max_len:
            return self._evict()
        return []

    def delete(self, key: Hashable) -> bool:
        """Remove the entry under ``key``; return whether a live one was there."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        self._discard(entry)
        if entry.expired(self._clock()):
            self._expirations += 1
            return False
        return True

    def invalidate_tag(self, tag: str) -> list[Hashable]:
        """Remove every entry carrying ``tag``; return the keys of the live ones."""
        if not isinstance(tag, str):
            raise TypeError(f"tag must be a str, not {type(tag).__name__}")
        now = self._clock()
        removed = []
        for key in list(self._tags.get(tag, ())):
            entry = self._entries[key]
            self._discard(entry)
            if entry.expired(now):
                self._expirations += 1
            else:
                removed.append(key)
        return removed

    def tagged(self, tag: str) -> list[Entry]:
        """Return the live entries carrying ``tag``, without counting hits or touching them."""
        now = self._clock()
        entries = (self._entries[key] for key in self._tags.get(tag, ()))
        return [entry for entry in entries if not entry.expired(now)]

    def expire(self) -> int:
        """Purge every expired entry now and return how many there were."""
        return self._purge_expired(self._clock())

    def resize(self, capacity: int) -> list[Entry]:
        """Set a new byte budget and return the entries evicted to fit it."""
        self._capacity = validation.integer(capacity, "capacity", minimum=1)
        self._purge_expired(self._clock())
        return self._evict()

    def clear(self) -> int:
        """Remove every entry, expired or not, and return how many there were."""
        count = len(self._entries)
        for entry in list(self._entries.values()):
            self._discard(entry)
        self._expiry.clear()
        return count

    def keys(self) -> list[Hashable]:
        """Return the keys of the live (unexpired) entries, oldest write first."""
        now = self._clock()
        return [k for k, e in self._entries.items() if e.expires_at is None or now < e.expires_at]

    def hottest_first(self) -> list[Hashable]:
        """Return the keys of the live entries, the ones the policy would evict last first."""
        now = self._clock()
        live = self._entries
        return [
            k
            for k in reversed(list(self._policy))
            if (e := live[k]).expires_at is None or now < e.expires_at
        ]

    @property
    def expirations(self) -> int:
        """Entries expired so far: a cheap way to learn that some left unseen."""
        return self._expirations

    def stats(self) -> StoreStats:
        """Return a snapshot of the counters."""
        return StoreStats(
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            expirations=self._expirations,
            entries=len(self._entries),
            bytes=self._bytes,
            capacity=self._capacity,
        )

    def check_invariants(self) -> None:
        """Raise :class:`AssertionError` naming the first broken invariant, if any.

        Checks the byte and entry budgets, the tag index, the TTL schedule and that
        the policy tracks exactly the entries held. It walks every entry: for tests
        and debugging, not for the hot path.
        """
        entries = self._entries
        _require(self._bytes == sum(e.size for e in entries.values()), "bytes == sum of sizes")
        _require(self._bytes <= self._capacity, "bytes <= capacity")
        _require(len(entries) <= self._max_len, "entries <= max_entries")
        for tag, keys in self._tags.items():
            _require(bool(keys), f"no empty key set left behind for tag {tag!r}")
            _require(
                all(k in entries and tag in entries[k].tags for k in keys),
                f"every key indexed under tag {tag!r} is held and carries it",
            )
        _require(
            all(k in self._tags.get(t, ()) for k, e in entries.items() for t in e.tags),
            "every tag an entry carries is indexed",
        )
        scheduled = {id(e) for e in self._expiry}
        _require(
            all(id(e) in scheduled for e in entries.values() if e.expires_at is not None),
            "every entry with a TTL is scheduled to expire",
        )
        policy = self._policy
        _require(len(policy) == len(entries), "the policy tracks as many entries as are held")
        _require(set(policy) == set(entries), "the policy tracks exactly the keys held")

    def _evict(self) -> list[Entry]:
        evicted: list[Entry] = []
        entries, policy = self._entries, self._policy
        while self._bytes > self._capacity or len(entries) > self._max_len:
            entry = policy.victim()
            self._discard(entry)
            evicted.append(entry)
        self._evictions += len(evicted)
        return evicted

    def _discard(self, entry: Entry) -> None:
        del self._entries[entry.key]
        self._unaccount(entry)
        self._policy.remove(entry)

    def _unaccount(self, entry: Entry) -> None:
        self._bytes -= entry.size
        for tag in entry.tags:
            keys = self._tags[tag]
            keys.discard(entry.key)
            if not keys:
                del self._tags[tag]

    def _tag(self, entry: Entry) -> None:
        for tag in entry.tags:
            self._tags.setdefault(tag, set()).add(entry.key)

    def _purge_expired(self, now: float) -> int:
        count = self._expiry.purge(now, self._discard)
        self._expirations += count
        return count


def _require(holds: bool, invariant: str) -> None:
    # Raised explicitly rather than with `assert`, which `python -O` strips.
    if not holds:
        raise AssertionError(f"store invariant broken: {invariant}")


def _own_policy(policy: object) -> Policy:
    if isinstance(policy, str):
        return make_policy(policy)
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a policy name or a Policy, not {type(policy).__name__}")
    if len(policy):
        raise ValueError("policy must be empty: a Policy instance serves one store only")
    return policy
