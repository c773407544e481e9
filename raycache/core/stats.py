"""The counters of a store and of a shard, as snapshots to read, sum or export.

A shard's stats row is one typed record, :class:`ShardStats`, that the shard fills and
every consumer reads, so its fields are spelled once, here. Each is marked a *counter*
(only grows, summed over shards and exported as ``raycache_<field>_total``), a *gauge*
(what the shard holds now, summed and exported as ``raycache_<field>``), or neither (it
says which shard the row is of). ``Cache.stats()`` sums the counters and gauges of its
shards' rows, and the metrics thread exports the same fields.

>>> stats = StoreStats(hits=3, misses=1, evictions=0, expirations=0, entries=2, bytes=8,
...                    capacity=10)
>>> stats.hit_ratio
0.75
>>> row = ShardStats(shard="shard-0", hits=3, misses=1, bytes=10)
>>> totals([row, ShardStats(shard="shard-1", hits=1, bytes=5)])["hits"]
4
>>> "hits" in COUNTERS, "bytes" in GAUGES, "shard" in COUNTERS + GAUGES
(True, True, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from raycache.core.storage.counters import StorageStats

__all__ = ["COUNTERS", "GAUGES", "ShardCounters", "ShardStats", "StoreStats", "totals"]


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


def _counter() -> Any:
    return field(default=0, metadata={"kind": "counter"})


def _gauge() -> Any:
    return field(default=0, metadata={"kind": "gauge"})


@dataclass
class ShardCounters:
    """What a shard counts itself, beside its store's and its storage's counters."""

    lost: int = 0
    """Cached objects reported lost by readers, and dropped."""
    merged: int = 0
    """Callers that joined a computation in flight instead of starting one."""
    computes: int = 0
    """Computations this shard started on the cluster."""
    leases: int = 0
    """Leases granted to callers that compute in their own process."""
    refreshes: int = 0
    """Stale-while-revalidate recomputations started."""
    rejected: int = 0
    """Values larger than the shard's whole budget, turned away."""
    stale: int = 0
    """Requests answered STALE: the caller's ring was older than the shard's."""
    evacuated: int = 0
    """Entries moved here off a draining node, or copied here from one."""
    evacuated_bytes: int = 0
    """Their bytes."""
    evacuation_lost: int = 0
    """Entries a draining node still held at its deadline, with no durable tier to keep them."""
    evacuation_lost_bytes: int = 0
    """Their bytes."""


@dataclass(frozen=True)
class ShardStats:
    """One shard's counters, sizes and placement, as ``Cache.stats()["shards"]`` lists them."""

    shard: str = ""
    node: str = ""
    epoch: int = 0
    hits: int = _counter()
    misses: int = _counter()
    evictions: int = _counter()
    expirations: int = _counter()
    entries: int = _gauge()
    bytes: int = _gauge()
    capacity: int = _gauge()
    pending: int = _gauge()
    lost: int = _counter()
    merged: int = _counter()
    computes: int = _counter()
    leases: int = _counter()
    refreshes: int = _counter()
    rejected: int = _counter()
    stale: int = _counter()
    evacuated: int = _counter()
    """Entries moved or copied off draining nodes (see :mod:`raycache.actors.evacuation`)."""
    evacuated_bytes: int = _counter()
    evacuation_lost: int = _counter()
    """Entries that draining nodes still held at their deadline, and that were lost."""
    evacuation_lost_bytes: int = _counter()
    storage_hits: int = _counter()
    storage_misses: int = _counter()
    storage_entries: int = _gauge()
    storage_bytes: int = _gauge()
    storage_write_errors: int = _counter()
    storage_read_errors: int = _counter()
    storage_corrupt: int = _counter()
    storage_rejected: int = _counter()
    storage_dropped: int = _counter()
    """Writes to storage dropped because its queue was full or the storage down."""
    storage_healthy: bool = True
    near_hits: int = _counter()
    """Reads that handles served from their near caches, as they last reported."""
    near_invalidations: int = _counter()
    """Near-cache copies this shard told their handles to drop."""
    near_bytes: int = _gauge()
    """Bytes that near caches hold of this shard's values, as they last reported."""

    @classmethod
    def of(
        cls,
        place: tuple[str, str, int],
        store: StoreStats,
        counts: ShardCounters,
        pending: int,
        storage: StorageStats | None,
        dropped: int,
    ) -> ShardStats:
        """Build a row from a shard's ``(member, node, epoch)`` and its parts' counters."""
        shard, node, epoch = place
        row = cls(
            shard=shard,
            node=node,
            epoch=epoch,
            hits=store.hits,
            misses=store.misses,
            evictions=store.evictions,
            expirations=store.expirations,
            entries=store.entries,
            bytes=store.bytes,
            capacity=store.capacity,
            pending=pending,
            lost=counts.lost,
            merged=counts.merged,
            computes=counts.computes,
            leases=counts.leases,
            refreshes=counts.refreshes,
            rejected=counts.rejected,
            stale=counts.stale,
            evacuated=counts.evacuated,
            evacuated_bytes=counts.evacuated_bytes,
            evacuation_lost=counts.evacuation_lost,
            evacuation_lost_bytes=counts.evacuation_lost_bytes,
            storage_dropped=dropped,
        )
        if storage is None:
            return row
        return replace(
            row,
            storage_hits=storage.storage_hits,
            storage_misses=storage.storage_misses,
            storage_entries=storage.storage_entries,
            storage_bytes=storage.storage_bytes,
            storage_write_errors=storage.write_errors,
            storage_read_errors=storage.read_errors,
            storage_corrupt=storage.corrupt,
            storage_rejected=storage.rejected,
            storage_healthy=storage.healthy,
        )

    def row(self) -> dict[str, Any]:
        """Return the row as the plain mapping ``Cache.stats()`` shows."""
        return asdict(self)


def _of_kind(kind: str) -> tuple[str, ...]:
    return tuple(f.name for f in fields(ShardStats) if f.metadata.get("kind") == kind)


COUNTERS = _of_kind("counter")
"""The fields that only grow: summed over shards, exported as ``raycache_<field>_total``."""

GAUGES = _of_kind("gauge")
"""The fields that say what a shard holds now: summed, exported as ``raycache_<field>``."""


def totals(rows: Iterable[ShardStats]) -> dict[str, int]:
    """Return every counter and gauge summed over ``rows``."""
    listed = list(rows)
    return {name: sum(getattr(row, name) for row in listed) for name in COUNTERS + GAUGES}
