"""Routing: how a request for a key reaches the shard that owns it, whatever happens.

A :class:`Routing` holds a snapshot of the cache's ring, sends each request straight to
the shard that owns the key, and turns the cache's own faults into misses:

- a shard that is down answers MISS (a restarting shard comes back empty anyway);
- a STALE answer, or a shard gone for good, makes it fetch a newer ring from the router
  and try again, a bounded number of times;
- a read waits at most the client's timeout; a shard that did not answer in time, or
  was found restarting, is avoided until it answers a probe
  (:mod:`raycache.client.health`);
- a write waits for its shard's answer, so that the handle reads its own writes
  (:class:`Bound`).

How a request is made is given by the caller, as a typed call
(:func:`~raycache.actors.handles.call_remote`): :class:`~raycache.client.shard_client.ShardClient`
has one method per shard operation on top of this.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, NamedTuple, TypeVar

import numpy as np
import ray
from ray.actor import ActorHandle
from ray.exceptions import GetTimeoutError, RayActorError

from raycache.actors.cluster import SHARD_DOWN, SHARD_GONE
from raycache.actors.evacuation import Shards
from raycache.actors.handles import call_remote
from raycache.actors.router import Router, Snapshot, find_router
from raycache.actors.shard import Shard
from raycache.client.health import ShardHealth, default_timeout
from raycache.client.steps import Invoke, Steps, Wait
from raycache.core.config import CacheConfig
from raycache.core.keys import DIGEST_SIZE, key_point, key_points
from raycache.core.protocol import (
    Code,
    Reply,
    WireReply,
    pack_key_request,
    pack_request,
)
from raycache.errors import CacheNotFoundError

T = TypeVar("T")

MAX_BATCH = 4096
"""Most keys one request of a batch carries. A larger share of one shard goes as several
requests, all at once, so that the shard serves others between them (a request of 4,096
small keys takes it a few milliseconds) and no message grows without bound: values of
100 KiB or more travel by reference, so a request carries at most 400 MiB, and one of
small values far less. Each request costs the shard a call's fixed overhead, which is
why the bound is no smaller: 10,000 keys took 35% longer in requests of 1,024."""

MAX_RING_REFRESHES = 5
"""How many newer rings one call may fetch before it settles for a miss."""

Send = Callable[[ActorHandle[Shard], bytes], "ray.ObjectRef[Any]"]
"""How one call reaches a shard, given its handle and the packed request."""

_MISS = Reply(Code.MISS)


class Bound(Enum):
    """How long a call waits for its shard."""

    READ = "read"
    """At most the client's timeout; a shard being avoided is not asked, and a read that
    gets no answer is a miss."""
    START = "start"
    """Starting a computation: a shard being avoided is not asked, and the call is a miss
    (its caller computes the value itself); any other waits until it answers, which it
    does once the computation is under way, not done."""
    NONE = "none"
    """Until the shard answers: a write, or a wait for a computation, whose length is the
    user's. (A write left to land after a timeout would make the handle's next read of
    it a miss, its shard being avoided.)"""


Group = tuple[list[int], Reply]
"""The indices, into a batch of digests, of the keys one shard owns, and its reply."""

Ref = ray.ObjectRef[WireReply]

GroupSend = Callable[[ActorHandle[Shard], bytes, list[int]], Ref]
"""How a batch reaches one shard: its handle, the packed request, the keys' indices."""


class _Call(NamedTuple):
    member: str
    group: list[int]
    call: ray.ObjectRef[WireReply]


