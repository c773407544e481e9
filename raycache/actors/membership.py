"""A shard's place in its cache's ring: epochs, stale callers, and moves on a resize.

Every request carries the caller's ring epoch. A caller whose ring is older than the
shard's gets STALE back and refreshes its ring; a shard whose ring is older (it restarted
after a membership change) fetches the router's. On a resize the router also sends a
:class:`~raycache.actors.resizing.Move`, and the shard takes part in it as
:mod:`raycache.actors.resizing` describes.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import ray

from raycache.actors.cluster import NAMESPACE, router_name
from raycache.actors.custody import Custody, Put
from raycache.actors.resizing import Migration, Move
from raycache.core import protocol
from raycache.core.keys import key_point
from raycache.core.migration import Parcel
from raycache.core.protocol import WireReply
from raycache.core.ring import Ring
from raycache.core.singleflight import SingleFlight
from raycache.core.store import Store


class Member:
    """The ring-keeping half of :class:`~raycache.actors.shard.Shard`."""

    def __init__(
        self,
        cache: str,
        member: str,
        ring: Ring,
        store: Store,
        flights: SingleFlight[ray.ObjectRef[Any]],
        put: Put,
    ) -> None:
        self._cache = cache
        self._member = member
        self._ring = ring
        self._store = store
        self._flights = flights
        self._custody = Custody(cache, member, store, flights)
        self._migration = Migration(store, member, put, self._custody.adopt_large)
        self._stale_replies = 0

    def set_ring(self, ring: Ring, capacity: int, move: Move | None = None) -> int:
        """Adopt a newer ring and byte budget; return how many entries that dropped.

        During a resize (``move``), the entries this shard no longer owns stay until the
        router has handed them over, and the budget shrinks only once the move ends, so
        that nothing is evicted on its way out. Without a move they are dropped.
        """
        if ring.epoch < self._ring.epoch:
            return 0
        self._ring = ring
        self._migration.begin(move, ring.epoch)
        self._flights.forget_where(lambda key, _: not self._owns(key))
        if move is not None:
            self._store.resize(max(capacity, self._store.capacity))
            return 0
        live = self._store.keys()
        moved = [key for key in live if not self._owns(key)]
        for key in moved:
            self._store.delete(key)
        self._store.resize(capacity)
        self._custody.sweep()
        return len(moved)

    def hand_over(self) -> list[Parcel]:
        """Give up a batch of the entries this shard no longer owns, for their new owners."""
        parcels = self._migration.give_batch(self._owns)
        self._custody.sweep()  # the receiver adopts a large value before this shard goes
        return parcels

    def give(self, digests: list[bytes]) -> list[Parcel]:
        """Give up the entries of ``digests`` that this shard holds but no longer owns."""
        parcels = self._migration.give(digests, self._owns)
        self._custody.sweep()
        return parcels

    def adopt(self, parcels: list[Parcel], epoch: int) -> int:
        """Store the entries a resize to the ring of ``epoch`` moved here; return how many."""
        return self._migration.land(parcels, epoch)

    def _owns(self, key: Hashable) -> bool:
        assert isinstance(key, bytes)
        return self._ring.owner_at(key_point(key)) == self._member

    def _is_stale(self, epoch: int, *digests: bytes) -> bool:
        """Return whether the caller's ring is older; else fetch ``digests`` still moving here."""
        if epoch > self._ring.epoch:
            # Only a shard restarted after a membership change can lag its clients.
            self._sync_ring()
        if epoch < self._ring.epoch:
            return True
        self._migration.arrive(list(digests))
        return False

    def _sync_ring(self) -> None:
        router = ray.get_actor(router_name(self._cache), namespace=NAMESPACE)
        self.set_ring(*ray.get(router.assignment.remote()))

    def _stale(self) -> WireReply:
        self._stale_replies += 1
        return protocol.stale(self._ring.epoch)
