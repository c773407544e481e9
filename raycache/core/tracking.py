"""Which handles hold which keys of a shard: the shard's side of the coherent near cache.

:mod:`raycache.core.near_cache` is the handle's side.

This is Redis 6's client tracking, kept in a shard. A handle with a near cache reads
with its *subscriber* id; the shard notes that the subscriber holds the key, and answers
with a :class:`~raycache.core.protocol.Stamp`: how many invalidations it has queued for
that subscriber so far. When the key is deleted, evicted or invalidated by tag, the
shard queues an invalidation for every subscriber that holds it and stops tracking it;
when it is written with a small value, it queues the new value instead (a push, which
replaces the copy, so the next read needs no round trip) and keeps tracking it. The
subscriber collects its queue with a long poll. A clear or a new ring queues a
*flush*: drop every copy from this shard.

The stamp is what keeps a copy from going back in time. A read's reply and an
invalidation queued after it travel on different calls and may arrive in either order;
the handle keeps a copy only if it has applied no invalidation newer than the read's
stamp, since an invalidation it has yet to apply will drop the copy when it lands.

Everything is bounded. Past :data:`MAX_TRACKED_KEYS` keys, the oldest tracked key is
invalidated for its holders, as Redis does when its tracking table is full; past
:data:`MAX_QUEUED` queued invalidations, a subscriber's queue becomes a flush; past
:data:`MAX_SUBSCRIBERS`, a new subscriber is refused (its reads are not kept); and a
subscriber that has not polled for :data:`IDLE_S` seconds is forgotten.

>>> tracking = Tracking(clock=lambda: 0.0)
>>> tracking.track(b"reader", [b"k"])
0
>>> tracking.invalidate([b"k", b"other"])
[b'reader']
>>> notice = tracking.collect(b"reader", hits=3, held=40)
>>> notice.seq, notice.digests, notice.flush, tracking.near_hits
(1, [b'k'], False, 3)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from raycache.core.protocol import Notice, Pushed

MAX_TRACKED_KEYS = 100_000
"""Keys one shard tracks at most, for all subscribers together (about 20 MB)."""

MAX_QUEUED = 10_000
"""Invalidations queued for one subscriber before they become one flush."""

MAX_SUBSCRIBERS = 64
"""Handles with a near cache one shard serves at most; each holds one poll thread."""

IDLE_S = 60.0
"""A subscriber that has not polled for this long is forgotten (its handle is gone)."""


class _Queue:
    """What one subscriber is owed: invalidated digests and pushed values, or a flush."""

    __slots__ = ("digests", "flush", "held", "polled", "pushed", "seq")

    def __init__(self, now: float) -> None:
        self.seq = 0
        self.digests: list[bytes] = []
        self.pushed: dict[bytes, Pushed] = {}  # the newest value per key
        self.flush = False
        self.polled = now
        self.held = 0

    def owe(self, digest: bytes) -> None:
        self.seq += 1
        if self.flush:
            return
        self.pushed.pop(digest, None)  # a drop after a push: the drop wins
        if len(self.digests) >= MAX_QUEUED:
            self.owe_flush()
        else:
            self.digests.append(digest)

    def owe_value(self, digest: bytes, value: Any, size: int) -> None:
        self.seq += 1
        if self.flush:
            return
        if len(self.pushed) >= MAX_QUEUED:
            self.owe_flush()
        else:
            self.pushed[digest] = Pushed(digest, value, size, self.seq)

    def owes(self) -> bool:
        return self.flush or bool(self.digests) or bool(self.pushed)

    def owe_flush(self) -> None:
        self.seq += 1
        self.flush = True
        self.digests = []
        self.pushed = {}


class Tracking:
    """The tracking table of one shard; not thread-safe (its actor part takes a lock)."""

    def __init__(
        self,
        *,
        max_keys: int = MAX_TRACKED_KEYS,
        max_subscribers: int = MAX_SUBSCRIBERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.incarnation = os.urandom(8)
        """Differs for every shard start, so that handles notice a restarted shard."""
        self._max_keys = max_keys
        self._max_subscribers = max_subscribers
        self._clock = clock
        self._holders: dict[bytes, set[bytes]] = {}  # oldest tracked first
        self._queues: dict[bytes, _Queue] = {}
        self.invalidations = 0
        """Invalidations queued so far, one per copy that a subscriber must drop or replace."""
        self.near_hits = 0
        """Reads that subscribers served from their near caches, as they reported them."""

    @property
    def near_bytes(self) -> int:
        """Bytes that subscribers hold of this shard's values, as they last reported."""
        return sum(queue.held for queue in self._queues.values())

    def tracks(self, digest: bytes) -> bool:
        """Return whether any subscriber holds ``digest``."""
        return digest in self._holders

    def track(self, subscriber: bytes, digests: Iterable[bytes]) -> int | None:
        """Note that ``subscriber`` holds ``digests``; return its stamp, None if refused."""
        queue = self._queues.get(subscriber) or self._join(subscriber)
        if queue is None:
            return None
        holders = self._holders
        for digest in digests:
            held_by = holders.get(digest)
            if held_by is None:
                holders[digest] = {subscriber}
            else:
                held_by.add(subscriber)
        while len(holders) > self._max_keys:
            self._owe(next(iter(holders)))
        return queue.seq

    def invalidate(self, digests: Iterable[bytes]) -> list[bytes]:
        """Queue an invalidation of each tracked digest; return the subscribers owed one."""
        owed: set[bytes] = set()
        for digest in digests:
            if digest in self._holders:
                owed.update(self._owe(digest))
        return list(owed)

    def push(self, written: Iterable[tuple[bytes, Any, int]]) -> list[bytes]:
        """Queue each tracked key's new value, of the given size, for its holders.

        Return the subscribers owed one. The keys stay tracked: their holders keep
        copies, of the new values.
        """
        owed: set[bytes] = set()
        for digest, value, size in written:
            holders = self._holders.get(digest)
            if holders is None:
                continue
            for subscriber in holders:
                queue = self._queues.get(subscriber)
                if queue is not None:
                    queue.owe_value(digest, value, size)
                    self.invalidations += 1
            owed.update(holders)
        return list(owed)

    def flush(self) -> list[bytes]:
        """Queue a flush for every subscriber (a clear, a new ring); return them all."""
        self._holders.clear()
        for queue in self._queues.values():
            queue.owe_flush()
            self.invalidations += 1
        return list(self._queues)

    def owes(self, subscriber: bytes) -> bool:
        """Return whether ``subscriber`` has something to collect (or is unknown here)."""
        queue = self._queues.get(subscriber)
        return queue is None or queue.owes()

    def collect(self, subscriber: bytes, *, hits: int, held: int) -> Notice:
        """Hand ``subscriber`` what it is owed, taking its report of hits and bytes held.

        A subscriber unknown here (this shard restarted, or forgot it) is told to flush.
        """
        self.near_hits += hits
        queue = self._queues.get(subscriber)
        if queue is None:
            queue = self._join(subscriber)
            return Notice(self.incarnation, 0 if queue is None else queue.seq, [], True)
        queue.polled = self._clock()
        queue.held = held
        pushed = list(queue.pushed.values())
        notice = Notice(self.incarnation, queue.seq, queue.digests, queue.flush, pushed)
        queue.digests, queue.pushed, queue.flush = [], {}, False
        return notice

    def _join(self, subscriber: bytes) -> _Queue | None:
        now = self._clock()
        for idle in [s for s, q in self._queues.items() if now - q.polled > IDLE_S]:
            del self._queues[idle]
        if len(self._queues) >= self._max_subscribers:
            return None
        queue = self._queues[subscriber] = _Queue(now)
        return queue

    def _owe(self, digest: bytes) -> set[bytes]:
        holders = self._holders.pop(digest)
        for subscriber in holders:
            queue = self._queues.get(subscriber)
            if queue is not None:  # else forgotten as idle: nobody to tell
                queue.owe(digest)
                self.invalidations += 1
        return holders
