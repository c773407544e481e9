"""The shard client: how every client-side operation reaches the shards.

This is raycache's one internal API between user-facing objects (:class:`~raycache.Cache`,
memoized functions) and the actors: one typed method per shard operation, each routed
to the shard that owns the key by :class:`~raycache.client.routing.Routing`, which turns
the cache's own faults into misses. A cached object that cannot be read is reported to
its shard and counted as a miss.

Replies come back as :class:`~raycache.core.protocol.Reply`, with named fields.

Every method that talks to the actors returns :mod:`~raycache.client.steps`: the blocking
:class:`~raycache.Cache` runs them with ``steps.run``, :class:`~raycache.AsyncCache`
awaits them with ``steps.run_async``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import ray
from ray.actor import ActorHandle
from ray.exceptions import ObjectLostError, RayActorError, WorkerCrashedError

from raycache.actors.cluster import SHARD_DOWN
from raycache.actors.compute import Call, Job
from raycache.actors.handles import call_remote
from raycache.actors.shard import Shard
from raycache.client.routing import Bound, Group, GroupSend, Ref, Routing, Send, T
from raycache.client.steps import Invoke, Steps, Wait
from raycache.core.protocol import (
    REFERENCES,
    Code,
    Columns,
    LookupReply,
    Reply,
    Stamp,
    pack_key_request,
)
from raycache.core.stats import ShardStats

logger = logging.getLogger(__name__)

CACHE_FAULTS = (RayActorError, ObjectLostError, WorkerCrashedError)
"""Errors of reading a cached object that mean the cache lost it, not that the user erred."""

Many = tuple[list[int], Columns]
"""The indices of the keys one shard owns, and its reply to each, as columns."""


class Tracked(NamedTuple):
    """One shard's answer to a tracked read: see :meth:`ShardClient.read`."""

    member: str
    indices: list[int]
    columns: Columns
    stamp: Stamp


class Absent:
    """Marks a value that could not be had from the cache."""


ABSENT = Absent()
"""The one :class:`Absent` value."""


