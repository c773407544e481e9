"""A shard's place in its cache's ring: its epoch, the keys it owns, and moves on a resize.

Every request carries the caller's ring epoch. A caller whose ring is older than the
shard's gets STALE back and refreshes its ring; a shard whose ring is older (it restarted
after a membership change) fetches the router's. On a resize the router also sends a
:class:`~raycache.actors.resizing.Move`, and the shard takes part in it as
:mod:`raycache.actors.resizing` describes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import ray

from raycache.actors.resizing import Migration, Move
from raycache.core import protocol
from raycache.core.keys import key_point
from raycache.core.migration import Parcel
from raycache.core.protocol import WireReply
from raycache.core.ring import Ring
from raycache.core.singleflight import SingleFlight
from raycache.core.stats import ShardCounters
from raycache.core.store import Store


class Placement:
    """Which keys one shard owns, by the ring it holds, and what a newer ring changes."""

    def __init__(
        self,
        member: str,
        ring: Ring,
        parts: tuple[Store, SingleFlight[ray.ObjectRef[Any]], Migration],
        counts: ShardCounters,
        release_unheld: Callable[[], None],
    ) -> None:
        self._member = member
        self._ring = ring
        self._store, self._flights, self._migration = parts
        self._counts = counts
        self._release_unheld = release_unheld  # custody's: tell the vault what left

    @property
    def member(self) -> str:
        """The ring member id of the shard."""
        return self._member

    @property
    def ring(self) -> Ring:
        """The ring this shard routes by."""
        return self._ring

    def owns(self, key: Hashable) -> bool:
        """Return whether this shard owns ``key`` (a digest) by its ring."""
        assert isinstance(key, bytes)
        return self._ring.owner_at(key_point(key)) == self._member

    def stale(self) -> WireReply:
        """Return STALE with this shard's epoch, to a caller whose ring is older; count it."""
        self._counts.stale += 1
        return protocol.stale(self._ring.epoch)

    def set_ring(self, ring: Ring, capacity: int, move: Move | None) -> int:
        """Adopt a newer ring and byte budget; return how many entries that dropped.

        During a resize (``move``), the entries this shard no longer owns stay until the
        router has handed them over, and the budget shrinks only once the move ends, so
        that nothing is evicted on its way out. Without a move they are dropped.
        """
        if ring.epoch < self._ring.epoch:
            return 0
        self._ring = ring
        self._migration.begin(move, ring.epoch)
        self._flights.forget_where(lambda key, _: not self.owns(key))
        if move is not None:
            self._store.resize(max(capacity, self._store.capacity))
            return 0
        live = self._store.keys()
        moved = [key for key in live if not self.owns(key)]
        for key in moved:
            self._store.delete(key)
        self._store.resize(capacity)
        self._release_unheld()
        return len(moved)

    def hand_over(self) -> list[Parcel]:
        """Give up a batch of the entries this shard no longer owns, for their new owners."""
        parcels = self._migration.give_batch(self.owns)
        self._release_unheld()  # the receiver holds a large value before this goes
        return parcels

    def give(self, digests: list[bytes]) -> list[Parcel]:
        """Give up the entries of ``digests`` that this shard holds but no longer owns."""
        parcels = self._migration.give(digests, self.owns)
        self._release_unheld()
        return parcels
