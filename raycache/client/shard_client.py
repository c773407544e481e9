"""The shard client: how every client-side operation reaches the shards.

This is raycache's one internal API between user-facing objects (:class:`~raycache.Cache`,
memoized functions) and the actors. It holds a snapshot of the cache's ring, sends each
request straight to the shard that owns the key, and turns the cache's own faults into
misses:

- a shard that is down answers MISS (a restarting shard comes back empty anyway);
- a STALE answer, or a shard gone for good, makes it fetch a newer ring from the router
  and try again, a bounded number of times;
- a cached object that cannot be read is reported to its shard and counted as a miss.

Replies come back as :class:`~raycache.core.protocol.Reply`, with named fields.

Every method that talks to the actors returns :mod:`~raycache.client.steps`: the blocking
:class:`~raycache.Cache` runs them with ``steps.run``, :class:`~raycache.AsyncCache`
awaits them with ``steps.run_async``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np
import ray
from ray.exceptions import GetTimeoutError, ObjectLostError, RayActorError, WorkerCrashedError

from raycache.actors.cluster import SHARD_DOWN, SHARD_GONE
from raycache.actors.compute import Call, Job
from raycache.actors.router import Snapshot, find_router
from raycache.client.health import ShardHealth, default_timeout
from raycache.client.steps import Run, Steps, Wait
from raycache.core.config import CacheConfig
from raycache.core.keys import DIGEST_SIZE, key_point, key_points
from raycache.core.protocol import (
    REFERENCES,
    Code,
    LookupReply,
    Reply,
    pack_key_request,
    pack_request,
)
from raycache.errors import CacheNotFoundError

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_RING_REFRESHES = 5
"""How many newer rings one call may fetch before it settles for a miss."""

CACHE_FAULTS = (RayActorError, ObjectLostError, WorkerCrashedError)
"""Errors of reading a cached object that mean the cache lost it, not that the user erred."""

BOUNDED = frozenset(("get", "contains", "lookup", "lease", "get_many"))
"""Shard methods a caller waits on for at most the client's timeout: the reads."""

_MISS = Reply(Code.MISS)

Group = tuple[list[int], Reply]
"""The indices, into a batch of digests, of the keys one shard owns, and its reply."""


class _Call(NamedTuple):
    member: str
    group: list[int]
    call: ray.ObjectRef[Any]


class Absent:
    """Marks a value that could not be had from the cache."""


ABSENT = Absent()
"""The one :class:`Absent` value."""


