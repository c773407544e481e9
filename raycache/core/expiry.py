"""The TTL schedule of one store: which of its entries expire next.

A store schedules every entry it writes with a TTL, and asks the schedule for those
whose time has come. Records of entries the store has since replaced or removed stay
in the heap, since finding them would cost a search: they are skipped when they come
due, and swept out all at once when the heap grows past twice the entries held, plus
64. Entries without a TTL are never scheduled, so they cost nothing here.

>>> from raycache.core.entry import Entry
>>> held = {}
>>> schedule = ExpirySchedule(held)
>>> for key, expires_at in [("a", 15.0), ("b", 12.0), ("c", 20.0)]:
...     held[key] = Entry(key, None, 1, 1.0, 10.0, expires_at, frozenset())
...     schedule.add(held[key], expires_at)
>>> schedule.next_due
12.0
>>> del held["b"]
>>> schedule.purge(16.0, discard=lambda entry: held.pop(entry.key))
1
>>> sorted(held), schedule.next_due
(['c'], 20.0)
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from raycache.core.entry import Entry

__all__ = ["ExpirySchedule"]

_NEVER: Final = math.inf


class ExpirySchedule:
    """A min-heap of ``(expires_at, seq, entry)`` records over entries of ``held``.

    ``held`` is the store's own map from key to entry: the schedule only reads it, to
    tell an entry's current record from a stale one.
    """

    __slots__ = ("_heap", "_held", "_seq", "next_due")

    def __init__(self, held: Mapping[Hashable, Entry]) -> None:
        self._held = held
        self._heap: list[tuple[float, int, Entry]] = []
        # Breaks ties on the time, so the heap never compares two entries.
        self._seq = itertools.count()
        self.next_due = _NEVER
        """The earliest time in the heap, or infinity when it is empty.

        An attribute rather than a method, so a put can compare it with the clock
        without a call.
        """

    def __iter__(self) -> Iterator[Entry]:
        """Iterate over the scheduled entries, stale ones included, in no order."""
        return (record[2] for record in self._heap)

    def add(self, entry: Entry, expires_at: float) -> None:
        """Schedule ``entry``, which ``held`` holds, to expire at ``expires_at``."""
        heap = self._heap
        heapq.heappush(heap, (expires_at, next(self._seq), entry))
        if expires_at < self.next_due:
            self.next_due = expires_at
        if len(heap) > 2 * len(self._held) + 64:
            held = self._held
            self._heap = heap = [r for r in heap if held.get(r[2].key) is r[2]]
            heapq.heapify(heap)
            self.next_due = heap[0][0]

    def purge(self, now: float, discard: Callable[[Entry], object]) -> int:
        """Unschedule every record due by ``now``; ``discard`` each entry ``held`` still holds.

        Return how many entries were discarded.
        """
        heap, held, count = self._heap, self._held, 0
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            if held.get(entry.key) is entry:
                discard(entry)
                count += 1
        self.next_due = heap[0][0] if heap else _NEVER
        return count

    def clear(self) -> None:
        """Unschedule everything."""
        self._heap.clear()
        self.next_due = _NEVER
