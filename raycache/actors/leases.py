"""The shard's side of leases: loaders that run in the caller, not on the cluster.

On a miss, a caller asks its key's shard for a lease. The shard grants one caller at a
time a lease on the key (:class:`~raycache.core.singleflight.SingleFlight` keeps it);
that caller computes the value in its own process, renews the lease while it runs, and
ends it with :meth:`Leases.fulfil` or :meth:`Leases.fail`. Other callers block in
:meth:`Leases.wait`, on threads of their own, until the lease ends or expires.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import ray

from raycache.actors.references import Shipped, reply_for, sent_size
from raycache.core import protocol
from raycache.core.protocol import Code, KeyRequest, WireReply
from raycache.core.singleflight import SingleFlight
from raycache.core.store import Store

WAITERS = "waiters"
"""The concurrency group of :meth:`Shard.wait`: threads that block on flights."""

MAX_WAITERS = 64
"""How many callers may block in :meth:`Shard.wait` at once; more queue behind them."""


class _Shard(Protocol):
    """What a lease needs of the shard it is part of."""

    _flights: SingleFlight[ray.ObjectRef[Any]]
    _store: Store
    _counters: dict[str, int]

    def _is_stale(self, epoch: int, *digests: bytes) -> bool: ...

    def _stale(self) -> WireReply: ...

    def _join(self, digest: bytes) -> WireReply: ...

    def _put(
        self,
        digest: bytes,
        value: Any,
        size: int,
        ttl: float | None,
        tags: tuple[str, ...],
        cost: float = 1.0,
        *,
        persist: bool = True,
    ) -> WireReply: ...


class Leases:
    """The lease methods of :class:`~raycache.actors.shard.Shard`, which mixes them in."""

    def lease(
        self: _Shard, request: bytes, ttl: float | None, tags: tuple[str, ...], lease_s: float
    ) -> WireReply:
        """Grant the caller a lease on a missing key, or say how to get its value instead.

        The answer is a hit if the value landed meanwhile, WAIT or PENDING if someone else
        computes it, and otherwise LEASED: the caller computes the value in its own
        process, renews the lease every so often, and ends with :meth:`fulfil` or
        :meth:`fail`.
        """
        epoch, digest, _ = KeyRequest.unpack(request)
        if self._is_stale(epoch, digest):
            return self._stale()
        entry = self._store.peek(digest)
        if entry is not None:
            return reply_for(entry)
        joined = self._join(digest)
        if joined[0] != Code.MISS:
            return joined
        self._counters["leases"] += 1
        return protocol.leased(
            self._flights.lease(digest, ttl=ttl, tags=tags, lease_s=lease_s).token
        )

    @ray.method(concurrency_group=WAITERS)
    def wait(self: _Shard, request: bytes, token: int, timeout_s: float) -> WireReply:
        """Block until lease ``token`` ends, for up to ``timeout_s``; return its outcome.

        Runs on a thread of its own, so that waiting blocks no other request: it only
        reads the flight, whose event the shard's own thread sets. RETRY means the lease
        ended without a value (deleted, expired, replaced) or is still running: look again.
        """
        _, digest, _ = KeyRequest.unpack(request)
        flight = self._flights.get(digest)
        if flight is None or flight.token != token:
            return protocol.retry()
        give_up = time.monotonic() + timeout_s
        # Wake when the lease ends, or when it would expire: its holder renews it (moving
        # the deadline on) for as long as it lives.
        while not flight.done.is_set() and not self._flights.expired(flight):
            wake = min(give_up, time.monotonic() + self._flights.remaining(flight))
            if wake <= time.monotonic() or flight.done.wait(wake - time.monotonic()):
                break
        outcome: WireReply | None = flight.outcome
        return outcome if outcome is not None else protocol.retry()

    def renew(self: _Shard, request: bytes, token: int, lease_s: float) -> bool:
        """Extend lease ``token`` by ``lease_s`` seconds; False if it is no longer current."""
        _, digest, _ = KeyRequest.unpack(request)
        return self._flights.renew(digest, token, lease_s)

    def fulfil(self: _Shard, request: bytes, token: int, value: Any, cost: float) -> WireReply:
        """Store the value that lease ``token`` computed, and hand it to the waiters.

        A lease deleted, invalidated or superseded meanwhile stores nothing.
        """
        _, digest, _ = KeyRequest.unpack(request)
        flight = self._flights.get(digest)
        if flight is None or flight.token != token:
            return protocol.ok()
        stored = self._put(digest, value, sent_size(value), flight.ttl, flight.tags, cost)
        entry = self._store.peek(digest)
        outcome = reply_for(entry) if entry is not None else _unstored(value)
        self._flights.settle(digest, token, outcome)
        return stored

    def fail(self: _Shard, request: bytes, token: int, error: bytes) -> None:
        """End lease ``token`` with the pickled exception its computation raised."""
        _, digest, _ = KeyRequest.unpack(request)
        self._flights.settle(digest, token, protocol.failed(error))


def _unstored(value: Any) -> WireReply:
    """Return the reply that hands waiters a value the store turned away."""
    return protocol.ref(value.ref) if isinstance(value, Shipped) else protocol.hit(value)
