"""The shard actor: one slice of a cache, a thin wrapper over a :class:`~raycache.core.store.Store`.

A shard keeps small values in its own heap and returns them inline. It keeps large values
as ObjectRefs that it owns, because it did the ``ray.put`` or submitted the task itself,
and on a hit it returns them nested (``[ref]``) so that Ray hands the reader a reference
instead of a copy. Every request carries the caller's ring epoch; a caller whose ring is
older than the shard's gets :data:`STALE` back and refreshes its ring before retrying.
"""

from __future__ import annotations

import itertools
import math
import struct
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnschedulableError, RayActorError

from raycache.actors.compute import INLINE_LIMIT, Call, Settlement, submit
from raycache.actors.metrics import ShardMetrics
from raycache.core.config import CacheConfig
from raycache.core.hotkeys import Heat
from raycache.core.keys import DIGEST_SIZE, key_point
from raycache.core.libraries import preload_in_background
from raycache.core.naming import NAMESPACE, router_name
from raycache.core.ring import Ring
from raycache.core.sizing import size_of
from raycache.core.store import Entry, Store
from raycache.errors import EntryTooLargeError

HIT, REF, MISS, STALE, TOO_LARGE, OK, PENDING, COMPUTING, INLINE = range(9)
"""Reply codes: every shard method that takes a request answers ``[code, payload]``.

PENDING is REF for a computation in flight that the caller joined; COMPUTING is REF for
one that the caller's request started. INLINE is how a client records a bare hit from
:meth:`Shard.lookup`: ``[INLINE, value, reference to the value]``.
"""

REFRESH_ELECTION_S = 30.0
"""How long a caller elected to refresh a stale entry has to send the refresh."""

_EPOCH = struct.Struct(">Q")
_AGE = struct.Struct(">d")

Reply = list[Any]
"""A shard's answer, ``[code, payload]``: a list, because Ray sends lists of plain
values through its fast msgpack path and tuples through pickle."""

SHARD_GONE = (ActorDiedError, ActorUnschedulableError)
"""Errors meaning a shard is dead for good: its node is gone, or a resize removed it."""

SHARD_DOWN = (RayActorError, ActorUnschedulableError)
"""Errors meaning a shard did not answer: gone, or restarting under the same handle."""


class LookupReply(list):  # type: ignore[type-arg]
    """Any answer of :meth:`Shard.lookup` other than a bare hit value.

    A private type, so no value a user caches can be mistaken for one.
    """


class StoredRef:
    """A large value held in Ray's object store and owned by this shard."""

    __slots__ = ("ref",)

    def __init__(self, ref: ray.ObjectRef[Any]) -> None:
        self.ref = ref


@dataclass
class _Pending:
    """A computation this shard submitted and whose result has not reported back yet."""

    token: int
    ref: ray.ObjectRef[Any]
    ttl: float | None
    tags: tuple[str, ...]


