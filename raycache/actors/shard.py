"""The shard actor: one slice of a cache, a thin wrapper over a :class:`~raycache.core.store.Store`.

A shard keeps small values in its own heap and returns them inline. It keeps large values
as ObjectRefs that its node's vault owns (see :mod:`raycache.actors.custody`), so that
they outlive the shard, and on a hit it returns them nested (``[ref]``) so that Ray hands
the reader a reference instead of a copy. Every request carries the caller's ring epoch;
a caller whose ring is older than the shard's gets STALE back and refreshes its ring
before retrying. Requests and replies are those of :mod:`raycache.core.protocol`;
computations in flight are kept by :class:`~raycache.core.singleflight.SingleFlight`.
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayError

from raycache.actors.cluster import NAMESPACE, router_name
from raycache.actors.compute import Call, Computed, Report
from raycache.actors.custody import Custody, as_digest
from raycache.actors.durable import Durable, Recall
from raycache.actors.flights import Computations
from raycache.actors.handles import bind, in_group
from raycache.actors.intake import Intake
from raycache.actors.leases import WAITERS, Leases
from raycache.actors.metrics import ShardMetrics
from raycache.actors.placement import Placement
from raycache.actors.reads import Reads
from raycache.actors.references import StoredRef, reply_for, sent_size, stored_hex
from raycache.actors.resizing import Migration, Move
from raycache.actors.subscribers import POLLERS, Subscribers
from raycache.core import protocol
from raycache.core.config import CacheConfig
from raycache.core.libraries import preload_in_background
from raycache.core.migration import Parcel
from raycache.core.protocol import (
    Code,
    KeyRequest,
    LookupReply,
    Notice,
    Stamp,
    WireReply,
    unpack_request,
)
from raycache.core.ring import Ring
from raycache.core.singleflight import SingleFlight
from raycache.core.stats import ShardCounters, ShardStats
from raycache.core.store import Entry, Store


class Shard:
    """One shard of a cache. Created by the router; not meant to be used directly.

    It builds its parts and wires them to Ray: the store, the flights in progress, its
    custody of large values in the vault, its place in the ring, its reads, its leases,
    and its durable tier. Each method unpacks a request, turns away a caller with an older ring,
    and hands the work to the part it concerns.
    """

    def __init__(self, cache: str, member: str, config: CacheConfig, ring: Ring) -> None:
        self._cache = cache
        self._store = Store(config.shard_capacity(len(ring)), policy=config.policy)
        self._flights: SingleFlight[ray.ObjectRef[Any]] = SingleFlight()
        self._counts = ShardCounters()
        self._custody = Custody(cache, member, self._store, self._flights)
        take_large = self._custody.take_large
        self._migration = Migration(self._store, member, take_large, self._counts)
        parts = (self._store, self._flights, self._migration)
        release = self._custody.release_unheld
        self._placement = Placement(member, ring, parts, self._counts, release)
        self._durable = Durable(cache, config, self._placement.owns, len(ring))
        self._subscribers = Subscribers()
        kept = (self._migration, self._durable, self._subscribers)
        self._intake = Intake(self._store, self._custody, kept, self._counts, config.ttl)
        put = self._intake.put
        self._computations = Computations(
            self._flights, self._custody, self._counts, put, home=config.elastic
        )
        join = self._computations.join
        self._leases = Leases(self._store, self._flights, self._counts, put, join)
        storage_key = None if config.storage is None else config.storage.key
        unpersisted = functools.partial(put, persist=False)
        recall = Recall(self._durable, self._custody, unpersisted, storage_key)
        self._reads = Reads(self._store, self._custody, recall, self._computations)
        self._node = ray.get_runtime_context().get_node_id()
        self._custody.restore(put)  # after a crash: the large entries it held
        ShardMetrics(cache, member).start(self.stats)
        preload_in_background()

    # -- reads -------------------------------------------------------------------------

    def get(self, request: bytes) -> WireReply:
        """Return a HIT, REF or MISS reply for the key asked for.

        ``request`` is :func:`~raycache.core.protocol.pack_key_request` of the caller's
        epoch and one digest, as are the requests of every method below that takes one.
        """
        epoch, digest, _ = KeyRequest.unpack(request)
        return self._admit(epoch, digest) or self._reads.reply(digest)

    def get_many(self, request: bytes) -> WireReply:
        """Return OK with :class:`~raycache.core.protocol.Columns`: a reply per digest, in order."""
        return self._get_many(request)[0]

    def read(self, request: bytes, subscriber: bytes) -> tuple[WireReply, Stamp]:
        """Answer :meth:`get_many`, tracking the keys found for ``subscriber``, and stamped."""
        wire, digests, entries = self._get_many(request)
        return wire, self._subscribers.stamp(subscriber, digests, entries)

    @in_group(POLLERS)
    def poll(self, subscriber: bytes, hits: int, held: int, wait: bool) -> Notice:
        """Return the copies ``subscriber`` must drop, waiting for news if ``wait``.

        ``hits`` and ``held`` are its near-cache hits since its last poll and the bytes
        it holds of this shard's values, for the stats.
        """
        return self._subscribers.poll(subscriber, hits, held, wait=wait)

    def contains(self, request: bytes) -> WireReply:
        """Return OK with whether the key is present, without counting a hit or a miss."""
        epoch, digest, _ = KeyRequest.unpack(request)
        if (stale := self._admit(epoch, digest)) is not None:
            return stale
        return protocol.ok(self._reads.present(digest))

    # -- writes ------------------------------------------------------------------------

    def put_many(
        self, request: bytes, values: list[Any], ttl: float | None, tags: tuple[str, ...]
    ) -> WireReply:
        """Store a value per digest of ``request`` (one for one key).

        Return OK, STALE, or the first TOO_LARGE, with ``(size, capacity)``.
        """
        epoch, digests = unpack_request(request)
        if (stale := self._admit(epoch)) is not None:
            return stale
        sizes = [sent_size(value) for value in values]
        return self._intake.put_many(digests, values, sizes, ttl, tags)

    def delete_many(self, request: bytes) -> WireReply:
        """Remove the entries, or forget the computations, of every digest of ``request``.

        Return OK with how many there were (a request of one digest deletes one key).
        """
        epoch, digests = unpack_request(request)
        if (stale := self._admit(epoch, *digests)) is not None:
            return stale
        deleted = sum(map(self._remove, digests))
        self._custody.release_unheld(digests)
        return protocol.ok(deleted)

    def invalidate_tag(self, tag: str) -> int:
        """Remove every entry carrying ``tag``, and forget such computations; return how many.

        A computation in flight would otherwise land after the invalidation, with a value
        computed from what the invalidation meant to discard.
        """
        self._migration.drop_tag(tag)
        computing = self._flights.forget_tagged(tag)
        removed = set(self._store.invalidate_tag(tag))
        self._subscribers.invalidate([as_digest(key) for key in removed])
        self._custody.release_unheld()
        # A key's file outlives its entry in memory: the larger count is the truer one.
        files = self._durable.invalidate_tag(tag, self._placement.owns)
        return max(len(removed.union(computing)), files)

    def clear(self) -> int:
        """Remove every entry and forget pending computations; return how many entries."""
        self._migration.clear()
        self._flights.clear()
        count = self._store.clear()
        self._subscribers.flush()
        self._custody.release_unheld()
        return max(count, self._durable.clear(self._placement.owns))

    def flush(self) -> None:
        """Return once every write to storage queued so far is done."""
        self._durable.flush()

    # -- single-flight computation -------------------------------------------------------

    def lookup(self, request: bytes) -> Any:
        """Like :meth:`get`, but a computation in flight answers PENDING with its reference.

        An inline hit is the bare value, so that the call's reference is the value's; any
        other answer is a :class:`~raycache.core.protocol.LookupReply`. A hit older than
        the request's refresh age is served, and its first caller elected to :meth:`refresh`.
        """
        epoch, digest, refresh_after = KeyRequest.unpack(request)
        if (stale := self._admit(epoch, digest)) is not None:
            return LookupReply(stale)
        entry = self._reads.entry(digest)
        if entry is None:
            return LookupReply(self._computations.join(digest))
        if refresh_after is not None and self._flights.elect(
            digest, entry.age(time.monotonic()), refresh_after
        ):
            return LookupReply(protocol.flagged(reply_for(entry), protocol.Flag.REFRESH))
        if isinstance(entry.value, StoredRef):
            return LookupReply(protocol.ref(entry.value.ref))
        return entry.value

    def compute(self, request: bytes, call: Call) -> WireReply:
        """Return the value asked for, starting ``call`` on a miss.

        Concurrent callers of a missing key all receive the reference of one computation,
        which this shard submitted and therefore owns.
        """
        epoch, digest, _ = KeyRequest.unpack(request)
        if (stale := self._admit(epoch, digest)) is not None:
            return stale
        # The caller's lookup already counted this request's miss: peek, don't count again.
        entry = self._store.peek(digest)
        if entry is not None:
            return reply_for(entry)
        joined = self._computations.join(digest)
        if protocol.code_of(joined) is not Code.MISS:
            return joined
        try:
            return protocol.in_flight(
                Code.COMPUTING, self._computations.start(digest, call, self._report)
            )
        except RayError:
            return protocol.miss()  # the vault could not start it: the caller runs it itself

    def refresh(self, request: bytes, call: Call) -> None:
        """Recompute a stale entry in the background; it is served until the new value lands."""
        epoch, digest, _ = KeyRequest.unpack(request)
        if self._admit(epoch) is None and digest not in self._flights:
            with contextlib.suppress(RayError):  # the stale value is served meanwhile
                self._computations.start(digest, call, self._report)
                self._counts.refreshes += 1

    def tag_summary(self, tag: str) -> tuple[int, int]:
        """Return how many live entries carry ``tag`` and their bytes."""
        entries = self._store.tagged(tag)
        return len(entries), sum(entry.size for entry in entries)

    def computed(self, digest: bytes, token: int, outcome: Computed | None) -> None:
        """Record the outcome of computation ``token``, which its task reports; None: it failed."""
        self._computations.record(digest, token, outcome)

    def report_lost(self, digest: bytes, ref_hex: str) -> bool:
        """Drop the entry under ``digest`` if it still holds the lost object ``ref_hex``."""
        flight = self._flights.get(digest)
        if flight is not None and flight.handle is not None and flight.handle.hex() == ref_hex:
            self._flights.forget(digest)
        else:
            entry = self._store.peek(digest)
            if entry is None or stored_hex(entry) != ref_hex:
                return False
            self._store.delete(digest)
            self._subscribers.invalidate((digest,))
        self._custody.release_unheld((digest,))
        self._counts.lost += 1
        return True

    # -- leases ----------------------------------------------------------------------------

    def lease(
        self, request: bytes, ttl: float | None, tags: tuple[str, ...], lease_s: float
    ) -> WireReply:
        """Grant a lease on a missing key, or say how to get its value: :meth:`Leases.grant`."""
        epoch, digest, _ = KeyRequest.unpack(request)
        if (stale := self._admit(epoch, digest)) is not None:
            return stale
        return self._leases.grant(digest, ttl, tags, lease_s)

    @in_group(WAITERS)
    def wait(self, request: bytes, token: int, timeout_s: float) -> WireReply:
        """Block, on a thread of its own, until lease ``token`` ends: :meth:`Leases.wait`."""
        return self._leases.wait(KeyRequest.unpack(request).digest, token, timeout_s)

    def lease_many(
        self, request: bytes, ttl: float | None, tags: tuple[str, ...], lease_s: float
    ) -> WireReply:
        """Answer :meth:`lease` for every digest of ``request``: OK with ``Columns``."""
        epoch, digests = unpack_request(request)
        if (stale := self._admit(epoch, *digests)) is not None:
            return stale
        return protocol.columns([self._leases.grant(d, ttl, tags, lease_s) for d in digests])

    def renew_many(self, request: bytes, tokens: list[int], lease_s: float) -> None:
        """Extend the leases ``tokens``, one per digest of ``request`` (one for one key)."""
        self._leases.renew_many(unpack_request(request)[1], tokens, lease_s)

    def fulfil_many(
        self, request: bytes, tokens: list[int], values: list[Any], cost: float
    ) -> WireReply:
        """Store the values leases ``tokens`` computed; OK, or the first TOO_LARGE."""
        return self._leases.fulfil_many(unpack_request(request)[1], tokens, values, cost)

    def fail_many(self, request: bytes, tokens: list[int], error: bytes) -> WireReply:
        """End the leases ``tokens`` with the pickled exception their computation raised."""
        self._leases.fail_many(unpack_request(request)[1], tokens, error)
        return protocol.ok()

    # -- placement and stats -------------------------------------------------------------

    def set_ring(self, ring: Ring, capacity: int, move: Move | None = None) -> int:
        """Adopt a newer ring, as :meth:`Placement.set_ring`, once queued writes to storage landed.

        A moved key's new owner may write its file next: the old owner's must be first.
        Then the durable tier learns which files are this shard's now.
        """
        self._durable.flush()
        dropped = self._placement.set_ring(ring, capacity, move)
        self._subscribers.flush()  # copies of keys that moved must not outlive the move
        self._durable.rescan(len(ring))
        return dropped

    def hand_over(self) -> list[Parcel]:
        """Give up a batch of the entries this shard no longer owns, for their new owners."""
        return self._placement.hand_over()

    def give(self, digests: list[bytes]) -> list[Parcel]:
        """Give up the entries of ``digests`` that this shard holds but no longer owns."""
        return self._placement.give(digests)

    def receive(self, parcels: list[Parcel], epoch: int) -> int:
        """Store the entries a resize to the ring of ``epoch`` moved here; return how many."""
        return self._migration.land(parcels, self._intake.put, epoch)

    def relocate(self, nodes: list[str], budget: int) -> int:
        """Copy here up to ``budget`` bytes of values held only on ``nodes``; count them."""
        unpersisted = functools.partial(self._intake.put, persist=False)
        return self._custody.relocate(set(nodes), budget, unpersisted, self._counts)

    def count_lost(self, entries: int, size: int) -> None:
        """Count ``entries`` (``size`` bytes) that a draining shard still held at its deadline."""
        self._counts.evacuation_lost += entries
        self._counts.evacuation_lost_bytes += size

    def stats(self) -> ShardStats:
        """Return this shard's counters, sizes and placement as one row."""
        place = (self._placement.member, self._node, self._placement.ring.epoch)
        storage, dropped = self._durable.stats()
        pending = len(self._flights)
        row = ShardStats.of(place, self._store.stats(), self._counts, pending, storage, dropped)
        return self._subscribers.add_stats(row)

    def ping(self) -> str:
        """Return this shard's ring member id; used to wait until the shard is up."""
        return self._placement.member

    # -- internals ---------------------------------------------------------------------

    @functools.cached_property
    def _report(self) -> Report:
        """Where this shard's computations report how they ended: :meth:`computed`."""
        me: ActorHandle[Shard] = ray.get_runtime_context().current_actor
        return bind(me, Shard.computed)

    def _admit(self, epoch: int, *digests: bytes) -> WireReply | None:
        """Return STALE to a caller whose ring is older; else None, once ``digests`` are here.

        A key a resize moves here may not have arrived yet: it is fetched from its
        previous owner first. A caller whose ring is newer means this shard restarted
        after a membership change: it fetches the router's ring.
        """
        if epoch > self._placement.ring.epoch:
            router = ray.get_actor(router_name(self._cache), namespace=NAMESPACE)
            self.set_ring(*ray.get(router.assignment.remote()))
        if epoch < self._placement.ring.epoch:
            return self._placement.stale()
        self._migration.arrive(digests, self._intake.put)
        return None

    def _get_many(self, request: bytes) -> tuple[WireReply, list[bytes], list[Entry | None]]:
        """Answer :meth:`get_many`; return the answer, the digests and the entries found."""
        epoch, digests = unpack_request(request)
        if (stale := self._admit(epoch, *digests)) is not None:
            return stale, [], []
        wire, entries = self._reads.many(digests)
        return wire, digests, entries

    def _remove(self, digest: bytes) -> bool:
        """Remove the key's entry, computation and file; return whether there was any."""
        self._migration.supersede(digest)
        computing = self._flights.forget(digest)
        present = self._store.delete(digest)
        self._subscribers.invalidate((digest,))
        return bool(self._durable.delete(digest) or present or computing)
