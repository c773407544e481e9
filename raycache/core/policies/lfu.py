"""Least frequently used, ties broken by least recently used; O(1) per operation."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING, cast

from raycache.core.policies.base import Policy, Queue, empty

if TYPE_CHECKING:
    from raycache.core.entry import Entry

__all__ = ["LFUPolicy"]


class _Bucket(Queue):
    """The entries used exactly ``freq`` times, least recently used first."""

    __slots__ = ("freq", "higher", "lower")

    def __init__(self, freq: int) -> None:
        super().__init__()
        self.freq = freq
        self.lower: _Bucket = self
        self.higher: _Bucket = self


class LFUPolicy(Policy):
    """Least frequently used, ties broken by least recently used; O(1) per operation.

    Entries live in frequency buckets on a linked list sorted by frequency, so a use
    moves an entry one bucket up and the victim is at the front of the first bucket.
    The entry put last is evicted only if nothing else is left: otherwise every new
    key would lose to the established ones before it could collect a single hit.
    """

    name = "lfu"

    def __init__(self) -> None:
        self._head = _Bucket(0)  # sentinel of the circular bucket list; holds no entries
        self._count = 0
        self._newest: Entry | None = None

    def insert(self, entry: Entry) -> None:
        """Track ``entry`` with one use."""
        self._newest = entry
        bucket = self._head.higher
        if bucket.freq != 1:
            bucket = self._link_after(self._head, 1)
        bucket.append(entry)
        self._count += 1

    def replace(self, old: Entry, new: Entry) -> None:
        """Take over ``old``'s count for ``new``, and count the write as one more use."""
        old._queue.replace(old, new)
        self._newest = new
        self.touch(new)

    def touch(self, entry: Entry) -> None:
        """Move ``entry`` up to the bucket of the next frequency."""
        bucket = cast(_Bucket, entry._queue)
        target = bucket.higher
        if target.freq != bucket.freq + 1:
            target = self._link_after(bucket, bucket.freq + 1)
        bucket.unlink(entry)
        target.append(entry)
        self._drop_if_empty(bucket)

    def remove(self, entry: Entry) -> None:
        """Forget ``entry`` and its count."""
        bucket = cast(_Bucket, entry._queue)
        bucket.unlink(entry)
        self._drop_if_empty(bucket)
        self._count -= 1
        if entry is self._newest:
            self._newest = None

    def victim(self) -> Entry:
        """Return the least frequently used entry, sparing the newest while others remain."""
        bucket = self._head.higher
        entry = bucket.first()
        if entry is None:
            raise empty()
        if entry is self._newest and self._count > 1:
            entry = entry._next if bucket.count > 1 else cast("Entry", bucket.higher.first())
        return entry

    def _link_after(self, bucket: _Bucket, freq: int) -> _Bucket:
        new = _Bucket(freq)
        new.lower, new.higher = bucket, bucket.higher
        bucket.higher.lower = new
        bucket.higher = new
        return new

    def _drop_if_empty(self, bucket: _Bucket) -> None:
        if not bucket.count:
            bucket.lower.higher = bucket.higher
            bucket.higher.lower = bucket.lower

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Hashable]:
        bucket = self._head.higher
        while bucket is not self._head:
            yield from (entry.key for entry in bucket)
            bucket = bucket.higher
