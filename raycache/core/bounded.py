"""A bounded, thread-safe LRU map whose entries may also expire.

The lineage table is one.

>>> clock = iter([0.0, 0.5, 2.0]).__next__
>>> lru = BoundedLRU(max_entries=2, ttl=1.0, clock=clock)
>>> lru.put("a", 1)
>>> lru.get("a"), lru.get("a")
(1, None)
>>> lru = BoundedLRU(max_entries=2)
>>> lru.put("a", 1); lru.put("b", 2); lru.get("a"); lru.put("c", 3)
1
>>> lru.get("b"), len(lru)
(None, 2)
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")


class BoundedLRU(Generic[K, V]):
    """At most ``max_entries`` entries, the least recently used evicted first.

    With a ``ttl``, an entry also expires that many seconds (by ``clock``) after it
    was put; reading it does not extend that. Every method takes a lock, so threads may
    share one map.
    """

    def __init__(
        self,
        max_entries: int,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_entries = max_entries
        self._ttl = ttl
        self._clock = clock
        # Each value with the time it expires, math.inf for never.
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def ttl(self) -> float | None:
        """How long an entry is kept after it is put, in seconds; None for no limit."""
        return self._ttl

    def get(self, key: K, default: D | None = None) -> V | D | None:
        """Return the value of ``key`` and mark it used, or ``default`` if none or expired."""
        with self._lock:
            kept = self._entries.get(key)
            if kept is None:
                return default
            expires, value = kept
            if expires != math.inf and expires <= self._clock():
                del self._entries[key]
                return default
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key``, evicting the least recently used entry if full."""
        expires = math.inf if self._ttl is None else self._clock() + self._ttl
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        """Forget ``key``, if it is kept."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """Return how many entries are kept, expired ones not yet dropped included."""
        with self._lock:
            return len(self._entries)
