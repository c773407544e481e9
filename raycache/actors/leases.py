"""The shard's side of leases: loaders that run in the caller, not on the cluster.

On a miss, a caller asks its key's shard for a lease. The shard grants one caller at a
time a lease on the key (:class:`~raycache.core.singleflight.SingleFlight` keeps it);
that caller computes the value in its own process, renews the lease while it runs, and
ends it with :meth:`Leases.fulfil` or :meth:`Leases.fail`. Other callers block in
:meth:`Leases.wait`, on threads of their own, until the lease ends or expires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray

from raycache.actors.custody import Put
from raycache.actors.references import Shipped, reply_for, sent_size
from raycache.core import protocol
from raycache.core.protocol import WireReply
from raycache.core.singleflight import SingleFlight
from raycache.core.stats import ShardCounters
from raycache.core.store import Store

WAITERS = "waiters"
"""The concurrency group of :meth:`Shard.wait`: threads that block on flights."""

MAX_WAITERS = 64
"""How many callers may block in :meth:`Shard.wait` at once; more queue behind them."""


class Leases:
    """The leases of one shard's keys, over the shard's store and flights."""

    def __init__(
        self,
        store: Store,
        flights: SingleFlight[ray.ObjectRef[Any]],
        counts: ShardCounters,
        put: Put,
        join: Callable[[bytes], WireReply],
    ) -> None:
        self._store = store
        self._flights = flights
        self._counts = counts
        self._put = put  # the shard's, so that custody and storage learn of the value
        self._join = join  # the shard's: a caller joins a task or a live lease

    def grant(
        self, digest: bytes, ttl: float | None, tags: tuple[str, ...], lease_s: float
    ) -> WireReply:
        """Grant the caller a lease on a missing key, or say how to get its value instead.

        The answer is a hit if the value landed meanwhile, WAIT or PENDING if someone else
        computes it, and otherwise LEASED: the caller computes the value in its own
        process, renews the lease every so often, and ends with :meth:`fulfil` or
        :meth:`fail`.
        """
        entry = self._store.peek(digest)
        if entry is not None:
            return reply_for(entry)
        joined = self._join(digest)
        if protocol.code_of(joined) != protocol.Code.MISS:
            return joined
        self._counts.leases += 1
        flight = self._flights.lease(digest, ttl=ttl, tags=tags, lease_s=lease_s)
        return protocol.leased(flight.token)

    def wait(self, digest: bytes, token: int, timeout_s: float) -> WireReply:
        """Block until lease ``token`` ends, for up to ``timeout_s``; return its outcome.

        RETRY means the lease ended without a value (deleted, expired, replaced) or is
        still running: look again.
        """
        flight = self._flights.get(digest)
        if flight is None or flight.token != token:
            return protocol.retry()
        outcome: WireReply | None = self._flights.wait_out(flight, timeout_s)
        return outcome if outcome is not None else protocol.retry()

    def renew(self, digest: bytes, token: int, lease_s: float) -> bool:
        """Extend lease ``token`` by ``lease_s`` seconds; False if it is no longer current."""
        return self._flights.renew(digest, token, lease_s)

    def fulfil(self, digest: bytes, token: int, value: Any, cost: float) -> WireReply:
        """Store the value that lease ``token`` computed, and hand it to the waiters.

        A lease deleted, invalidated or superseded meanwhile stores nothing.
        """
        flight = self._flights.get(digest)
        if flight is None or flight.token != token:
            return protocol.ok()
        stored = self._put(digest, value, sent_size(value), flight.ttl, flight.tags, cost)
        entry = self._store.peek(digest)
        outcome = reply_for(entry) if entry is not None else _unstored(value)
        self._flights.finish(digest, token, outcome)
        return stored

    def fail(self, digest: bytes, token: int, error: bytes) -> None:
        """End lease ``token`` with the pickled exception its computation raised."""
        self._flights.finish(digest, token, protocol.failed(error))

    def renew_many(self, digests: list[bytes], tokens: list[int], lease_s: float) -> None:
        """Extend the lease of each token of ``tokens`` on its digest by ``lease_s``."""
        for digest, token in zip(digests, tokens, strict=True):
            self.renew(digest, token, lease_s)

    def fulfil_many(
        self, digests: list[bytes], tokens: list[int], values: list[Any], cost: float
    ) -> WireReply:
        """:meth:`fulfil` each lease; return OK, or the first TOO_LARGE."""
        replies = [
            self.fulfil(digest, token, value, cost)
            for digest, token, value in zip(digests, tokens, values, strict=True)
        ]
        return protocol.first_refusal(replies)

    def fail_many(self, digests: list[bytes], tokens: list[int], error: bytes) -> None:
        """:meth:`fail` each lease with the same pickled exception."""
        for digest, token in zip(digests, tokens, strict=True):
            self.fail(digest, token, error)


def _unstored(value: Any) -> WireReply:
    """Return the reply that hands waiters a value the store turned away."""
    return protocol.ref(value.ref) if isinstance(value, Shipped) else protocol.hit(value)
