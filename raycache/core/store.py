"""The cache core of one shard: a byte-budgeted :class:`Store` with pluggable eviction.

Each raycache shard actor wraps one :class:`Store`. The store does every piece of
bookkeeping that is the same for all policies -- byte accounting, TTLs, tags and
counted statistics -- and asks a small :class:`Policy` object one question: which key
goes next? Keeping that split (as cachetools does) keeps each policy short and lets
the invariants live in one place.

This module is part of the pure core: it imports nothing from Ray, so it can be
tested and benchmarked in a plain Python process. Nothing here is thread-safe; a
shard actor runs one call at a time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import sys
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Final, TypeAlias

from raycache.core import validation
from raycache.errors import EntryTooLargeError

__all__ = [
    "POLICIES",
    "Clock",
    "Entry",
    "FIFOPolicy",
    "GDSFPolicy",
    "LFUPolicy",
    "LRUPolicy",
    "Policy",
    "Store",
    "StoreStats",
    "TinyLFUPolicy",
    "make_policy",
]

Clock: TypeAlias = Callable[[], float]
"""A source of the current time in seconds; only differences between readings matter."""

# Keys may be None or any other value, so "no key" needs its own marker.
_MISSING: Final[Any] = object()
_NO_TAGS: Final[frozenset[str]] = frozenset()


# --------------------------------------------------------------------------- policies


class Policy(ABC):
    """Decides which key a :class:`Store` evicts next.

    A policy tracks exactly the keys its store holds. The store calls :meth:`insert`
    when a key is written, :meth:`touch` on every hit and :meth:`remove` whenever a
    key leaves, for any reason. When the store is over budget it calls :meth:`victim`
    and removes the key it gets, until it fits again; so ``victim`` must not change
    which keys are tracked. Sizes are bytes and costs are the seconds it took to
    compute a value; policies that do not weigh entries ignore them.

    A policy instance serves one store only. The built-in policies also iterate over
    the keys they track, which the tests use to check that they agree with the store.
    """

    name: ClassVar[str]
    """The short name :func:`make_policy` knows this policy by."""

    @abstractmethod
    def insert(self, key: Hashable, size: int, cost: float) -> None:
        """Track ``key``; if it is tracked already, record a write (new size and cost, one use)."""

    @abstractmethod
    def touch(self, key: Hashable) -> None:
        """Record a read hit on the tracked ``key``."""

    @abstractmethod
    def remove(self, key: Hashable) -> None:
        """Stop tracking ``key``: it was deleted, expired, invalidated or evicted."""

    @abstractmethod
    def victim(self) -> Hashable:
        """Return the key to evict next; it may be the key just inserted (admission refused).

        Raises :class:`KeyError` when nothing is tracked.
        """

    @abstractmethod
    def __len__(self) -> int: ...


def _first(keys: Iterable[Hashable]) -> Hashable:
    for key in keys:
        return key
    raise KeyError("victim() called on an empty policy")


class _OrderedPolicy(Policy):
    """Keys kept in one OrderedDict whose front is the next victim."""

    def __init__(self) -> None:
        self._order: OrderedDict[Hashable, None] = OrderedDict()

    def insert(self, key: Hashable, size: int, cost: float) -> None:
        """Put ``key`` at the back of the queue; a rewrite counts as a new arrival."""
        self._order[key] = None
        self._order.move_to_end(key)

    def remove(self, key: Hashable) -> None:
        """Drop ``key`` from the queue."""
        del self._order[key]

    def victim(self) -> Hashable:
        """Return the key at the front of the queue."""
        return _first(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._order)


class LRUPolicy(_OrderedPolicy):
    """Least recently used: evicts the key that was read or written longest ago."""

    name = "lru"

    def touch(self, key: Hashable) -> None:
        """Move ``key`` to the most recently used end."""
        self._order.move_to_end(key)


class FIFOPolicy(_OrderedPolicy):
    """First in, first out: evicts the key written longest ago; reads do not matter."""

    name = "fifo"

    def touch(self, key: Hashable) -> None:
        """Do nothing: a read does not change the eviction order."""


class _Bucket:
    """The keys used exactly ``freq`` times, least recently used first."""

    __slots__ = ("freq", "keys", "next", "prev")

    def __init__(self, freq: int) -> None:
        self.freq = freq
        # OrderedDict, not dict: popping from the front of a plain dict degrades to O(n).
        self.keys: OrderedDict[Hashable, None] = OrderedDict()
        self.prev: _Bucket = self
        self.next: _Bucket = self


class LFUPolicy(Policy):
    """Least frequently used, ties broken by least recently used; O(1) per operation.

    Keys live in frequency buckets on a linked list sorted by frequency, so a use
    moves a key one bucket up and the victim is at the front of the first bucket.
    The key inserted last is evicted only if nothing else is left: otherwise every
    new key would lose to the established ones before it could collect a single hit.
    """

    name = "lfu"

    def __init__(self) -> None:
        self._head = _Bucket(0)  # sentinel of the circular bucket list
        self._bucket_of: dict[Hashable, _Bucket] = {}
        self._newest: Any = _MISSING

    def insert(self, key: Hashable, size: int, cost: float) -> None:
        """Track ``key`` with one use; a rewrite of a tracked key counts as a use."""
        self._newest = key
        if key in self._bucket_of:
            self.touch(key)
            return
        bucket = self._head.next
        if bucket.freq != 1:
            bucket = self._link_after(self._head, 1)
        bucket.keys[key] = None
        self._bucket_of[key] = bucket

    def touch(self, key: Hashable) -> None:
        """Move ``key`` up to the bucket of the next frequency."""
        bucket = self._bucket_of[key]
        target = bucket.next
        if target.freq != bucket.freq + 1:
            target = self._link_after(bucket, bucket.freq + 1)
        target.keys[key] = None
        self._bucket_of[key] = target
        self._drop(bucket, key)

    def remove(self, key: Hashable) -> None:
        """Forget ``key`` and its count."""
        self._drop(self._bucket_of.pop(key), key)

    def victim(self) -> Hashable:
        """Return the least frequently used key, sparing the newest while others remain."""
        bucket = self._head.next
        keys = iter(bucket.keys)
        key = next(keys, _MISSING)
        if key is _MISSING:
            raise KeyError("victim() called on an empty policy")
        if key == self._newest and len(self._bucket_of) > 1:
            key = next(keys, _MISSING)
            if key is _MISSING:
                key = _first(bucket.next.keys)
        return key

    def _link_after(self, bucket: _Bucket, freq: int) -> _Bucket:
        new = _Bucket(freq)
        new.prev, new.next = bucket, bucket.next
        bucket.next.prev = new
        bucket.next = new
        return new

    def _drop(self, bucket: _Bucket, key: Hashable) -> None:
        del bucket.keys[key]
        if not bucket.keys:
            bucket.prev.next = bucket.next
            bucket.next.prev = bucket.prev

    def __len__(self) -> int:
        return len(self._bucket_of)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._bucket_of)


class _GDSFMeta:
    __slots__ = ("cost", "freq", "priority", "seq", "size")

    def __init__(self) -> None:
        self.freq = 0
        self.size = 1
        self.cost = 1.0
        self.priority = 0.0
        self.seq = 0


class GDSFPolicy(Policy):
    """GreedyDual-Size-Frequency: keeps entries that are used often, costly and small.

    Each key has priority ``L + freq * cost / size`` (size floored at one byte) and
    the lowest priority is evicted; ``L`` then rises to that priority, which ages out
    entries that were valuable once but are no longer used. The heap uses lazy
    deletion: a use pushes a fresh record and stale ones are skipped (and compacted
    away once they outnumber the live ones). As in the original algorithm the entry
    being brought in is not a candidate, so the key inserted last is evicted only if
    nothing else is left.
    """

    name = "gdsf"

    def __init__(self) -> None:
        self._meta: dict[Hashable, _GDSFMeta] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._inflation = 0.0  # "L" in the papers
        self._seq = itertools.count()
        self._newest: Any = _MISSING
        self._chosen: _GDSFMeta | None = None

    def insert(self, key: Hashable, size: int, cost: float) -> None:
        """Track ``key`` with its size and cost; a rewrite counts as one more use."""
        meta = self._meta.get(key)
        if meta is None:
            meta = self._meta[key] = _GDSFMeta()
        meta.size = max(size, 1)
        meta.cost = cost
        self._newest = key
        self._use(key, meta)

    def touch(self, key: Hashable) -> None:
        """Count a use of ``key`` and raise its priority."""
        self._use(key, self._meta[key])

    def remove(self, key: Hashable) -> None:
        """Forget ``key``; if it is the victim just chosen, inflate ``L`` to its priority."""
        meta = self._meta.pop(key)
        if meta is self._chosen:
            self._inflation = meta.priority
            self._chosen = None

    def victim(self) -> Hashable:
        """Return the key of lowest priority, sparing the newest while others remain."""
        key, meta = self._top()
        if key == self._newest and len(self._meta) > 1:
            spared = heapq.heappop(self._heap)
            try:
                key, meta = self._top()
            finally:
                heapq.heappush(self._heap, spared)
        self._chosen = meta
        return key

    def _use(self, key: Hashable, meta: _GDSFMeta) -> None:
        meta.freq += 1
        meta.priority = self._inflation + meta.freq * meta.cost / meta.size
        meta.seq = next(self._seq)
        heapq.heappush(self._heap, (meta.priority, meta.seq, key))
        if len(self._heap) > 2 * len(self._meta) + 64:
            self._heap = [(m.priority, m.seq, k) for k, m in self._meta.items()]
            heapq.heapify(self._heap)

    def _top(self) -> tuple[Hashable, _GDSFMeta]:
        heap = self._heap
        while heap:
            _, seq, key = heap[0]
            meta = self._meta.get(key)
            if meta is not None and meta.seq == seq:
                return key, meta
            heapq.heappop(heap)
        raise KeyError("victim() called on an empty policy")

    def __len__(self) -> int:
        return len(self._meta)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._meta)


_MASK64: Final = (1 << 64) - 1
_HALVE: Final = bytes(i >> 1 for i in range(256))


class _FrequencySketch:
    """Count-min sketch of 4-bit counters (4 rows) that halves itself now and then.

    Halving after a sample of ``10 * capacity`` additions is TinyLFU's aging: old
    popularity fades so the sketch follows a changing workload.
    """

    __slots__ = ("_additions", "_mask", "_sample", "_table", "_width", "capacity")

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        # A few counters per key and row keep collisions rare; more barely helps hit ratios.
        self._width = 1 << max(6, (2 * capacity - 1).bit_length())
        self._mask = self._width - 1
        self._table = bytearray(4 * self._width)
        self._sample = 10 * capacity
        self._additions = 0

    def _slots(self, key: Hashable) -> tuple[int, int, int, int]:
        # Multiply-shift, since hash(int) is the int itself; the high half is well mixed.
        # Rows index by double hashing (h1 + i * h2), which is as good as 4 hashes here.
        h = (hash(key) * 0x9E3779B97F4A7C15) & _MASK64
        h1, h2 = h >> 32, h | 1
        h3 = h1 + h2
        w, m = self._width, self._mask
        return (h1 & m, w + (h3 & m), 2 * w + ((h3 + h2) & m), 3 * w + ((h3 + 2 * h2) & m))

    def add(self, key: Hashable) -> None:
        """Count one use of ``key``."""
        table = self._table
        for i in self._slots(key):
            if table[i] < 15:
                table[i] += 1
        self._additions += 1
        if self._additions >= self._sample:
            self._table = self._table.translate(_HALVE)
            self._additions //= 2

    def estimate(self, key: Hashable) -> int:
        """Return the (over-)estimated number of recent uses of ``key``."""
        a, b, c, d = self._slots(key)
        table = self._table
        return min(table[a], table[b], table[c], table[d])

    def grown(self, keys: Iterable[Hashable], capacity: int) -> _FrequencySketch:
        """Return a wider sketch that remembers the estimates of ``keys``."""
        new = _FrequencySketch(capacity)
        for key in keys:
            count = self.estimate(key)
            for i in new._slots(key):
                new._table[i] = max(new._table[i], count)
        return new


class TinyLFUPolicy(Policy):
    """W-TinyLFU: an LRU window in front of a segmented-LRU main region with admission.

    New keys enter a small LRU window (about ``window_ratio`` of the bytes, at least
    one average entry). Keys pushed out of the window join the probation segment of
    the main region; a hit there promotes a key to the protected segment (at most
    ``protected_ratio`` of the main bytes, overflow is demoted back to probation).
    When the store must evict, the newest probation key (the candidate) is compared
    with the oldest (the victim) on a count-min sketch estimate of recent use, which
    is halved periodically; the less frequent one goes, the candidate on a tie. So a
    one-off scan passes through probation without displacing the keys that are used
    again and again, and an entry too big for the window competes for admission at
    once. Counts outlive the entries: a key refused today is admitted once popular.
    There is no doorkeeper: it would only shrink a sketch of a few bytes per entry.
    """

    name = "tinylfu"

    def __init__(self, window_ratio: float = 0.01, protected_ratio: float = 0.8) -> None:
        if not (0.0 < window_ratio < 1.0 and 0.0 < protected_ratio < 1.0):
            raise ValueError("window_ratio and protected_ratio must be between 0 and 1")
        self._window_ratio = window_ratio
        self._protected_ratio = protected_ratio
        self._window: OrderedDict[Hashable, int] = OrderedDict()
        self._probation: OrderedDict[Hashable, int] = OrderedDict()
        self._protected: OrderedDict[Hashable, int] = OrderedDict()
        self._window_bytes = 0
        self._protected_bytes = 0
        self._bytes = 0
        self._count = 0
        self._sketch = _FrequencySketch()

    def insert(self, key: Hashable, size: int, cost: float) -> None:
        """Put a new ``key`` in the window; a rewrite of a tracked key counts as a hit."""
        region = self._region_of(key)
        if region is None:
            self._window[key] = size
            self._window_bytes += size
            self._bytes += size
            self._count += 1
            self._sketch.add(key)
            if self._count > self._sketch.capacity:
                self._sketch = self._sketch.grown(self, 2 * self._count)
        else:
            self._resize(region, key, size)
            self.touch(key)
            self._overflow_protected()
        self._overflow_window()

    def touch(self, key: Hashable) -> None:
        """Count a use of ``key``; a hit in probation promotes it to protected."""
        self._sketch.add(key)
        if key in self._window:
            self._window.move_to_end(key)
        elif key in self._protected:
            self._protected.move_to_end(key)
        else:
            size = self._probation.pop(key)
            self._protected[key] = size
            self._protected_bytes += size
            self._overflow_protected()

    def remove(self, key: Hashable) -> None:
        """Stop tracking ``key``; its sketch count stays, so a comeback is recognised."""
        if key in self._window:
            size = self._window.pop(key)
            self._window_bytes -= size
        elif key in self._protected:
            size = self._protected.pop(key)
            self._protected_bytes -= size
        else:
            size = self._probation.pop(key)
        self._bytes -= size
        self._count -= 1

    def victim(self) -> Hashable:
        """Return the loser of candidate (newest in probation) against the oldest main key."""
        probation, protected = self._probation, self._protected
        if len(probation) > 1:
            candidate, incumbent = next(reversed(probation)), _first(probation)
        elif probation and protected:
            candidate, incumbent = _first(probation), _first(protected)
        else:
            return _first(itertools.chain(probation, protected, self._window))
        estimate = self._sketch.estimate
        return incumbent if estimate(candidate) > estimate(incumbent) else candidate

    def _region_of(self, key: Hashable) -> OrderedDict[Hashable, int] | None:
        for region in (self._window, self._protected, self._probation):
            if key in region:
                return region
        return None

    def _resize(self, region: OrderedDict[Hashable, int], key: Hashable, size: int) -> None:
        delta = size - region[key]
        region[key] = size
        self._bytes += delta
        if region is self._window:
            self._window_bytes += delta
        elif region is self._protected:
            self._protected_bytes += delta

    def _overflow_window(self) -> None:
        # At least one average entry, so tiny caches keep a window, but counted in
        # entries too, so that zero-byte entries cannot pile up in it.
        window, ratio, count = self._window, self._window_ratio, max(self._count, 1)
        budget = max(ratio * self._bytes, self._bytes / count)
        most = max(1, int(ratio * count))
        while self._window_bytes > budget or len(window) > most:
            key, size = window.popitem(last=False)
            self._window_bytes -= size
            self._probation[key] = size

    def _overflow_protected(self) -> None:
        budget = self._protected_ratio * (self._bytes - self._window_bytes)
        while self._protected_bytes > budget:
            key, size = self._protected.popitem(last=False)
            self._protected_bytes -= size
            self._probation[key] = size

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Hashable]:
        return itertools.chain(self._window, self._probation, self._protected)


POLICIES: Final[Mapping[str, type[Policy]]] = MappingProxyType(
    {cls.name: cls for cls in (LRUPolicy, LFUPolicy, FIFOPolicy, GDSFPolicy, TinyLFUPolicy)}
)
"""Every built-in policy by name."""

DEFAULT_POLICY: Final = "lru"
"""The policy a store or a cache uses when none is given."""


def make_policy(name: str) -> Policy:
    """Return a new, empty policy of the given name.

    >>> make_policy("lru").name
    'lru'
    >>> make_policy("arc")
    Traceback (most recent call last):
    ...
    ValueError: unknown policy 'arc'; choose one of: fifo, gdsf, lfu, lru, tinylfu
    """
    if not isinstance(name, str):
        raise TypeError(f"policy name must be a str, not {type(name).__name__}")
    cls = POLICIES.get(name)
    if cls is None:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {name!r}; choose one of: {known}")
    return cls()


# ------------------------------------------------------------------------------ store


@dataclass(slots=True)
class Entry:
    """One cached value and its bookkeeping; a snapshot to read, not to modify.

    ``size`` is in bytes, ``cost`` in seconds of compute, times are clock readings.
    """

    key: Hashable
    value: Any
    size: int
    cost: float
    created_at: float
    expires_at: float | None
    tags: frozenset[str]

    def expired(self, now: float) -> bool:
        """Return whether the entry is past its TTL at time ``now``."""
        return self.expires_at is not None and now >= self.expires_at

    def age(self, now: float) -> float:
        """Return the seconds since the entry was written."""
        return now - self.created_at


@dataclass
class StoreStats:
    """Counters of one store, in the style of groupcache's stats.

    ``entries`` and ``bytes`` include expired entries that are not purged yet.
    """

    hits: int
    misses: int
    evictions: int
    expirations: int
    entries: int
    bytes: int
    capacity: int

    @property
    def hit_ratio(self) -> float:
        """Return hits / lookups, or 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


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
    """

    def __init__(
        self,
        capacity: int,
        *,
        policy: str | Policy = "lru",
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
        # Min-heap of (expires_at, seq, entry) with lazy deletion, so purging is cheap.
        self._expiry: list[tuple[float, int, Entry]] = []
        self._seq = itertools.count()
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
                self._policy.touch(key)
                return entry
            self._discard(entry)
            self._expirations += 1
        self._misses += 1
        return None

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
        if type(size) is not int or size < 0:
            size = validation.integer(size, "size", minimum=0)
        if type(cost) is not float or not 0.0 <= cost < math.inf:
            cost = validation.number(cost, "cost")
        frozen_tags = _NO_TAGS if tags == () else frozenset(validation.strings(tags, "tags"))
        ttl = validation.seconds(ttl, "ttl")
        if size > self._capacity:
            raise EntryTooLargeError(size, self._capacity)
        now = self._clock()
        if self._expiry and self._expiry[0][0] <= now:
            self._purge_expired(now)
        old = self._entries.pop(key, None)
        if old is not None:
            self._unaccount(old)
        expires_at = None if ttl is None else now + ttl
        entry = Entry(key, value, size, cost, now, expires_at, frozen_tags)
        self._entries[key] = entry
        self._bytes += size
        if frozen_tags:
            self._tag(entry)
        if expires_at is not None:
            self._schedule(entry, expires_at)
        self._policy.insert(key, size, cost)
        return self._evict()

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

    def _evict(self) -> list[Entry]:
        evicted: list[Entry] = []
        while self._bytes > self._capacity or len(self._entries) > self._max_len:
            entry = self._entries[self._policy.victim()]
            self._discard(entry)
            evicted.append(entry)
        self._evictions += len(evicted)
        return evicted

    def _discard(self, entry: Entry) -> None:
        del self._entries[entry.key]
        self._unaccount(entry)
        self._policy.remove(entry.key)

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

    def _schedule(self, entry: Entry, expires_at: float) -> None:
        heapq.heappush(self._expiry, (expires_at, next(self._seq), entry))
        # Replaced and deleted entries leave stale records; rebuild before they pile up.
        if len(self._expiry) > 2 * len(self._entries) + 64:
            self._expiry = [r for r in self._expiry if self._entries.get(r[2].key) is r[2]]
            heapq.heapify(self._expiry)

    def _purge_expired(self, now: float) -> int:
        heap, count = self._expiry, 0
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            if self._entries.get(entry.key) is entry:
                self._discard(entry)
                count += 1
        self._expirations += count
        return count


# ------------------------------------------------------------------------- validation


def _own_policy(policy: object) -> Policy:
    if isinstance(policy, str):
        return make_policy(policy)
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a policy name or a Policy, not {type(policy).__name__}")
    if len(policy):
        raise ValueError("policy must be empty: a Policy instance serves one store only")
    return policy