class ShardClient(Routing):
    """A cache's shards, as seen from a client: one method per shard operation."""

    # -- the shard operations, one method each ---------------------------------------------

    def get(self, digest: bytes) -> Steps[Reply]:
        """Return the shard's HIT, REF or MISS reply for ``digest``."""
        return self._one(digest, lambda shard, request: call_remote(shard, Shard.get, request))

    def contains(self, digest: bytes) -> Steps[Reply]:
        """Return OK with whether ``digest`` is present, counting neither hit nor miss."""
        return self._one(digest, lambda shard, request: call_remote(shard, Shard.contains, request))

    def lookup(self, digest: bytes, refresh_after: float | None = None) -> Steps[Reply]:
        """Return :meth:`Shard.lookup`'s reply: a hit, a computation to join, or MISS."""
        send: Send = lambda shard, request: call_remote(shard, Shard.lookup, request)  # noqa: E731
        return self._one(digest, send, refresh_after=refresh_after, decode=_decode_lookup)

    def lease(
        self, digest: bytes, ttl: float | None, tags: tuple[str, ...], lease_s: float
    ) -> Steps[Reply]:
        """Ask for a lease on a missing key: LEASED, or how to get its value instead."""
        return self._one(
            digest,
            lambda shard, request: call_remote(shard, Shard.lease, request, ttl, tags, lease_s),
        )

    def wait(self, digest: bytes, token: int, timeout_s: float) -> Steps[Reply]:
        """Wait, unbounded by the client's timeout, for lease ``token`` to end."""
        return self._one(
            digest,
            lambda shard, request: call_remote(shard, Shard.wait, request, token, timeout_s),
            bound=Bound.NONE,
        )

    def put(
        self, digest: bytes, value: Any, ttl: float | None, tags: tuple[str, ...]
    ) -> Steps[Reply]:
        """Store ``value`` (as :func:`ship` sends it); OK, or TOO_LARGE.

        A request about one key is a batch of one: :meth:`Shard.put_many` takes it.
        """
        return self._one(
            digest,
            lambda shard, request: call_remote(shard, Shard.put_many, request, [value], ttl, tags),
            bound=Bound.NONE,
        )

    def delete(self, digest: bytes) -> Steps[Reply]:
        """Remove ``digest``; OK with whether there was anything to remove (0 or 1)."""
        send: Send = lambda shard, request: call_remote(shard, Shard.delete_many, request)  # noqa: E731
        return self._one(digest, send, bound=Bound.NONE)

    def compute(self, digest: bytes, call: Call) -> Steps[Reply]:
        """Return the value of ``digest``, having the shard start ``call`` on a miss."""
        return self._one(
            digest,
            lambda shard, request: call_remote(shard, Shard.compute, request, call),
            bound=Bound.START,
        )

    def get_many(self, digests: list[bytes]) -> Steps[list[Many]]:
        """Return, per shard that answered, the indices of its keys and their replies."""
        send: GroupSend = lambda shard, request, _: call_remote(shard, Shard.get_many, request)  # noqa: E731
        groups = yield from self.fan_out(digests, send, bound=Bound.READ)
        return _as_columns(groups)

    def read(self, digests: list[bytes], subscriber: bytes) -> Steps[list[Tracked]]:
        """:meth:`get_many` for a near cache: the keys found are tracked for ``subscriber``.

        Per shard that answered: its member, the indices of its keys, their replies, and
        the reply's stamp.
        """

        def send(shard: ActorHandle[Shard], request: bytes, _: list[int]) -> Ref:
            return cast(Ref, call_remote(shard, Shard.read, request, subscriber))

        groups = yield from self.fan_out(digests, send, bound=Bound.READ)
        return [
            Tracked(self.member_of(digests[indices[0]]), indices, Columns.of(reply), reply.stamp)
            for indices, reply in groups
            if reply.stamp is not None
        ]

    def values_many(self, digests: list[bytes]) -> Steps[dict[bytes, Any]]:
        """Return the value of every key of ``digests`` the cache holds, large ones fetched."""
        return (yield from self.collect(digests, (yield from self.get_many(digests))))

    def collect(
        self,
        digests: list[bytes],
        groups: list[Many],
        found: dict[bytes, Any] | None = None,
        refs: dict[bytes, ray.ObjectRef[Any]] | None = None,
    ) -> Steps[dict[bytes, Any]]:
        """Return the values that ``groups``, replies to a batch of ``digests``, stand for.

        Inline values are taken as they are and references fetched, together with any
        ``refs`` given. ``found`` holds values had already, which the answer includes.
        """
        found = {} if found is None else found
        refs = {} if refs is None else refs
        for indices, columns in groups:
            if columns.all_hits():
                found.update(zip([digests[i] for i in indices], columns.payloads, strict=True))
                continue
            for i, code, payload in zip(indices, *columns, strict=True):
                if code == Code.HIT:
                    found[digests[i]] = payload
                elif code == Code.REF:
                    refs[digests[i]] = payload[0]
        found.update((yield from self.fetch_many(refs)))
        return found

    def put_many(
        self, digests: list[bytes], values: list[Any], ttl: float | None, tags: tuple[str, ...]
    ) -> Steps[list[Group]]:
        """Store ``values`` (as :func:`ship` sends them) by ``digests``; a reply per shard."""

        def send(shard: ActorHandle[Shard], request: bytes, group: list[int]) -> Ref:
            shipped = [values[i] for i in group]
            return call_remote(shard, Shard.put_many, request, shipped, ttl, tags)

        return (yield from self.fan_out(digests, send, bound=Bound.NONE))

    def delete_many(self, digests: list[bytes]) -> Steps[int]:
        """Remove every key of ``digests``; return how many were present."""
        send: GroupSend = lambda shard, request, _: call_remote(shard, Shard.delete_many, request)  # noqa: E731
        groups = yield from self.fan_out(digests, send, bound=Bound.NONE)
        return sum(int(reply.payload) for _, reply in groups)

    def lease_many(
        self, digests: list[bytes], ttl: float | None, tags: tuple[str, ...], lease_s: float
    ) -> Steps[list[Many]]:
        """Ask for a lease on each missing key: per shard that answered, a reply per key."""

        def send(shard: ActorHandle[Shard], request: bytes, _: list[int]) -> Ref:
            return call_remote(shard, Shard.lease_many, request, ttl, tags, lease_s)

        groups = yield from self.fan_out(digests, send, bound=Bound.READ)
        return _as_columns(groups)

    def renew_many(self, digests: list[bytes], tokens: list[int], lease_s: float) -> None:
        """Extend the leases ``tokens`` of ``digests`` by ``lease_s``; sent, not waited for."""
        for member, request, group in self.groups(digests):
            shard = self._shards[member]
            call_remote(shard, Shard.renew_many, request, [tokens[i] for i in group], lease_s)

    def fulfil_many(
        self, digests: list[bytes], tokens: list[int], values: list[Any], cost: float
    ) -> Steps[list[Group]]:
        """Hand each shard the values (as :func:`ship` sends them) its leases computed."""

        def send(shard: ActorHandle[Shard], request: bytes, group: list[int]) -> Ref:
            held, computed = [tokens[i] for i in group], [values[i] for i in group]
            return call_remote(shard, Shard.fulfil_many, request, held, computed, cost)

        return (yield from self.fan_out(digests, send, bound=Bound.NONE))

    def fail_many(self, digests: list[bytes], tokens: list[int], error: bytes) -> Steps[None]:
        """End the leases ``tokens`` of ``digests`` with the pickled ``error``."""

        def send(shard: ActorHandle[Shard], request: bytes, group: list[int]) -> Ref:
            return call_remote(shard, Shard.fail_many, request, [tokens[i] for i in group], error)

        yield from self.fan_out(digests, send, bound=Bound.NONE)

    def invalidate_tag(self, tag: str) -> Steps[int]:
        """Remove every entry carrying ``tag``; return how many, over every shard."""
        counts = yield from self.broadcast(lambda s: call_remote(s, Shard.invalidate_tag, tag))
        return sum(counts)

    def clear(self) -> Steps[None]:
        """Remove every entry of every shard."""
        yield from self.broadcast(lambda shard: call_remote(shard, Shard.clear))

    def flush(self) -> Steps[None]:
        """Return once every shard's queued writes to storage are done."""
        yield from self.broadcast(lambda shard: call_remote(shard, Shard.flush))

    def stats(self) -> Steps[list[ShardStats]]:
        """Return the stats row of every shard that answers, in member order."""
        rows = yield from self.broadcast(lambda shard: call_remote(shard, Shard.stats))
        return sorted(rows, key=lambda row: row.shard)

    def tag_summary(self, tag: str) -> Steps[tuple[int, int]]:
        """Return how many live entries carry ``tag``, and their bytes, across all shards."""
        rows = yield from self.broadcast(lambda s: call_remote(s, Shard.tag_summary, tag))
        return sum(row[0] for row in rows), sum(row[1] for row in rows)

    def load(
        self,
        digest: bytes,
        job: Job,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        ttl: float | None,
        tags: tuple[str, ...] = (),
        refresh_after: float | None = None,
    ) -> Steps[Reply]:
        """Look ``digest`` up, starting ``job`` on a miss; the one path of every memoized call.

        A hit older than ``refresh_after`` is returned as it is, and if this caller is
        the one the shard elects, it sends the shard the arguments to recompute it.
        """
        reply = yield from self.lookup(digest, refresh_after)
        if reply.code == Code.MISS:
            return (yield from self.compute(digest, Call.ship(job, args, kwargs, ttl, tags)))
        if reply.elected:
            self.refresh_entry(digest, Call.ship(job, args, kwargs, ttl, tags))
        return reply

    def refresh_entry(self, digest: bytes, call: Call) -> None:
        """Have the shard recompute a stale entry with ``call``, in the background."""
        request = pack_key_request(self._ring.epoch, digest)
        call_remote(self.shard_of(digest), Shard.refresh, request, call)

    def value(self, digest: bytes, reply: Reply, default: Any = ABSENT) -> Steps[Any]:
        """Return the value ``reply`` stands for, fetching a reference; else ``default``."""
        if reply.code in (Code.HIT, Code.INLINE):
            return reply.payload
        if reply.code in REFERENCES:
            found = yield from self.fetch_many({digest: reply.reference})
            return found.get(digest, default)
        return default

    def resolve(
        self,
        digest: bytes,
        reply: Reply,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Steps[T]:
        """Return the value ``reply`` stands for, or ``fn(*args, **kwargs)`` run here.

        The cache never fails the caller: what it cannot deliver is computed locally.
        """
        value = yield from self.value(digest, reply)
        if value is ABSENT:
            value = yield Invoke(fn, args, kwargs)
        computed: T = value
        return computed

    # -- objects ---------------------------------------------------------------------------

    def fetch_many(self, refs: dict[bytes, ray.ObjectRef[Any]]) -> Steps[dict[bytes, Any]]:
        """Return the values of ``refs`` by digest; lost ones are reported and left out."""
        if not refs:
            return {}
        try:
            values = yield Wait(list(refs.values()))
        except CACHE_FAULTS:
            return (yield from self._fetch_each(refs))
        return dict(zip(refs, values, strict=True))

    def _fetch_each(self, refs: dict[bytes, ray.ObjectRef[Any]]) -> Steps[dict[bytes, Any]]:
        found = {}
        for digest, ref in refs.items():
            try:
                (found[digest],) = yield Wait([ref])
            except CACHE_FAULTS:
                yield from self._report_lost(digest, ref)
        return found

    def _report_lost(self, digest: bytes, ref: ray.ObjectRef[Any]) -> Steps[None]:
        logger.warning("cached object for %s was lost; recomputing", digest.hex())
        with contextlib.suppress(*SHARD_DOWN):  # a dead shard starts again empty anyway
            yield Wait([call_remote(self.shard_of(digest), Shard.report_lost, digest, ref.hex())])


def _decode_lookup(wire: Any, call: ray.ObjectRef[Any]) -> Reply:
    """Decode a lookup's answer: a bare value is an inline hit (see :meth:`Shard.lookup`)."""
    if type(wire) is not LookupReply:
        return Reply(Code.INLINE, wire, call=call)
    return Reply.decode(wire)


def replies_by_digest(digests: list[bytes], groups: list[Many]) -> dict[bytes, Reply]:
    """Return each key's reply from ``groups``, replies to a batch of ``digests``."""
    return {
        digests[i]: Reply(Code(code), payload)
        for indices, columns in groups
        for i, code, payload in zip(indices, *columns, strict=True)
    }


def _as_columns(groups: list[Group]) -> list[Many]:
    """Read each shard's OK reply to a batch as :class:`~raycache.core.protocol.Columns`."""
    return [(indices, Columns.of(reply)) for indices, reply in groups]