class Shard:
    """One shard of a cache. Created by the router; not meant to be used directly."""

    def __init__(self, cache: str, member: str, config: CacheConfig, ring: Ring) -> None:
        self._cache = cache
        self._member = member
        self._default_ttl = config.ttl
        self._store = Store(config.shard_capacity(len(ring)), policy=config.policy)
        self._pending: dict[bytes, _Pending] = {}
        self._tokens = itertools.count()
        self._elected: dict[bytes, float] = {}
        self._counters = {
            "lost": 0, "merged": 0, "computes": 0, "refreshes": 0, "rejected": 0, "stale": 0,
        }  # fmt: skip
        self._ring = ring
        self._heat = Heat()
        ShardMetrics(cache, member).start(self._store.stats)
        preload_in_background()

    # -- reads -------------------------------------------------------------------------

    def get(self, request: bytes) -> Reply:
        """Return the entry asked for as ``[HIT, value]``, ``[REF, [ref]]`` or ``[MISS, None]``.

        ``request`` is :func:`pack_request` of the caller's epoch and one digest, as are
        the requests of every method below that takes one. A third element ``True``
        marks a hot key, which a client with a near cache keeps for a short while.
        """
        epoch, digest = _unpack_one(request)
        if self._is_stale(epoch):
            return self._stale()
        reply = _reply(self._store.get(digest))
        if reply[0] == MISS:
            return self._finished_computation(digest) or reply if digest in self._pending else reply
        if self._heat.hit(digest):
            reply.append(True)  # hot: the caller may keep it for a moment
        return reply

    def get_many(self, request: bytes) -> Reply:
        """Return ``[OK, codes, payloads]``: a reply code and payload per digest, in order."""
        epoch, digests = unpack_request(request)
        if self._is_stale(epoch):
            return self._stale()
        replies = [_reply(entry) for entry in map(self._store.get, digests)]
        # Columns, a code byte per digest and then the payloads, are cheap to send and
        # let the client take an all-hits answer without looking at each code.
        return [OK, bytes(reply[0] for reply in replies), [reply[1] for reply in replies]]

    def contains(self, request: bytes) -> Reply:
        """Return ``[OK, present]`` without counting a hit or a miss."""
        epoch, digest = _unpack_one(request)
        if self._is_stale(epoch):
            return self._stale()
        if digest in self._store:
            return [OK, True]
        return [OK, digest in self._pending and self._finished_computation(digest) is not None]

    # -- writes ------------------------------------------------------------------------

    def put(self, request: bytes, value: Any, ttl: float | None, tags: tuple[str, ...]) -> Reply:
        """Store ``value``; return OK, STALE, or ``[TOO_LARGE, (size, capacity)]``."""
        epoch, digest = _unpack_one(request)
        if self._is_stale(epoch):
            return self._stale()
        return self._put(digest, value, size_of(value), ttl, tags)

    def put_many(
        self, request: bytes, values: list[Any], ttl: float | None, tags: tuple[str, ...]
    ) -> Reply:
        """Store a value per digest of ``request``; return OK or the first TOO_LARGE reply."""
        epoch, digests = unpack_request(request)
        if self._is_stale(epoch):
            return self._stale()
        replies = [
            self._put(digest, value, size_of(value), ttl, tags)
            for digest, value in zip(digests, values, strict=True)
        ]
        return next((reply for reply in replies if reply[0] == TOO_LARGE), [OK, None])

    def delete(self, request: bytes) -> Reply:
        """Remove the entry asked for, or forget its computation; return ``[OK, existed]``."""
        epoch, digest = _unpack_one(request)
        if self._is_stale(epoch):
            return self._stale()
        computing = self._pending.pop(digest, None) is not None
        return [OK, self._store.delete(digest) or computing]

    def invalidate_tag(self, tag: str) -> int:
        """Remove every entry carrying ``tag``, and forget such computations; return how many.

        A computation in flight would otherwise land after the invalidation, with a value
        computed from what the invalidation meant to discard.
        """
        computing = [digest for digest, pending in self._pending.items() if tag in pending.tags]
        for digest in computing:
            del self._pending[digest]
        removed = set(self._store.invalidate_tag(tag))
        return len(removed.union(computing))

    def clear(self) -> int:
        """Remove every entry and forget pending computations; return how many entries."""
        self._pending.clear()
        return self._store.clear()

    # -- single-flight computation -------------------------------------------------------

    def lookup(self, request: bytes) -> Any:
        """Like :meth:`get`, but a computation in flight answers ``[PENDING, [its ref]]``.

        A plain inline hit is answered with the value itself, bare, so that the caller's
        reference to this call's result is a reference to the value; every other answer
        is a :class:`LookupReply`. A request may carry a refresh age after the digest
        (see :func:`pack_key_request`): a hit older than that is still served, and the
        first caller to see it is elected, by a third element ``True``, to send
        :meth:`refresh`.
        """
        reply = self._lookup(request)
        if reply[0] == HIT and len(reply) == 2:
            return reply[1]
        return LookupReply(reply)

    def _lookup(self, request: bytes) -> Reply:
        epoch, digest, refresh_after = _unpack_lookup(request)
        if self._is_stale(epoch):
            return self._stale()
        entry = self._store.get(digest)
        if entry is None:
            return self._join(digest)
        reply = _reply(entry)
        if refresh_after is not None and self._elect_refresher(entry, refresh_after):
            reply.append(True)
        return reply

    def compute(self, request: bytes, call: Call) -> Reply:
        """Return the value asked for, starting ``job`` on the arguments if need be.

        Concurrent callers of a missing key all receive the reference of one computation,
        which this shard submitted and therefore owns.
        """
        epoch, digest = _unpack_one(request)
        if self._is_stale(epoch):
            return self._stale()
        # The caller's lookup already counted this request's miss: peek, don't count again.
        entry = self._store.peek(digest)
        if entry is not None:
            return _reply(entry)
        joined = self._join(digest)
        if joined[0] != MISS:
            return joined
        return [COMPUTING, [self._start(digest, call)]]

    def refresh(self, request: bytes, call: Call) -> None:
        """Recompute a stale entry in the background; it is served until the new value lands."""
        epoch, digest = _unpack_one(request)
        if not self._is_stale(epoch) and digest not in self._pending:
            self._start(digest, call)
            self._counters["refreshes"] += 1

    def tag_summary(self, tag: str) -> tuple[int, int]:
        """Return how many live entries carry ``tag`` and their bytes."""
        entries = self._store.tagged(tag)
        return len(entries), sum(entry.size for entry in entries)

    def _start(self, digest: bytes, call: Call) -> ray.ObjectRef[Any]:
        token = next(self._tokens)
        me = ray.get_runtime_context().current_actor
        ref = submit(call, me, digest, token)
        self._pending[digest] = _Pending(token, ref, call.ttl, call.tags)
        self._counters["computes"] += 1
        return ref

    def _join(self, digest: bytes) -> Reply:
        pending = self._pending.get(digest)
        if pending is None:
            return [MISS, None]
        finished = self._finished_computation(digest)
        if finished is not None:
            return finished  # done, only not yet reported: a hit
        self._counters["merged"] += 1
        return [PENDING, [pending.ref]]

    def _elect_refresher(self, entry: Entry, refresh_after: float) -> bool:
        now = time.monotonic()
        digest = _as_bytes(entry.key)
        if entry.age(now) < refresh_after or digest in self._pending:
            return False
        if now - self._elected.get(digest, -math.inf) < REFRESH_ELECTION_S:
            return False
        self._elected[digest] = now
        return True

    def _finished_computation(self, digest: bytes) -> Reply | None:
        # A computation tells its shard that it finished by a message that may still be
        # in flight when its caller, already holding the value, reads the key back.
        ref = self._pending[digest].ref
        ready, _ = ray.wait([ref], timeout=0, fetch_local=False)
        return [REF, [ref]] if ready else None

    def settle(self, digest: bytes, token: int, settlement: Settlement | None) -> None:
        """Record the outcome of computation ``token``; None means it failed."""
        pending = self._pending.get(digest)
        if pending is None or pending.token != token:
            return  # deleted, cleared or superseded while it ran
        del self._pending[digest]
        self._elected.pop(digest, None)
        if settlement is None:
            return
        value = settlement.inline_value if settlement.inline else StoredRef(pending.ref)
        self._put(digest, value, settlement.size, pending.ttl, pending.tags, settlement.seconds)

    def report_lost(self, digest: bytes, ref_hex: str) -> bool:
        """Drop the entry under ``digest`` if it still holds the lost object ``ref_hex``."""
        pending = self._pending.get(digest)
        if pending is not None and pending.ref.hex() == ref_hex:
            del self._pending[digest]
        else:
            entry = self._store.peek(digest)
            if entry is None or _stored_ref_hex(entry) != ref_hex:
                return False
            self._store.delete(digest)
        self._counters["lost"] += 1
        return True

    # -- membership and stats ----------------------------------------------------------------

    def set_ring(self, ring: Ring, capacity: int) -> int:
        """Adopt a newer ring and byte budget; drop the keys it no longer owns; return how many."""
        if ring.epoch < self._ring.epoch:
            return 0
        self._ring = ring
        self._store.resize(capacity)
        live = self._store.keys()
        moved = [key for key in live if ring.owner_at(key_point(_as_bytes(key))) != self._member]
        for key in moved:
            self._store.delete(key)
        for digest in [d for d in self._pending if ring.owner_at(key_point(d)) != self._member]:
            del self._pending[digest]
        return len(moved)

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
            "pending": len(self._pending),
            **self._counters,
        }

    def ping(self) -> str:
        """Return this shard's ring member id; used to wait until the shard is up."""
        return self._member

    # -- internals ---------------------------------------------------------------------

    def _put(
        self,
        digest: bytes,
        value: Any,
        size: int,
        ttl: float | None,
        tags: tuple[str, ...],
        cost: float = 1.0,
    ) -> Reply:
        if size > self._store.capacity:
            self._counters["rejected"] += 1
            return [TOO_LARGE, (size, self._store.capacity)]
        if size >= INLINE_LIMIT and not isinstance(value, StoredRef):
            value = StoredRef(ray.put(value))  # this shard now owns the only copy it serves
        ttl = self._default_ttl if ttl is None else ttl
        try:
            self._store.put(digest, value, size, ttl=ttl, tags=tags, cost=cost)
        except EntryTooLargeError:  # pragma: no cover - checked above; kept for safety
            return [TOO_LARGE, (size, self._store.capacity)]
        return [OK, None]

    def _is_stale(self, epoch: int) -> bool:
        if epoch == self._ring.epoch:
            return False
        if epoch > self._ring.epoch:
            # Only a shard restarted after a membership change can lag its clients.
            self._sync_ring()
        return epoch < self._ring.epoch

    def _sync_ring(self) -> None:
        router = ray.get_actor(router_name(self._cache), namespace=NAMESPACE)
        self.set_ring(*ray.get(router.assignment.remote()))

    def _stale(self) -> Reply:
        self._counters["stale"] += 1
        return [STALE, self._ring.epoch]


