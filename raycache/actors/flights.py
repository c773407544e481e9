"""A shard's computations in flight: the tasks it starts on a miss, and callers that join.

Concurrent callers of a missing key join one computation: a task that the shard starts
through its node's vault (which owns the result, see :mod:`raycache.actors.compute`), or
a lease that another caller holds (see :mod:`raycache.actors.leases`). The task tells
the shard its outcome with :meth:`Computations.record`, by a message that may arrive
after the caller that already holds the value reads the key back: so a finished task
is a hit even before its report lands.
"""

from __future__ import annotations

import functools
from typing import Any

import ray

from raycache.actors.compute import Call, Computed, Report
from raycache.actors.custody import Custody, Put
from raycache.actors.references import StoredRef
from raycache.core import protocol
from raycache.core.protocol import Code, WireReply
from raycache.core.singleflight import SingleFlight
from raycache.core.stats import ShardCounters


class Computations:
    """Starts, joins and records the computations of one shard's keys."""

    def __init__(
        self,
        flights: SingleFlight[ray.ObjectRef[Any]],
        custody: Custody,
        counts: ShardCounters,
        put: Put,
        *,
        home: bool = False,
    ) -> None:
        self._flights = flights
        self._custody = custody
        self._counts = counts
        self._put = put  # the shard's, so that custody and storage learn of the value
        self._home = home  # copy a large result onto the shard's node: an elastic cache

    def start(self, digest: bytes, call: Call, report: Report) -> ray.ObjectRef[Any]:
        """Start ``call`` for ``digest``; its task tells ``report`` how it ended."""
        self._counts.computes += 1
        launch = functools.partial(self._custody.submit, call, report, digest)
        return self._flights.start(digest, launch, ttl=call.ttl, tags=call.tags)

    def join(self, digest: bytes) -> WireReply:
        """Join the key's flight: WAIT on a live lease, PENDING on a task; else MISS."""
        flight = self._flights.get(digest)
        if flight is None:
            return protocol.miss()
        if flight.is_lease:
            if self._flights.expired(flight):
                return protocol.miss()  # its holder stopped renewing: the next may lease
            self._counts.merged += 1
            return protocol.wait(flight.token)
        finished = self.finished(digest)
        if finished is not None:
            return finished  # done, only not yet reported: a hit
        self._counts.merged += 1
        return protocol.in_flight(Code.PENDING, flight.handle)

    def finished(self, digest: bytes) -> WireReply | None:
        """Return a hit on the key's task if it has finished, reported or not; else None."""
        flight = self._flights.get(digest)
        if flight is None or flight.handle is None:
            return None
        ready, _ = ray.wait([flight.handle], timeout=0, fetch_local=False)
        return protocol.ref(flight.handle) if ready else None

    def record(self, digest: bytes, token: int, outcome: Computed | None) -> None:
        """Store the outcome of computation ``token``; None means it failed."""
        flight = self._flights.finish(digest, token)
        if flight is None or flight.handle is None or outcome is None:
            self._custody.release_unheld((digest,))
            return  # deleted, cleared or superseded while it ran; or it failed
        if outcome.inline:
            value = outcome.inline_value
        else:
            ref = self._custody.home(flight.handle, outcome.node) if self._home else flight.handle
            value = StoredRef(ref)
        self._put(digest, value, outcome.size, flight.ttl, flight.tags, outcome.seconds)
