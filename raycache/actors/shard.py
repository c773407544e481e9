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
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import ray
from ray.exceptions import RayError

from raycache.actors.compute import Call, Settlement
from raycache.actors.custody import as_digest
from raycache.actors.durable import Durable
from raycache.actors.leases import Leases
from raycache.actors.membership import Member
from raycache.actors.metrics import ShardMetrics
from raycache.actors.references import INLINE_LIMIT, StoredRef, reply_for, sent_size, stored_hex
from raycache.actors.resizing import Move
from raycache.core import protocol
from raycache.core.config import CacheConfig
from raycache.core.hotkeys import Heat
from raycache.core.libraries import preload_in_background
from raycache.core.protocol import Code, KeyRequest, LookupReply, WireReply, unpack_request
from raycache.core.ring import Ring
from raycache.core.singleflight import SingleFlight
from raycache.core.storage.file_entry import FileEntry
from raycache.core.store import Entry, Store


class Shard(Leases, Member):
    """One shard of a cache. Created by the router; not meant to be used directly."""

    def __init__(self, cache: str, member: str, config: CacheConfig, ring: Ring) -> None:
        store = Store(config.shard_capacity(len(ring)), policy=config.policy)
        super().__init__(cache, member, ring, store, SingleFlight(), self._put)
        self._default_ttl = config.ttl
        self._counters = {
            "lost": 0, "merged": 0, "computes": 0, "leases": 0, "refreshes": 0, "rejected": 0,
        }  # fmt: skip
        self._heat = Heat()
        self._durable = Durable(cache, config, self._owns, len(ring))
        self._storage_key = None if config.storage is None else config.storage.key
        self._custody.restore(self._put)  # after a crash: the large entries it held
        ShardMetrics(cache, member).start(self._counts)
        preload_in_background()

    # -- reads -------------------------------------------------------------------------

    def get(self, request: bytes) -> WireReply:
        """Return a HIT, REF or MISS reply for the key asked for; HOT flags a hot key.

        ``request`` is :func:`~raycache.core.protocol.pack_key_request` of the caller's
        epoch and one digest, as are the requests of every method below that takes one.
        """
        epoch, digest, _ = KeyRequest.unpack(request)
        if self._is_stale(epoch, digest):
            return self._stale()
        entry = self._entry(digest)
        if entry is None:
            return self._finished_computation(digest) or protocol.miss()
        # A hot key's reply says so: the caller may keep its value for a moment.
        return reply_for(entry, hot=self._heat.hit(digest))

    def get_many(self, request: bytes) -> WireReply:
        """Return OK with ``(codes, payloads)``: a reply code and payload per digest, in order."""
        epoch, digests = unpack_request(request)
        if self._is_stale(epoch, *digests):
            return self._stale()
        replies = [reply_for(entry) for entry in map(self._entry, digests)]
        # Columns, a code byte per digest and then the payloads, are cheap to send and
        # let the client take an all-hits answer without looking at each code. A list,
        # not a tuple, so that Ray sends it through msgpack rather than pickle.
        codes = bytes(reply[0] for reply in replies)
        return protocol.ok([codes, [reply[1] for reply in replies]])

    def contains(self, request: bytes) -> WireReply:
        """Return OK with whether the key is present, without counting a hit or a miss."""
        epoch, digest, _ = KeyRequest.unpack(request)
        if self._is_stale(epoch, digest):
            return self._stale()
        present = (
            self._entry(digest, count=False) is not None
            or self._finished_computation(digest) is not None
        )
        return protocol.ok(present)

    # -- writes ------------------------------------------------------------------------

    def put(
        self, request: bytes, value: Any, ttl: float | None, tags: tuple[str, ...]
    ) -> WireReply:
        """Store ``value``; return OK, STALE, or TOO_LARGE with ``(size, capacity)``."""
        epoch, digest, _ = KeyRequest.unpack(request)
        if self._is_stale(epoch):
            return self._stale()
        return self._put(digest, value, sent_size(value), ttl, tags)

    def put_many(
        self, request: bytes, values: list[Any], ttl: float | None, tags: tuple[str, ...]
    ) -> WireReply:
        """Store a value per digest of ``request``; return OK or the first TOO_LARGE reply."""
        epoch, digests = unpack_request(request)
        if self._is_stale(epoch):
            return self._stale()
        replies = [
            self._put(digest, value, sent_size(value), ttl, tags)
            for digest, value in zip(digests, values, strict=True)
        ]
        return next((reply for reply in replies if reply[0] == Code.TOO_LARGE), protocol.ok())

    def delete(self, request: bytes) -> WireReply:
        """Remove the entry asked for, or forget its computation; return OK with whether."""
        epoch, digest, _ = KeyRequest.unpack(request)
        if self._is_stale(epoch, digest):
            return self._stale()
        self._migration.settle(digest)
        computing = self._flights.forget(digest)
        deleted = self._store.delete(digest)
        self._custody.tidy((digest,))
        return protocol.ok(self._durable.delete(digest) or deleted or computing)

    def invalidate_tag(self, tag: str) -> int:
        """Remove every entry carrying ``tag``, and forget such computations; return how many.

        A computation in flight would otherwise land after the invalidation, with a value
        computed from what the invalidation meant to discard.
        """
        self._migration.drop_tag(tag)
        computing = self._flights.forget_tagged(tag)
        removed = set(self._store.invalidate_tag(tag))
        self._custody.sweep()
        # A key's file outlives its entry in memory: the larger count is the truer one.
        return max(len(removed.union(computing)), self._durable.invalidate_tag(tag, self._owns))

    def clear(self) -> int:
        """Remove every entry and forget pending computations; return how many entries."""
        self._migration.clear()
        self._flights.clear()
        count = self._store.clear()
        self._custody.sweep()
        return max(count, self._durable.clear(self._owns))

    def flush(self) -> None:
        """Return once every write to storage queued so far is done."""
        self._durable.flush()

    # -- single-flight computation -------------------------------------------------------

    def lookup(self, request: bytes) -> Any:
        """Like :meth:`get`, but a computation in flight answers PENDING with its reference.

        A plain inline hit is answered with the value itself, bare, so that the caller's
        reference to this call's result is a reference to the value; every other answer
        is a :class:`~raycache.core.protocol.LookupReply`. A request may carry a refresh
        age: a hit older than that is still served, and the first caller to see it is
        elected, by the REFRESH flag, to send :meth:`refresh`.
        """
        epoch, digest, refresh_after = KeyRequest.unpack(request)
        if self._is_stale(epoch, digest):
            return LookupReply(self._stale())
        entry = self._entry(digest)
        if entry is None:
            return LookupReply(self._join(digest))
        if refresh_after is not None and self._flights.elect(
            digest, entry.age(time.monotonic()), refresh_after
        ):
            reply = reply_for(entry)
            reply[2] |= protocol.Flag.REFRESH.value
            return LookupReply(reply)
        if isinstance(entry.value, StoredRef):
            return LookupReply(protocol.ref(entry.value.ref))
        return entry.value

    def compute(self, request: bytes, call: Call) -> WireReply:
        """Return the value asked for, starting ``call`` on a miss.

        Concurrent callers of a missing key all receive the reference of one computation,
        which this shard submitted and therefore owns.
        """
        epoch, digest, _ = KeyRequest.unpack(request)
        if self._is_stale(epoch, digest):
            return self._stale()
        # The caller's lookup already counted this request's miss: peek, don't count again.
        entry = self._store.peek(digest)
        if entry is not None:
            return reply_for(entry)
        joined = self._join(digest)
        if joined[0] != Code.MISS:
            return joined
        try:
            return protocol.in_flight(Code.COMPUTING, self._start(digest, call))
        except RayError:
            return protocol.miss()  # the vault could not start it: the caller runs it itself

    def refresh(self, request: bytes, call: Call) -> None:
        """Recompute a stale entry in the background; it is served until the new value lands."""
        epoch, digest, _ = KeyRequest.unpack(request)
        if not self._is_stale(epoch) and digest not in self._flights:
            with contextlib.suppress(RayError):  # the stale value is served meanwhile
                self._start(digest, call)
                self._counters["refreshes"] += 1

    def tag_summary(self, tag: str) -> tuple[int, int]:
        """Return how many live entries carry ``tag`` and their bytes."""
        entries = self._store.tagged(tag)
        return len(entries), sum(entry.size for entry in entries)

    def _start(self, digest: bytes, call: Call) -> ray.ObjectRef[Any]:
        me = ray.get_runtime_context().current_actor
        self._counters["computes"] += 1
        launch = functools.partial(self._custody.submit, call, me, digest)
        return self._flights.start(digest, launch, ttl=call.ttl, tags=call.tags)

    def _join(self, digest: bytes) -> WireReply:
        """Join the key's flight: WAIT on a live lease, PENDING on a task; else MISS."""
        flight = self._flights.get(digest)
        if flight is None:
            return protocol.miss()
        if flight.is_lease:
            if self._flights.expired(flight):
                return protocol.miss()  # its holder stopped renewing: the next may lease
            self._counters["merged"] += 1
            return protocol.wait(flight.token)
        finished = self._finished_computation(digest)
        if finished is not None:
            return finished  # done, only not yet reported: a hit
        self._counters["merged"] += 1
        return protocol.in_flight(Code.PENDING, flight.handle)

    def _finished_computation(self, digest: bytes) -> WireReply | None:
        # A computation tells its shard that it finished by a message that may still be
        # in flight when its caller, already holding the value, reads the key back.
        flight = self._flights.get(digest)
        if flight is None or flight.handle is None:
            return None
        ready, _ = ray.wait([flight.handle], timeout=0, fetch_local=False)
        return protocol.ref(flight.handle) if ready else None

    def settle(self, digest: bytes, token: int, settlement: Settlement | None) -> None:
        """Record the outcome of computation ``token``; None means it failed."""
        flight = self._flights.settle(digest, token)
        if flight is None or flight.handle is None or settlement is None:
            self._custody.tidy((digest,))
            return  # deleted, cleared or superseded while it ran; or it failed
        value = settlement.inline_value if settlement.inline else StoredRef(flight.handle)
        self._put(digest, value, settlement.size, flight.ttl, flight.tags, settlement.seconds)

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
        self._custody.tidy((digest,))
        self._counters["lost"] += 1
        return True

    # -- membership and stats ----------------------------------------------------------------

    def set_ring(self, ring: Ring, capacity: int, move: Move | None = None) -> int:
        """Adopt a newer ring, as :meth:`Member.set_ring`, once queued writes to storage landed.

        A moved key's new owner may write its file next: the old owner's must be first.
        Then the durable tier learns which files are this shard's now.
        """
        self._durable.flush()
        dropped = super().set_ring(ring, capacity, move)
        self._durable.rescan(len(ring))
        return dropped

    def stats(self) -> dict[str, Any]:
        """Return this shard's counters, sizes and placement as one row."""
        stats = self._store.stats()
        return {
            "shard": self._member,
            "node": ray.get_runtime_context().get_node_id(),
            "epoch": self._ring.epoch,
            "hits": stats.hits,
            "misses": stats.misses,
            "evictions": stats.evictions,
            "expirations": stats.expirations,
            "entries": stats.entries,
            "bytes": stats.bytes,
            "capacity": stats.capacity,
            "pending": len(self._flights),
            **self._counters,
            "stale": self._stale_replies,
            **self._durable.stats(),
        }

    def _counts(self) -> dict[str, Any]:
        """Return the store's and the durable tier's counters, for the metrics thread."""
        return {**asdict(self._store.stats()), **self._durable.stats()}

    def ping(self) -> str:
        """Return this shard's ring member id; used to wait until the shard is up."""
        return self._member

    # -- internals ---------------------------------------------------------------------

    def _entry(self, digest: bytes, *, count: bool = True) -> Entry | None:
        """Return the key's entry from memory, else from storage (promoted into memory)."""
        entry = self._store.get(digest) if count else self._store.peek(digest)
        if entry is not None:
            return self._custody.serving(entry)
        restored = self._durable.read(digest, map_above=INLINE_LIMIT)
        if restored is None:
            return None
        value, size, ttl, tags, cost = restored
        served = value
        if isinstance(value, FileEntry):  # large, in a local file: readers map it themselves
            served = self._custody.promote(digest, value, self._storage_key)
            if served is None:
                return None
            value = served.copy
        self._put(digest, value, size, ttl, tags, cost, persist=False)  # large: to the vault
        # The policy may turn a restored value away; it is served all the same.
        return Entry(digest, served, size, cost, time.monotonic(), None, frozenset())

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
    ) -> WireReply:
        if size > self._store.capacity:
            self._counters["rejected"] += 1
            return protocol.too_large(size, self._store.capacity)
        if size >= INLINE_LIMIT and not isinstance(value, StoredRef):
            value = self._custody.keep(value)
            if value is None:
                return protocol.ok()  # its vault is restarting: uncached, as by a dead shard
        ttl = self._default_ttl if ttl is None else ttl
        self._migration.settle(digest)
        evicted = self._store.put(digest, value, size, ttl=ttl, tags=tags, cost=cost)
        self._custody.stored(digest, value)
        self._custody.tidy([digest, *(as_digest(entry.key) for entry in evicted)])
        if persist:
            self._durable.write(digest, _fetcher(value), size=size, ttl=ttl, tags=tags, cost=cost)
        return protocol.ok()


def _fetcher(value: Any) -> Callable[[], Any]:
    """Return how the storage writer gets ``value``: from the object store if it is there."""
    if isinstance(value, StoredRef):
        return lambda: ray.get(value.ref)
    return lambda: value
