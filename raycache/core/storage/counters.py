"""What a storage tier counts: hits, misses, faults by kind, and its health.

A tier is healthy until its storage fails ``unhealthy_after`` times in a row; any success
makes it healthy again. A cache warns once and serves from memory only while it is not.

>>> counters = Counters(unhealthy_after=2)
>>> counters.fail("read_errors"); counters.fail("write_errors"); counters.healthy
False
>>> counters.succeed(); counters.healthy
True
>>> counters.stats(entries=1, bytes=10).read_errors
1
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class StorageStats:
    """Counters of a tier since it was created, and what it holds now."""

    storage_entries: int
    storage_bytes: int
    storage_hits: int
    storage_misses: int
    write_errors: int
    read_errors: int
    corrupt: int
    expirations: int
    evictions: int
    skipped: int
    """Values not written: larger than the whole budget, or that cannot be pickled."""
    rejected: int
    """Files read and refused: not signed with the cache's storage key (nor decoded)."""
    healthy: bool


class Counters:
    """A tier's counters and failure streak; safe to use from several threads."""

    def __init__(self, *, unhealthy_after: int) -> None:
        self._unhealthy_after = unhealthy_after
        self._counts: Counter[str] = Counter()
        self._failures_in_a_row = 0
        self._lock = threading.Lock()

    @property
    def healthy(self) -> bool:
        """False once the storage has failed ``unhealthy_after`` times in a row."""
        return self._failures_in_a_row < self._unhealthy_after

    def count(self, counter: str, times: int = 1) -> None:
        """Add ``times`` to ``counter``: hits, misses, skipped, corrupt, evictions..."""
        with self._lock:
            self._counts[counter] += times

    def fail(self, counter: str) -> None:
        """Count a storage failure in ``counter`` (``read_errors`` or ``write_errors``)."""
        with self._lock:
            self._counts[counter] += 1
            self._failures_in_a_row += 1

    def succeed(self) -> None:
        """Note that the storage answered: the failure streak ends."""
        self._failures_in_a_row = 0

    def stats(self, *, entries: int, bytes: int) -> StorageStats:
        """Return the counters, with the tier's current ``entries`` and ``bytes``."""
        with self._lock:
            counts = self._counts
            return StorageStats(
                storage_entries=entries,
                storage_bytes=bytes,
                storage_hits=counts["hits"],
                storage_misses=counts["misses"],
                write_errors=counts["write_errors"],
                read_errors=counts["read_errors"],
                corrupt=counts["corrupt"],
                expirations=counts["expirations"],
                evictions=counts["evictions"],
                skipped=counts["skipped"],
                rejected=counts["rejected"],
                healthy=self.healthy,
            )
