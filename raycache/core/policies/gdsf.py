"""GreedyDual-Size-Frequency: keeps entries that are used often, costly to compute and small."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING

from raycache.core.policies.base import Policy, empty

if TYPE_CHECKING:
    from raycache.core.entry import Entry

__all__ = ["GDSFPolicy"]


class _Meta:
    __slots__ = ("entry", "freq", "priority", "seq")

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.freq = 0
        self.priority = 0.0
        self.seq = 0


class GDSFPolicy(Policy):
    """GreedyDual-Size-Frequency: keeps entries that are used often, costly and small.

    Each entry has priority ``L + freq * cost / size`` (size floored at one byte) and
    the lowest priority is evicted; ``L`` then rises to that priority, which ages out
    entries that were valuable once but are no longer used. The heap uses lazy
    deletion: a use pushes a fresh record and stale ones are skipped (and compacted
    away once they outnumber the live ones). As in the original algorithm the entry
    being brought in is not a candidate, so the entry put last is evicted only if
    nothing else is left.
    """

    name = "gdsf"

    def __init__(self) -> None:
        self._meta: dict[Hashable, _Meta] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._inflation = 0.0  # "L" in the papers
        self._seq = itertools.count()
        self._newest: Hashable | None = None
        self._chosen: _Meta | None = None

    @property
    def inflation(self) -> float:
        """``L``: the priority of the last victim, which every new priority starts from."""
        return self._inflation

    @property
    def records(self) -> int:
        """How many heap records are kept, live and stale; compaction bounds it."""
        return len(self._heap)

    def insert(self, entry: Entry) -> None:
        """Track ``entry`` with one use."""
        meta = self._meta[entry.key] = _Meta(entry)
        self._newest = entry.key
        self._use(meta)

    def replace(self, old: Entry, new: Entry) -> None:
        """Take over ``old``'s count for ``new``, with the new size and cost, plus one use."""
        meta = self._meta[new.key]
        meta.entry = new
        self._newest = new.key
        self._use(meta)

    def touch(self, entry: Entry) -> None:
        """Count a use of ``entry`` and raise its priority."""
        self._use(self._meta[entry.key])

    def remove(self, entry: Entry) -> None:
        """Forget ``entry``; if it is the victim just chosen, inflate ``L`` to its priority."""
        meta = self._meta.pop(entry.key)
        if meta is self._chosen:
            self._inflation = meta.priority
            self._chosen = None

    def victim(self) -> Entry:
        """Return the entry of lowest priority, sparing the newest while others remain."""
        meta = self._top()
        if meta.entry.key == self._newest and len(self._meta) > 1:
            spared = heapq.heappop(self._heap)
            try:
                meta = self._top()
            finally:
                heapq.heappush(self._heap, spared)
        self._chosen = meta
        return meta.entry

    def _use(self, meta: _Meta) -> None:
        entry = meta.entry
        meta.freq += 1
        meta.priority = self._inflation + meta.freq * entry.cost / max(entry.size, 1)
        meta.seq = next(self._seq)
        heapq.heappush(self._heap, (meta.priority, meta.seq, entry.key))
        if len(self._heap) > 2 * len(self._meta) + 64:
            self._heap = [(m.priority, m.seq, k) for k, m in self._meta.items()]
            heapq.heapify(self._heap)

    def _top(self) -> _Meta:
        heap = self._heap
        while heap:
            _, seq, key = heap[0]
            meta = self._meta.get(key)
            if meta is not None and meta.seq == seq:
                return meta
            heapq.heappop(heap)
        raise empty()

    def __len__(self) -> int:
        return len(self._meta)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._meta)
