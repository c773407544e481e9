"""The near cache: a handle keeps hot values in its own process for a moment.

Shards flag keys that take a large share of their traffic (:mod:`raycache.core.heat`).
A handle created with ``near_cache_ttl`` keeps the values of flagged keys in its own
process for that many seconds, so a hot key stops costing its shard a round trip per
read. A value served from here may be up to ``ttl`` seconds older than the shard's; the
handle drops its copy at once when it writes or deletes the key itself.

>>> clock = iter([0.0, 0.1, 5.0]).__next__
>>> near = NearCache(ttl=1.0, clock=clock)
>>> near.put(b"k", "v")
>>> near.get(b"k", None), near.get(b"k", None)
('v', None)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from raycache.core.bounded import BoundedLRU

MAX_ENTRIES = 1024
"""Hot keys kept per handle; hot keys are few by nature."""


class NearCache(BoundedLRU[bytes, Any]):
    """A small, time-bounded, per-process copy of hot values, keyed by key digest.

    ``discard(digest)`` drops a key this handle just wrote or deleted.
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_entries, ttl, clock)

    @property
    def ttl(self) -> float:
        """How long a hot value is kept, in seconds."""
        return cast(float, super().ttl)  # a NearCache always has one