class Routing:
    """Routes requests for one cache to its shards, by a snapshot of the router's ring."""

    def __init__(
        self,
        name: str,
        router: ActorHandle[Router],
        snapshot: Snapshot,
        timeout: float | None = None,
    ) -> None:
        self.name = name
        self.router = router
        self.health = ShardHealth(default_timeout() if timeout is None else timeout)
        self.route_by(snapshot)

    def route_by(self, snapshot: Snapshot) -> None:
        """Route by ``snapshot`` from now on."""
        self.snapshot = snapshot
        self._ring = snapshot.ring
        self._shards = snapshot.shards

    @property
    def config(self) -> CacheConfig:
        """The settings the cache runs with."""
        return self.snapshot.config

    @property
    def shards(self) -> Shards:
        """The shard handles, by ring member."""
        return self._shards

    def refresh(self, timeout: float | None = None) -> Steps[None]:
        """Fetch the router's current snapshot; raise if the cache has been shut down.

        Past ``timeout`` seconds, :class:`~ray.exceptions.GetTimeoutError` is raised.
        """
        snapshot = yield from self._ask_router(
            lambda router: call_remote(router, Router.snapshot), timeout
        )
        self.route_by(snapshot)

    def resize(self, shards: int) -> Steps[None]:
        """Have the router resize the cache to ``shards`` shards, and route by its new ring."""
        ask = functools.partial(_resize, shards=shards)
        self.route_by((yield from self._ask_router(ask)))

    def _ask_router(
        self, ask: Callable[[ActorHandle[Router]], ray.ObjectRef[T]], timeout: float | None = None
    ) -> Steps[T]:
        """Return the router's answer to ``ask``; raise if the cache has been shut down.

        A router killed for good is started again from what the cache left (see
        :func:`~raycache.actors.router.find_router`), once per call.
        """
        for _ in range(2):
            try:
                (answer,) = yield Wait([ask(self.router)], timeout)
                return answer  # type: ignore[no-any-return]
            except RayActorError:
                router = yield Invoke(find_router, (self.name,))
                if router is None:
                    break
                self.router = router
        raise CacheNotFoundError(f"cache {self.name!r} has been shut down")

    # -- one key -------------------------------------------------------------------------

    def _one(
        self,
        digest: bytes,
        send: Send,
        *,
        bound: Bound = Bound.READ,
        refresh_after: float | None = None,
        decode: Callable[[Any, ray.ObjectRef[Any]], Reply] = lambda wire, _: Reply.decode(wire),
    ) -> Steps[Reply]:
        """Send a request about ``digest`` to its shard; a shard that is down answers MISS.

        How long it waits, ring refreshes included, is its ``bound``.
        """
        deadline = self._deadline(bound)
        for _ in range(MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            member = self._ring.owner_at(key_point(digest))
            if bound is not Bound.NONE and not self.health.available(member):
                return _MISS
            shard = self._shards[member]
            call = send(shard, pack_key_request(epoch, digest, refresh_after))
            try:
                (wire,) = yield Wait([call], _until(deadline))
            except GetTimeoutError:
                self.health.avoid(member, shard)
                return _MISS
            except SHARD_DOWN as error:
                # A crashed shard restarts under the same handle: a miss meanwhile, and
                # avoided until it is back. A shard that is gone for good is replaced,
                # and a newer ring routes there.
                self._avoid_if_restarting(member, shard, error)
                if not (
                    isinstance(error, SHARD_GONE)
                    and (yield from self._ring_moved_past(epoch, self._refresh_bound(deadline)))
                ):
                    return _MISS
                continue
            reply = decode(wire, call)
            if reply.code != Code.STALE:
                return reply
            yield from self._ring_moved_past(epoch, self._refresh_bound(deadline))
        return _MISS

    def _deadline(self, bound: Bound) -> float | None:
        """Return when a call of ``bound`` made now stops waiting, if it does."""
        return time.monotonic() + self.health.timeout if bound is Bound.READ else None

    def _avoid_if_restarting(
        self, member: str, shard: ActorHandle[Shard], error: BaseException
    ) -> None:
        # Not one gone for good: its member's next handle, in a newer ring, is fine.
        if not isinstance(error, SHARD_GONE):
            self.health.avoid(member, shard)

    def _refresh_bound(self, deadline: float | None) -> float | None:
        """Return how long a call with ``deadline`` may wait for a newer ring.

        A call with no deadline waits for the router at most the client's timeout too:
        a snapshot takes it milliseconds, and a router slower than that is restarting.
        """
        return self.health.timeout if deadline is None else _until(deadline)

    def shard_of(self, digest: bytes) -> ActorHandle[Shard]:
        """Return the handle of the shard that owns ``digest``."""
        return self._shards[self.member_of(digest)]

    def member_of(self, digest: bytes) -> str:
        """Return the ring member that owns ``digest``."""
        return self._ring.owner_at(key_point(digest))

    # -- many keys, every shard ------------------------------------------------------------

    def fan_out(self, digests: list[bytes], send: GroupSend, *, bound: Bound) -> Steps[list[Group]]:
        """Send one request per owning shard, concurrently; return each group's reply.

        ``send(shard, request, indices)`` makes the call for the keys at ``indices``. A
        shard's share of more than :data:`MAX_BATCH` keys goes as several requests.
        Groups whose shard is down or did not answer within the ``bound`` are left out:
        their keys are misses this time.
        """
        answered: list[Group] = []
        deadline = self._deadline(bound)
        for _ in range(MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            calls = [
                _Call(member, group, send(self._shards[member], request, group))
                for member, request, group in self.groups(digests)
                if bound is not Bound.READ or self.health.available(member)  # else misses
            ]
            answered, retry = yield from self._gather(calls, deadline)
            if not (
                retry and (yield from self._ring_moved_past(epoch, self._refresh_bound(deadline)))
            ):
                break
        return answered

    def groups(self, digests: list[bytes]) -> list[tuple[str, bytes, list[int]]]:
        """Return, per request a batch of ``digests`` takes, its shard, request and indices.

        A shard's share of more than :data:`MAX_BATCH` keys takes several requests.
        """
        joined = b"".join(digests)
        rows = np.frombuffer(joined, dtype=np.uint8).reshape(-1, DIGEST_SIZE)
        epoch = self._ring.epoch
        found = []
        for member, indices in self._ring.partition(key_points(joined)).items():
            for start in range(0, len(indices), MAX_BATCH):
                part = indices[start : start + MAX_BATCH]
                found.append((member, pack_request(epoch, rows[part].tobytes()), part.tolist()))
        return found

    def _gather(
        self, calls: list[_Call], deadline: float | None
    ) -> Steps[tuple[list[Group], bool]]:
        """Wait for every call, until ``deadline`` if bounded.

        Return the answers, and whether a newer ring may route better.
        """
        answered = []
        retry = False
        outcomes = yield from _outcomes([call for _, _, call in calls], deadline)
        for (member, group, _), outcome in zip(calls, outcomes, strict=True):
            if isinstance(outcome, GetTimeoutError):
                self.health.avoid(member, self._shards[member])
                continue
            if isinstance(outcome, SHARD_DOWN):
                self._avoid_if_restarting(member, self._shards[member], outcome)
                retry |= isinstance(outcome, SHARD_GONE)
                continue
            reply = Reply.decode(outcome)
            if reply.code == Code.STALE:
                retry = True
            else:
                answered.append((group, reply))
        return answered, retry

    def broadcast(self, ask: Callable[[ActorHandle[Shard]], ray.ObjectRef[T]]) -> Steps[list[T]]:
        """Call ``ask`` on every shard; return the answers of those that are up.

        The ring is refreshed first, and again whenever a shard is gone for good: a
        resize may have moved entries to shards, and a shard gone for good has a
        replacement, that only a newer ring knows of. A clear or an invalidation must
        not skip them.
        """
        answers: dict[str, T] = {}
        yield from self._refresh_if_reachable()
        for _ in range(MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            calls = {
                member: ask(shard)
                for member, shard in self._shards.items()
                if member not in answers
            }
            gone = yield from _gather_alive(calls, answers)
            if not (gone and (yield from self._ring_moved_past(epoch))):
                break
        return list(answers.values())

    def _ring_moved_past(self, epoch: int, timeout: float | None = None) -> Steps[bool]:
        """Fetch a newer ring, within ``timeout``; return whether it is newer than ``epoch``."""
        yield from self._refresh_if_reachable(timeout)
        return self._ring.epoch != epoch

    def _refresh_if_reachable(self, timeout: float | None = None) -> Steps[None]:
        # With no router to ask, or none in time, the ring held here is still the best
        # guess: the call becomes a miss, never an error.
        try:
            yield from self.refresh(timeout)
        except (CacheNotFoundError, GetTimeoutError):
            return


def _gather_alive(calls: dict[str, ray.ObjectRef[T]], answers: dict[str, T]) -> Steps[bool]:
    """Add each member's answer to ``answers``; return whether a shard was gone for good."""
    gone = False
    for member, call in calls.items():
        try:
            (answers[member],) = yield Wait([call])
        except SHARD_DOWN as error:
            # A restarting shard answers nothing and comes back empty.
            gone |= isinstance(error, SHARD_GONE)
    return gone


def _outcomes(refs: list[Ref], deadline: float | None) -> Steps[list[Any]]:
    """Return the answer of each of ``refs``, or the error it raised, by ``deadline``.

    They are waited for together, one wait for the batch, unless one of them fails.
    """
    if not refs:
        return []
    with contextlib.suppress(GetTimeoutError, *SHARD_DOWN):
        return list((yield Wait(refs, _until(deadline))))
    outcomes: list[Any] = []
    for ref in refs:
        try:
            (wire,) = yield Wait([ref], _until(deadline))
        except (GetTimeoutError, *SHARD_DOWN) as error:
            wire = error
        outcomes.append(wire)
    return outcomes


def _until(deadline: float | None) -> float | None:
    """Return the seconds left until ``deadline`` (None: no deadline), at least 0."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _resize(router: ActorHandle[Router], shards: int) -> ray.ObjectRef[Snapshot]:
    return call_remote(router, Router.resize, shards)
