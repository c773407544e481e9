"""Miniature caches: metadata-only W-TinyLFU simulations fed a hashed sample of the keys.

Waldspurger, Saemundsson, Ahmad & Park, "Cache Modeling and Optimization using
Miniature Simulations", USENIX ATC 2017, after SHARDS (FAST 2015): a cache of
``1/R`` the size, fed only the requests whose key hashes into a ``1/R`` sample,
has about the hit ratio of the full cache. The adaptive policy runs a few of them,
with different window shares, and copies the best one's; a window share of 1 is
plain LRU. They hold keys and sizes, no values, and see one request in ``R``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from raycache.core.sketch import FrequencySketch

__all__ = ["Miniature"]

PROTECTED_SHARE = 0.8
"""The protected segment's share of the main region, as in the real policy."""


class Miniature:
    """A W-TinyLFU cache of keys and sizes whose window holds ``window_share`` of the bytes.

    >>> lru = Miniature(window_share=1.0)
    >>> lru.budget = 2
    >>> [lru.access(key, 1) for key in "abca"]
    [False, False, False, False]
    >>> lru.hits
    0
    """

    def __init__(self, window_share: float) -> None:
        self.window_share = window_share
        self.budget = 1
        """The bytes the cache may hold: the real cache's, divided by the sampling rate."""
        self.hits = 0
        """Hits since the owner last cleared them."""
        self._window: OrderedDict[Hashable, int] = OrderedDict()
        self._probation: OrderedDict[Hashable, int] = OrderedDict()
        self._protected: OrderedDict[Hashable, int] = OrderedDict()
        self._sketch = FrequencySketch()
        self._admits = window_share < 1.0  # an all-window cache is LRU: no counts needed
        self._bytes = self._window_bytes = self._protected_bytes = 0

    def access(self, key: Hashable, size: int) -> bool:
        """Request ``key`` of ``size`` bytes; return whether it was a hit (a miss inserts it)."""
        sketch = self._sketch
        if self._admits:
            sketch.add(key)
        for queue in (self._window, self._probation, self._protected):
            held = queue.get(key)
            if held is not None:
                self._hit(queue, key, held)
                self.hits += 1
                return True
        self._window[key] = size
        self._bytes += size
        self._window_bytes += size
        if len(self) > sketch.capacity:
            sketch.grow(2 * len(self))
        self._overflow_window()
        self._evict()
        return False

    def drop_unless(self, sampled: Callable[[Hashable], bool]) -> None:
        """Forget every key for which ``sampled(key)`` is false: the sample just shrank."""
        for queue in (self._window, self._probation, self._protected):
            for key in [key for key in queue if not sampled(key)]:
                self._discard(queue, key)

    def _hit(self, queue: OrderedDict[Hashable, int], key: Hashable, size: int) -> None:
        # A hit in probation promotes, as in the real policy; elsewhere it refreshes.
        if queue is not self._probation:
            queue.move_to_end(key)
            return
        del queue[key]
        self._protected[key] = size
        self._protected_bytes += size
        main = self._bytes - self._window_bytes
        while self._protected_bytes > PROTECTED_SHARE * main:
            old, old_size = self._protected.popitem(last=False)
            self._protected_bytes -= old_size
            self._probation[old] = old_size

    def _overflow_window(self) -> None:
        budget = max(self.window_share * self.budget, 1)
        while self._window_bytes > budget and len(self._window) > 1:
            key, size = self._window.popitem(last=False)
            self._window_bytes -= size
            self._probation[key] = size

    def _evict(self) -> None:
        # The real policy's contest: the newest probation entry against the oldest.
        probation = self._probation
        while self._bytes > self.budget and len(self) > 1:
            if len(probation) > 1:
                candidate, incumbent = next(reversed(probation)), next(iter(probation))
                wanted, held = self._sketch.estimates(candidate, incumbent)
                self._discard(probation, incumbent if wanted > held else candidate)
            else:
                queue = next(q for q in (probation, self._protected, self._window) if q)
                self._discard(queue, next(iter(queue)))

    def _discard(self, queue: OrderedDict[Hashable, int], key: Hashable) -> None:
        size = queue.pop(key)
        self._bytes -= size
        if queue is self._window:
            self._window_bytes -= size
        elif queue is self._protected:
            self._protected_bytes -= size

    def __len__(self) -> int:
        return len(self._window) + len(self._probation) + len(self._protected)
