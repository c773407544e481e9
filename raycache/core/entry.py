"""One cached value and its bookkeeping: the record a store holds and its policy orders.

An :class:`Entry` is a :class:`~raycache.core.policies.base.Node`, so a policy links the
store's own entries into its queues instead of keeping records of its own.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from raycache.core.policies.base import Node

__all__ = ["Entry"]


@dataclass
class Entry(Node):
    """One cached value and its bookkeeping; a snapshot to read, not to modify.

    ``size`` is in bytes, ``cost`` in seconds of compute, times are clock readings.
    The links an entry inherits from :class:`~raycache.core.policies.base.Node` are
    the policy's, and take no part in comparisons.

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
