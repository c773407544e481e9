"""Hot keys: which keys take a large share of a shard's reads.

A shard flags the reads of such keys (:data:`~raycache.core.protocol.Flag.HOT`), so
that a handle with a near cache (:mod:`raycache.core.near_cache`) may keep their values.
"""

from __future__ import annotations

import time
from collections.abc import Callable

HOT_READS_PER_SECOND = 100
"""Reads per second from which a shard calls a key hot."""


class Heat:
    """Counts reads per key in one-second windows, to tell which keys are hot.

    >>> heat = Heat(threshold=2, clock=lambda: 0.0)
    >>> [heat.hit(b"k") for _ in range(3)]
    [False, True, True]
    """

    def __init__(
        self, threshold: int = HOT_READS_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = threshold
        self._clock = clock
        self._window = clock()
        self._reads: dict[bytes, int] = {}

    def hit(self, digest: bytes) -> bool:
        """Count a read of ``digest``; return whether the key is hot."""
        now = self._clock()
        if now - self._window >= 1.0:
            self._window, self._reads = now, {}
        reads = self._reads.get(digest, 0) + 1
        self._reads[digest] = reads
        return reads >= self._threshold