def pack_request(epoch: int, digests: bytes) -> bytes:
    """Pack a ring epoch and one or more concatenated key digests into one argument.

    One bytes argument, rather than several, saves Ray a serialisation per argument,
    which is a sizeable share of a small get's round trip.

    >>> unpack_request(pack_request(7, b"a" * 16 + b"b" * 16))
    (7, [b'aaaaaaaaaaaaaaaa', b'bbbbbbbbbbbbbbbb'])
    """
    return _EPOCH.pack(epoch) + digests


def unpack_request(request: bytes) -> tuple[int, list[bytes]]:
    """Return the epoch and digests packed by :func:`pack_request`."""
    size = DIGEST_SIZE
    digests = [request[start : start + size] for start in range(_EPOCH.size, len(request), size)]
    return _EPOCH.unpack_from(request)[0], digests


def pack_key_request(epoch: int, digest: bytes, refresh_after: float | None = None) -> bytes:
    """Pack a request about one key: its digest, and for :meth:`Shard.lookup` a refresh age.

    >>> _unpack_lookup(pack_key_request(3, b"d" * 16, 2.5))
    (3, b'dddddddddddddddd', 2.5)
    >>> _unpack_lookup(pack_key_request(3, b"d" * 16))
    (3, b'dddddddddddddddd', None)
    """
    request = pack_request(epoch, digest)
    return request if refresh_after is None else request + _AGE.pack(refresh_after)


def _unpack_one(request: bytes) -> tuple[int, bytes]:
    return _EPOCH.unpack_from(request)[0], request[_EPOCH.size : _EPOCH.size + DIGEST_SIZE]


def _unpack_lookup(request: bytes) -> tuple[int, bytes, float | None]:
    epoch, digest = _unpack_one(request)
    aged = len(request) > _EPOCH.size + DIGEST_SIZE
    return epoch, digest, _AGE.unpack_from(request, _EPOCH.size + DIGEST_SIZE)[0] if aged else None


def _reply(entry: Entry | None) -> Reply:
    if entry is None:
        return [MISS, None]
    value = entry.value
    if isinstance(value, StoredRef):
        return [REF, [value.ref]]
    return [HIT, value]


def _stored_ref_hex(entry: Entry) -> str | None:
    value = entry.value
    return str(value.ref.hex()) if isinstance(value, StoredRef) else None


def _as_bytes(key: Hashable) -> bytes:
    assert isinstance(key, bytes)
    return key