class ShardClient:
    """Routes requests for one cache to its shards, by a snapshot of the router's ring."""

    def __init__(
        self, name: str, router: Any, snapshot: Snapshot, timeout: float | None = None
    ) -> None:
        self.name = name
        self.router = router
        self.health = ShardHealth(default_timeout() if timeout is None else timeout)
        self.adopt(snapshot)

    def adopt(self, snapshot: Snapshot) -> None:
        """Route by ``snapshot`` from now on."""
        self.snapshot = snapshot
        self._ring = snapshot.ring
        self._shards = snapshot.shards

    @property
    def config(self) -> CacheConfig:
        """The settings the cache runs with."""
        return self.snapshot.config

    @property
    def shards(self) -> dict[str, Any]:
        """The shard handles, by ring member."""
        return self._shards

    def refresh(self) -> Steps[None]:
        """Fetch the router's current snapshot; raise if the cache has been shut down."""
        snapshot = yield from self.ask_router("snapshot")
        self.adopt(snapshot)

    def ask_router(self, method: str, *args: Any) -> Steps[Any]:
        """Return what the router's ``method`` answers; raise if the cache has been shut down.

        A router killed for good is started again from what the cache left (see
        :func:`~raycache.actors.router.find_router`), once per call.
        """
        for _ in range(2):
            try:
                (answer,) = yield Wait([getattr(self.router, method).remote(*args)])
                return answer
            except RayActorError:
                router = yield Run(find_router, (self.name,))
                if router is None:
                    break
                self.router = router
        raise CacheNotFoundError(f"cache {self.name!r} has been shut down")

    # -- one key -------------------------------------------------------------------------

    def call(
        self, digest: bytes, method: str, *args: Any, refresh_after: float | None = None
    ) -> Steps[Reply]:
        """Call shard ``method`` about ``digest``; a shard that is down answers MISS."""
        bounded = method in BOUNDED
        for _ in range(MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            member = self._ring.owner_at(key_point(digest))
            if bounded and not self.health.available(member):
                return _MISS
            shard = self._shards[member]
            try:
                request = pack_key_request(epoch, digest, refresh_after)
                call = getattr(shard, method).remote(request, *args)
                (wire,) = yield Wait([call], self.health.timeout if bounded else None)
            except GetTimeoutError:
                self.health.timed_out(member, shard)
                return _MISS
            except SHARD_DOWN as error:
                # A crashed shard restarts under the same handle: a miss meanwhile. A
                # shard that is gone for good is replaced, and a newer ring routes there.
                if not (
                    isinstance(error, SHARD_GONE) and (yield from self._ring_moved_past(epoch))
                ):
                    return _MISS
                continue
            if method == "lookup" and type(wire) is not LookupReply:
                return Reply(Code.INLINE, wire, call=call)  # a bare hit: see Shard.lookup
            reply = Reply.decode(wire)
            if reply.code != Code.STALE:
                return reply
            yield from self._ring_moved_past(epoch)
        return _MISS

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
        reply = yield from self.call(digest, "lookup", refresh_after=refresh_after)
        if reply.code == Code.MISS:
            return (
                yield from self.call(digest, "compute", Call.ship(job, args, kwargs, ttl, tags))
            )
        if reply.elected:
            request = pack_key_request(self._ring.epoch, digest)
            call = Call.ship(job, args, kwargs, ttl, tags)
            self.shard_of(digest).refresh.remote(request, call)
        return reply

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
            value = yield Run(fn, args, kwargs)
        computed: T = value
        return computed

    def shard_of(self, digest: bytes) -> Any:
        """Return the handle of the shard that owns ``digest``."""
        return self._shards[self._ring.owner_at(key_point(digest))]

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
            yield Wait([self.shard_of(digest).report_lost.remote(digest, ref.hex())])

    # -- many keys, every shard ------------------------------------------------------------

    def fan_out(
        self,
        method: str,
        digests: list[bytes],
        per_group: Callable[[list[int]], tuple[Any, ...]],
        *args: Any,
    ) -> Steps[list[Group]]:
        """Call ``method`` once per owning shard, concurrently; return each group's reply.

        ``per_group(indices)`` gives the arguments particular to a group. Groups whose
        shard is down are left out: their keys are misses this time.
        """
        joined = b"".join(digests)
        points = key_points(joined)
        rows = np.frombuffer(joined, dtype=np.uint8).reshape(-1, DIGEST_SIZE)
        bounded = method in BOUNDED
        answered: list[Group] = []
        for _ in range(MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            calls = []
            for member, indices in self._ring.partition(points).items():
                if bounded and not self.health.available(member):
                    continue  # its keys are misses until it answers a probe
                request = pack_request(epoch, rows[indices].tobytes())
                group = indices.tolist()
                shard_method = getattr(self._shards[member], method)
                call = shard_method.remote(request, *per_group(group), *args)
                calls.append(_Call(member, group, call))
            deadline = time.monotonic() + self.health.timeout if bounded else None
            answered, retry = yield from self._gather(calls, deadline)
            if not (retry and (yield from self._ring_moved_past(epoch))):
                break
        return answered

    def _gather(
        self, calls: list[_Call], deadline: float | None
    ) -> Steps[tuple[list[Group], bool]]:
        """Wait for every call, until ``deadline`` if bounded.

        Return the answers, and whether a newer ring may route better.
        """
        answered = []
        retry = False
        for member, group, call in calls:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                (wire,) = yield Wait([call], timeout)
                reply = Reply.decode(wire)
            except GetTimeoutError:
                self.health.timed_out(member, self._shards[member])
                continue
            except SHARD_DOWN as error:
                retry |= isinstance(error, SHARD_GONE)
                continue
            if reply.code == Code.STALE:
                retry = True
            else:
                answered.append((group, reply))
        return answered, retry

    def broadcast(self, method: str, *args: Any) -> Steps[list[Any]]:
        """Call ``method`` on every shard; return the answers of those that are up.

        The ring is refreshed first, and again whenever a shard is gone for good: a
        resize may have moved entries to shards, and a shard gone for good has a
        replacement, that only a newer ring knows of. A clear or an invalidation must
        not skip them.
        """
        answers: dict[str, Any] = {}
        yield from self._refresh_if_reachable()
        for _ in range(MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            calls = {
                member: getattr(shard, method).remote(*args)
                for member, shard in self._shards.items()
                if member not in answers
            }
            gone = yield from _gather_alive(calls, answers)
            if not (gone and (yield from self._ring_moved_past(epoch))):
                break
        return list(answers.values())

    def tag_summary(self, tag: str) -> Steps[tuple[int, int]]:
        """Return how many live entries carry ``tag``, and their bytes, across all shards."""
        rows = yield from self.broadcast("tag_summary", tag)
        return sum(row[0] for row in rows), sum(row[1] for row in rows)

    def _ring_moved_past(self, epoch: int) -> Steps[bool]:
        """Fetch a newer ring; return whether it is newer than ``epoch``."""
        yield from self._refresh_if_reachable()
        return self._ring.epoch != epoch

    def _refresh_if_reachable(self) -> Steps[None]:
        # With no router to ask, the ring held here is still the best guess: the call
        # becomes a miss, never an error.
        try:
            yield from self.refresh()
        except CacheNotFoundError:
            return


def _gather_alive(calls: dict[str, ray.ObjectRef[Any]], answers: dict[str, Any]) -> Steps[bool]:
    """Add each member's answer to ``answers``; return whether a shard was gone for good."""
    gone = False
    for member, call in calls.items():
        try:
            (answers[member],) = yield Wait([call])
        except SHARD_DOWN as error:
            # A restarting shard answers nothing and comes back empty.
            gone |= isinstance(error, SHARD_GONE)
    return gone
