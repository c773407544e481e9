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
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import ray
from ray.exceptions import ObjectLostError, RayActorError, WorkerCrashedError

from raycache.actors.compute import Call, Job
from raycache.actors.outage import SHARD_DOWN, SHARD_GONE
from raycache.actors.router import Snapshot, find_router
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

_MISS = Reply(Code.MISS)

Group = tuple[list[int], Reply]
"""The indices, into a batch of digests, of the keys one shard owns, and its reply."""


class Absent:
    """Marks a value that could not be had from the cache."""


ABSENT = Absent()
"""The one :class:`Absent` value."""


class ShardClient:
    """Routes requests for one cache to its shards, by a snapshot of the router's ring."""

    def __init__(self, name: str, router: Any, snapshot: Snapshot) -> None:
        self.name = name
        self.router = router
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

    def refresh(self) -> None:
        """Fetch the router's current snapshot; raise if the cache has been shut down."""
        self.adopt(self.ask_router("snapshot"))

    def ask_router(self, method: str, *args: Any) -> Any:
        """Return what the router's ``method`` answers; raise if the cache has been shut down.

        A router killed for good is started again from what the cache left (see
        :func:`~raycache.actors.router.find_router`), once per call.
        """
        for _ in range(2):
            try:
                return ray.get(getattr(self.router, method).remote(*args))
            except RayActorError:
                router = find_router(self.name)
                if router is None:
                    break
                self.router = router
        raise CacheNotFoundError(f"cache {self.name!r} has been shut down")

    # -- one key -------------------------------------------------------------------------

    def call(
        self, digest: bytes, method: str, *args: Any, refresh_after: float | None = None
    ) -> Reply:
        """Call shard ``method`` about ``digest``; a shard that is down answers MISS."""
        for _ in range(MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            try:
                request = pack_key_request(epoch, digest, refresh_after)
                call = getattr(self.shard_of(digest), method).remote(request, *args)
                wire = ray.get(call)
            except SHARD_DOWN as error:
                # A crashed shard restarts under the same handle: a miss meanwhile. A
                # shard that is gone for good is replaced, and a newer ring routes there.
                if not (isinstance(error, SHARD_GONE) and self._ring_moved_past(epoch)):
                    return _MISS
                continue
            if method == "lookup" and type(wire) is not LookupReply:
                return Reply(Code.INLINE, wire, call=call)  # a bare hit: see Shard.lookup
            reply = Reply.decode(wire)
            if reply.code != Code.STALE:
                return reply
            self._ring_moved_past(epoch)
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
    ) -> Reply:
        """Look ``digest`` up, starting ``job`` on a miss; the one path of every memoized call.

        A hit older than ``refresh_after`` is returned as it is, and if this caller is
        the one the shard elects, it sends the shard the arguments to recompute it.
        """
        reply = self.call(digest, "lookup", refresh_after=refresh_after)
        if reply.code == Code.MISS:
            return self.call(digest, "compute", Call.ship(job, args, kwargs, ttl, tags))
        if reply.elected:
            request = pack_key_request(self._ring.epoch, digest)
            call = Call.ship(job, args, kwargs, ttl, tags)
            self.shard_of(digest).refresh.remote(request, call)
        return reply

    def value(self, digest: bytes, reply: Reply, default: Any = ABSENT) -> Any:
        """Return the value ``reply`` stands for, fetching a reference; else ``default``."""
        if reply.code in (Code.HIT, Code.INLINE):
            return reply.payload
        if reply.code in REFERENCES:
            return self.fetch_many({digest: reply.reference}).get(digest, default)
        return default

    def resolve(
        self,
        digest: bytes,
        reply: Reply,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """Return the value ``reply`` stands for, or ``fn(*args, **kwargs)`` run here.

        The cache never fails the caller: what it cannot deliver is computed locally.
        """
        value = self.value(digest, reply)
        return fn(*args, **kwargs) if value is ABSENT else value

    def shard_of(self, digest: bytes) -> Any:
        """Return the handle of the shard that owns ``digest``."""
        return self._shards[self._ring.owner_at(key_point(digest))]

    # -- objects ---------------------------------------------------------------------------

    def fetch_many(self, refs: dict[bytes, ray.ObjectRef[Any]]) -> dict[bytes, Any]:
        """Return the values of ``refs`` by digest; lost ones are reported and left out."""
        if not refs:
            return {}
        try:
            return dict(zip(refs, ray.get(list(refs.values())), strict=True))
        except CACHE_FAULTS:
            return self._fetch_each(refs)

    def _fetch_each(self, refs: dict[bytes, ray.ObjectRef[Any]]) -> dict[bytes, Any]:
        found = {}
        for digest, ref in refs.items():
            try:
                found[digest] = ray.get(ref)
            except CACHE_FAULTS:
                self._report_lost(digest, ref)
        return found

    def _report_lost(self, digest: bytes, ref: ray.ObjectRef[Any]) -> None:
        logger.warning("cached object for %s was lost; recomputing", digest.hex())
        with contextlib.suppress(*SHARD_DOWN):  # a dead shard starts again empty anyway
            ray.get(self.shard_of(digest).report_lost.remote(digest, ref.hex()))

    # -- many keys, every shard ------------------------------------------------------------

    def fan_out(
        self,
        method: str,
        digests: list[bytes],
        per_group: Callable[[list[int]], tuple[Any, ...]],
        *args: Any,
    ) -> list[Group]:
        """Call ``method`` once per owning shard, concurrently; return each group's reply.

        ``per_group(indices)`` gives the arguments particular to a group. Groups whose
        shard is down are left out: their keys are misses this time.
        """
        joined = b"".join(digests)
        points = key_points(joined)
        rows = np.frombuffer(joined, dtype=np.uint8).reshape(-1, DIGEST_SIZE)
        answered: list[Group] = []
        for _ in range(MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            calls = []
            for member, indices in self._ring.partition(points).items():
                request = pack_request(epoch, rows[indices].tobytes())
                group = indices.tolist()
                shard_method = getattr(self._shards[member], method)
                calls.append((group, shard_method.remote(request, *per_group(group), *args)))
            answered, retry = _gather(calls)
            if not (retry and self._ring_moved_past(epoch)):
                break
        return answered

    def broadcast(self, method: str, *args: Any) -> list[Any]:
        """Call ``method`` on every shard; return the answers of those that are up.

        The ring is refreshed first, and again whenever a shard is gone for good: a
        resize may have moved entries to shards, and a shard gone for good has a
        replacement, that only a newer ring knows of. A clear or an invalidation must
        not skip them.
        """
        answers: dict[str, Any] = {}
        self._refresh_if_reachable()
        for _ in range(MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            calls = {
                member: getattr(shard, method).remote(*args)
                for member, shard in self._shards.items()
                if member not in answers
            }
            gone = _gather_alive(calls, answers)
            if not (gone and self._ring_moved_past(epoch)):
                break
        return list(answers.values())

    def tag_summary(self, tag: str) -> tuple[int, int]:
        """Return how many live entries carry ``tag``, and their bytes, across all shards."""
        rows = self.broadcast("tag_summary", tag)
        return sum(row[0] for row in rows), sum(row[1] for row in rows)

    def _ring_moved_past(self, epoch: int) -> bool:
        """Fetch a newer ring; return whether it is newer than ``epoch``."""
        self._refresh_if_reachable()
        return self._ring.epoch != epoch

    def _refresh_if_reachable(self) -> None:
        # With no router to ask, the ring held here is still the best guess: the call
        # becomes a miss, never an error.
        with contextlib.suppress(CacheNotFoundError):
            self.refresh()


def _gather(calls: list[tuple[list[int], ray.ObjectRef[Any]]]) -> tuple[list[Group], bool]:
    """Wait for every call; return the answers, and whether a newer ring may route better."""
    answered = []
    retry = False
    for group, call in calls:
        try:
            reply = Reply.decode(ray.get(call))
        except SHARD_DOWN as error:
            retry |= isinstance(error, SHARD_GONE)
            continue
        if reply.code == Code.STALE:
            retry = True
        else:
            answered.append((group, reply))
    return answered, retry


def _gather_alive(calls: dict[str, ray.ObjectRef[Any]], answers: dict[str, Any]) -> bool:
    """Add each member's answer to ``answers``; return whether a shard was gone for good."""
    gone = False
    for member, call in calls.items():
        try:
            answers[member] = ray.get(call)
        except SHARD_DOWN as error:
            # A restarting shard answers nothing and comes back empty.
            gone |= isinstance(error, SHARD_GONE)
    return gone
