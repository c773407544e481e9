"""The counters of one store, as a snapshot to read or export.

>>> stats = StoreStats(hits=3, misses=1, evictions=0, expirations=0, entries=2, bytes=8,
...                    capacity=10)
>>> stats.hit_ratio
0.75
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StoreStats"]


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
