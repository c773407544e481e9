"""The near cache: the values a handle read, kept in its own process and kept coherent.

A handle created with ``near_cache=True`` keeps what it reads here, bounded in bytes,
and serves repeated reads with a dictionary lookup. Its shards track what it holds
(:mod:`raycache.core.tracking`) and push invalidations when a key is deleted, evicted,
invalidated by tag or cleared, or when the ring changes, and the new value when a key
is written with a small value and no TTL; the handle's poller applies them here
(:mod:`raycache.client.near`). A copy also ends when its entry's TTL
runs out, counted from before the read was sent so that it never outlives the entry,
and, with ``ttl``, that many seconds after it was read.

Three rules keep a copy from going back in time:

- a read's copy is kept only if no invalidation newer than the read's stamp has been
  applied, and only while its shard is *live* here (polled, of the same start);
- a copy replaces another only if its read is as new, and a pushed value replaces a
  copy only if it was queued after that copy's read;
- a read that this handle's own write, delete or clear may have overtaken is not kept
  (the write *fences* the key).

Large values are kept by reference, at :data:`REFERENCE_SIZE` bytes each.

>>> near = NearCache(capacity=100, clock=lambda: 0.0)
>>> near.apply("shard-0", Notice(b"start", 0, [], False))
0
>>> read = Read("shard-0", sent_at=0.0, ticket=near.ticket)
>>> near.offer(read, Stamp(b"start", 0, [None], [10]), [Found(b"k", "v", 10, None)])
1
>>> near.get(b"k"), near.apply("shard-0", Notice(b"start", 1, [b"k"], False)), near.get(b"k")
('v', 1, None)
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from raycache.core.protocol import Notice, Pushed, Stamp

DEFAULT_CAPACITY = 64 * 2**20
"""Bytes a near cache holds unless told otherwise: 64 MiB per process and cache."""

REFERENCE_SIZE = 64
"""What a copy held by reference costs: the reference, not the value's bytes."""

MAX_FENCES = 4096
"""Keys this handle wrote whose fences are remembered one by one; older ones share one."""


class Found(NamedTuple):
    """A value a read found: its key's digest, the value, its size and its time left."""

    digest: bytes
    value: Any
    size: int
    ttl_left: float | None


class Read(NamedTuple):
    """A read on its way: whom it asked and when, for :meth:`NearCache.offer`."""

    member: str
    sent_at: float
    ticket: int
    """This handle's count of its own writes when the read was sent."""


class _Copy:
    __slots__ = ("deadline", "member", "seq", "size", "value")

    def __init__(self, value: Any, size: int, member: str, seq: int, deadline: float) -> None:
        self.value = value
        self.size = size
        self.member = member
        self.seq = seq
        self.deadline = deadline


class _Shard:
    """What this handle knows of one shard's tracking of it."""

    __slots__ = ("applied", "held", "hits", "incarnation", "live")

    def __init__(self, incarnation: bytes) -> None:
        self.incarnation = incarnation
        self.applied = 0
        self.live = True
        self.hits = 0
        self.held = 0


