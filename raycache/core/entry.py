"""One cached value and its bookkeeping: the record a store holds and its policy orders.

An :class:`Entry` is a :class:`Node`, so a policy links the store's own entries into its
queues (:class:`Queue`) instead of keeping records of its own. The links and the queue
live here, lowest, so that neither the store nor the policies need the other to name
them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Entry", "Node", "Queue"]


class Node:
    """Something a policy's queue can hold: the links a policy sets on an entry it tracks.

    The fields belong to the store's policy; nothing else reads or writes them.
    """

    __slots__ = ("_next", "_prev", "_queue")

    _prev: Entry
    _next: Entry
    _queue: Queue


@dataclass
class Entry(Node):
    """One cached value and its bookkeeping; a snapshot to read, not to modify.

    ``size`` is in bytes, ``cost`` in seconds of compute, times are clock readings.
    The links an entry inherits from :class:`Node` are the policy's, and take no part
    in comparisons.

    >>> entry = Entry("k", "v", size=1, cost=1.0, created_at=10.0, expires_at=15.0,
    ...               tags=frozenset())
    >>> entry.age(12.5), entry.expired(14.9), entry.expired(15.0)
    (2.5, False, True)
    """

    # Spelled out rather than dataclass(slots=True), which hides Node's slots from mypy.
    __slots__ = ("cost", "created_at", "expires_at", "key", "size", "tags", "value")

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


class Queue(Node):
    """Entries in a doubly linked ring, oldest first; the queue is the ring's sentinel.

    Every operation is O(1). ``bytes`` and ``count`` sum the entries held.
    """

    __slots__ = ("bytes", "count")

    def __init__(self) -> None:
        # The sentinel stands in for an entry at both ends of the ring.
        self._prev = self._next = self  # type: ignore[assignment]
        self._queue = self
        self.bytes = 0
        self.count = 0

    def append(self, entry: Entry) -> None:
        """Add ``entry`` as the newest."""
        last = self._prev
        entry._prev, entry._next, entry._queue = last, last._next, self
        last._next = self._prev = entry
        self.bytes += entry.size
        self.count += 1

    def unlink(self, entry: Entry) -> None:
        """Take ``entry`` out of the queue."""
        prev, nxt = entry._prev, entry._next
        prev._next, nxt._prev = nxt, prev
        self.bytes -= entry.size
        self.count -= 1

    def move_to_end(self, entry: Entry) -> None:
        """Make ``entry``, which is in this queue, the newest."""
        prev, nxt = entry._prev, entry._next
        prev._next, nxt._prev = nxt, prev
        last = self._prev
        entry._prev, entry._next = last, last._next
        last._next = self._prev = entry

    def replace(self, old: Entry, new: Entry) -> None:
        """Put ``new`` where ``old`` is, and take ``old`` out."""
        prev, nxt = old._prev, old._next
        new._prev, new._next, new._queue = prev, nxt, self
        prev._next = nxt._prev = new
        self.bytes += new.size - old.size

    def first(self) -> Entry | None:
        """Return the oldest entry, or None if the queue is empty."""
        return self._next if self.count else None

    def last(self) -> Entry | None:
        """Return the newest entry, or None if the queue is empty."""
        return self._prev if self.count else None

    def __iter__(self) -> Iterator[Entry]:
        node = self._next
        for _ in range(self.count):
            yield node
            node = node._next

    def __len__(self) -> int:
        return self.count
