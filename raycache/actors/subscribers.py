"""The shard's side of the coherent near cache: its tracking table, wired to threads.

Reads and writes run on the shard's main thread; they track keys and queue
invalidations (:class:`~raycache.core.tracking.Tracking`) and wake the poll that waits
for them. Each subscribing handle keeps one :meth:`Shard.poll` waiting on a thread of the
:data:`POLLERS` group, a long poll as Ray Serve's controller serves its clients, so a
write never waits for the push it causes: it queues the invalidation, or the new value,
and notifies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from raycache.core.protocol import Notice, Stamp
from raycache.core.stats import ShardStats
from raycache.core.store import Entry
from raycache.core.tracking import MAX_SUBSCRIBERS, Tracking

POLLERS = "pollers"
"""The concurrency group of :meth:`Shard.poll`: one thread per subscribing handle."""

MAX_POLLERS = MAX_SUBSCRIBERS
"""Threads of :data:`POLLERS`: one per subscriber a shard may serve."""

POLL_S = 2.0
"""How long a poll waits for news before it answers empty (and the handle polls again)."""


class Subscribers:
    """The handles that keep copies of one shard's values, and what they are owed."""

    def __init__(self) -> None:
        self._tracking = Tracking()
        self._lock = threading.Lock()
        self._waiting: dict[bytes, threading.Condition] = {}

    def stamp(
        self, subscriber: bytes, digests: Sequence[bytes], entries: Sequence[Entry | None]
    ) -> Stamp:
        """Track the keys of ``digests`` that were found; return the read's stamp."""
        now = time.monotonic()
        found = [digest for digest, entry in zip(digests, entries, strict=True) if entry]
        with self._lock:
            seq = self._tracking.track(subscriber, found)
        ttls = [_time_left(entry, now) for entry in entries]
        sizes = [0 if entry is None else entry.size for entry in entries]
        return Stamp(self._tracking.incarnation, seq, ttls, sizes)

    def invalidate(self, digests: Sequence[bytes]) -> None:
        """Tell the holders of ``digests`` to drop their copies."""
        self.changed((), digests)

    def changed(self, written: Sequence[tuple[bytes, Any, int]], dropped: Sequence[bytes]) -> None:
        """Push the keys ``written`` (digest, value, size) to their holders, then drop ``dropped``.

        The drops come last, so that a key both written and dropped (a value the policy
        refused) is dropped.
        """
        tracks = self._tracking.tracks  # only this thread adds keys: checked without the lock
        if any(tracks(digest) for digest, _, _ in written) or any(map(tracks, dropped)):
            with self._lock:
                owed = self._tracking.push(written) + self._tracking.invalidate(dropped)
                self._wake(list(dict.fromkeys(owed)))

    def flush(self) -> None:
        """Tell every subscriber to drop every copy of this shard's values."""
        with self._lock:
            self._wake(self._tracking.flush())

    def poll(self, subscriber: bytes, hits: int, held: int, *, wait: bool) -> Notice:
        """Return what ``subscriber`` is owed, waiting up to :data:`POLL_S` if ``wait``."""
        with self._lock:
            if wait and not self._tracking.owes(subscriber):
                woken = self._waiting[subscriber] = threading.Condition(self._lock)
                woken.wait(POLL_S)
                self._waiting.pop(subscriber, None)
            return self._tracking.collect(subscriber, hits=hits, held=held)

    def add_stats(self, row: ShardStats) -> ShardStats:
        """Return ``row`` with the near cache's counters of this shard."""
        tracking = self._tracking
        with self._lock:
            return replace(
                row,
                near_hits=tracking.near_hits,
                near_invalidations=tracking.invalidations,
                near_bytes=tracking.near_bytes,
            )

    def _wake(self, subscribers: list[bytes]) -> None:
        for subscriber in subscribers:
            waiting = self._waiting.get(subscriber)
            if waiting is not None:
                waiting.notify()


def _time_left(entry: Entry | None, now: float) -> float | None:
    """Seconds ``entry`` has left; None for no TTL, 0 for a key not found (not to keep)."""
    if entry is None:
        return 0.0
    return None if entry.expires_at is None else entry.expires_at - now