class NearCache:
    """One process's coherent copies of one cache's values, keyed by key digest."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._copies: OrderedDict[bytes, _Copy] = OrderedDict()
        self._shards: dict[str, _Shard] = {}
        self._lock = threading.Lock()
        self._writes = 0
        self._fences: OrderedDict[bytes, int] = OrderedDict()
        self._fence_floor = 0
        self.bytes = 0
        """Bytes held now."""
        self.hits = 0
        """Reads served from here."""
        self.invalidations = 0
        """Copies dropped because a shard said so (or was lost)."""

    def __len__(self) -> int:
        return len(self._copies)

    def get(self, digest: bytes, default: Any = None) -> Any:
        """Return the copy of ``digest`` and mark it used, or ``default``."""
        with self._lock:
            copy = self._copies.get(digest)
            if copy is None:
                return default
            if copy.deadline <= self._clock():
                self._drop(digest)
                return default
            self._copies.move_to_end(digest)
            self.hits += 1
            self._shards[copy.member].hits += 1
            return copy.value

    @property
    def ticket(self) -> int:
        """The count of this handle's own writes: a read takes it before it is sent."""
        return self._writes

    @property
    def unreported_hits(self) -> int:
        """Hits served since they were last reported to their shards."""
        with self._lock:
            return sum(shard.hits for shard in self._shards.values())

    def offer(self, read: Read, stamp: Stamp, found: Iterable[Found]) -> int:
        """Keep the values ``read`` found, under ``stamp``, as the rules allow; say how many.

        ``found`` gives each key's digest, value, size and time left, in ``stamp``'s order.
        """
        with self._lock:
            shard = self._live(read, stamp)
            if shard is None:
                return 0
            now = self._clock()
            kept = 0
            for digest, value, size, ttl_left in found:
                deadline = self._deadline(read.sent_at, ttl_left)
                if size <= self.capacity and deadline > now and self._keep(read, stamp, digest):
                    self._copies[digest] = _Copy(value, size, read.member, stamp.seq or 0, deadline)
                    self._account(read.member, size)
                    kept += 1
            self._trim()
            return kept

    def apply(self, member: str, notice: Notice) -> int:
        """Apply what ``member`` says must go; return how many copies were dropped.

        It also makes ``member`` live: reads of it may be kept from now on.
        """
        with self._lock:
            shard = self._shards.get(member)
            if shard is None or shard.incarnation != notice.incarnation or notice.flush:
                dropped = self._drop_member(member)
                if shard is None or shard.incarnation != notice.incarnation:
                    shard = self._shards[member] = _Shard(notice.incarnation)
            else:
                # A key read again after an invalidation may be owed twice in one notice.
                owed = dict.fromkeys(notice.digests)
                dropped = self._drop_all([d for d in owed if d in self._copies])
                self._replace(member, notice.pushed)
            shard.applied = max(shard.applied, notice.seq)
            shard.live = True
            self.invalidations += dropped
            return dropped

    def _replace(self, member: str, pushed: Iterable[Pushed]) -> None:
        """Replace the copies that ``pushed`` values are newer than; keep no new ones."""
        # Only a copy held is replaced: a key this handle stopped reading, or wrote
        # itself (its write dropped the copy), gains none.
        deadline = self._deadline(self._clock(), None)
        for digest, value, size, seq in pushed:
            copy = self._copies.get(digest)
            if copy is None or copy.member != member or copy.seq >= seq:
                continue
            self._account(member, size - copy.size)
            copy.value, copy.size, copy.seq, copy.deadline = value, size, seq, deadline
        self._trim()

    def lose(self, member: str) -> None:
        """Drop every copy from ``member``, which failed or stopped answering its polls."""
        with self._lock:
            shard = self._shards.get(member)
            if shard is not None:
                shard.live = False
            self.invalidations += self._drop_member(member)

    def fence(self, digest: bytes) -> None:
        """Drop the copy of ``digest``, which this handle writes or deletes, and fence it."""
        with self._lock:
            self._writes += 1
            self._fences[digest] = self._writes
            self._fences.move_to_end(digest)
            if len(self._fences) > MAX_FENCES:
                self._fence_floor = self._fences.popitem(last=False)[1]
            if digest in self._copies:
                self._drop(digest)

    def fence_all(self) -> None:
        """Drop every copy and fence every key: a clear, a tag invalidation, a new ring."""
        with self._lock:
            self._writes += 1
            self._fence_floor = self._writes
            self._fences.clear()
            self._copies.clear()
            self.bytes = 0
            for shard in self._shards.values():
                shard.held = 0

    def report(self, member: str) -> tuple[int, int]:
        """Return the hits served of ``member``'s keys since the last report, and its bytes."""
        with self._lock:
            shard = self._shards.get(member)
            if shard is None:
                return 0, 0
            hits, shard.hits = shard.hits, 0
            return hits, shard.held

    def _live(self, read: Read, stamp: Stamp) -> _Shard | None:
        """Return the state of the shard ``read`` asked, if its reads may be kept."""
        shard = self._shards.get(read.member)
        if shard is None or not shard.live or stamp.seq is None or shard.applied > stamp.seq:
            return None
        if shard.incarnation != stamp.incarnation:
            shard.live = False  # restarted: its poller will learn it and make it live
            self.invalidations += self._drop_member(read.member)
            return None
        return shard

    def _keep(self, read: Read, stamp: Stamp, digest: bytes) -> bool:
        """Return whether ``digest``'s read may replace what is held; drop what it replaces."""
        if read.ticket < self._fences.get(digest, self._fence_floor):
            return False  # this handle wrote the key after the read was sent
        held = self._copies.get(digest)
        if held is not None:
            if held.member == read.member and held.seq > (stamp.seq or 0):
                return False
            self._drop(digest)
        return True

    def _deadline(self, sent_at: float, ttl_left: float | None) -> float:
        deadline = float("inf") if ttl_left is None else sent_at + ttl_left
        return deadline if self.ttl is None else min(deadline, sent_at + self.ttl)

    def _account(self, member: str, size: int) -> None:
        self.bytes += size
        self._shards[member].held += size

    def _trim(self) -> None:
        """Drop the least recently read copies until the bytes held fit the capacity."""
        while self.bytes > self.capacity:
            self._drop(next(iter(self._copies)))

    def _drop(self, digest: bytes) -> None:
        copy = self._copies.pop(digest)
        self._account(copy.member, -copy.size)

    def _drop_all(self, digests: list[bytes]) -> int:
        for digest in digests:
            self._drop(digest)
        return len(digests)

    def _drop_member(self, member: str) -> int:
        return self._drop_all([d for d, copy in self._copies.items() if copy.member == member])
