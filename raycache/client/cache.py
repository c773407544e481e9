"""``raycache.Cache``: the client handle, a plain Python object over a cache's actors.

The handle holds a snapshot of the cache's ring, so every operation goes straight to the
shard that owns the key, in one actor round trip. Arguments are checked here, before
anything is sent. Faults of the cache itself (a dead shard, a lost object) are counted and
treated as misses: they never reach the caller as exceptions.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
import ray
from ray.exceptions import ObjectLostError, RayActorError, WorkerCrashedError

from raycache.actors.compute import Call, Job
from raycache.actors.router import HEAD_NODE_RESOURCE, ROUTER_CONCURRENCY, Router, Snapshot
from raycache.actors.shard import (
    COMPUTING,
    HIT,
    INLINE,
    MISS,
    PENDING,
    REF,
    SHARD_DOWN,
    SHARD_GONE,
    STALE,
    TOO_LARGE,
    LookupReply,
    Reply,
    pack_key_request,
    pack_request,
)
from raycache.client.admin import alive_nodes
from raycache.core import validation
from raycache.core.config import (
    MIN_SHARDS,
    CacheConfig,
    parse_capacity,
    validate_capacity,
)
from raycache.core.frames import warn_if_unpickled_on_hit
from raycache.core.hotkeys import NearCache
from raycache.core.keys import DIGEST_SIZE, key_digest, key_point, key_points
from raycache.core.naming import NAMESPACE, router_name
from raycache.core.store import DEFAULT_POLICY, POLICIES
from raycache.errors import CacheNotFoundError, EntryTooLargeError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_MAX_RING_REFRESHES = 5
_REFERENCES = (REF, PENDING, COMPUTING)
_CACHE_FAULTS = (RayActorError, ObjectLostError, WorkerCrashedError)


class Cache:
    """A named, cluster-wide cache. Get-or-create: the same name gives the same cache.

    ``capacity`` is the byte budget across all shards: an int, a size such as ``"8GiB"``
    or ``"512MB"``, or a share of the object store such as ``"30%"`` (the default is 30%).
    ``policy`` is ``"lru"``, ``"lfu"``, ``"fifo"``, ``"gdsf"`` (cost-aware) or ``"tinylfu"``.
    ``ttl`` is the default time to live, in seconds, of every entry.

    ``near_cache_ttl`` turns on this handle's near cache for hot keys: values of keys
    that their shard reports hot are served from this process for up to that many
    seconds, so a read may be that much older than the shard's value (this handle's own
    writes drop its copies at once). Off by default.

    When the cache already exists, its running settings win; settings given here that
    differ are reported with a warning.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        shards: int | None = None,
        capacity: int | str | None = None,
        policy: str = DEFAULT_POLICY,
        ttl: float | None = None,
        near_cache_ttl: float | None = None,
    ) -> None:
        self._name = validation.name(name)
        self._near = _near_cache(near_cache_ttl)
        requested = {
            "shards": None if shards is None else validation.integer(shards, "shards", minimum=1),
            "capacity": validate_capacity(capacity),
            "policy": validation.choice(policy, POLICIES, "policy"),
            "ttl": validation.seconds(ttl, "ttl"),
        }
        if not ray.is_initialized():
            ray.init()
        resolved = _resolve_config(requested)
        self._router = _start_router(name, resolved)
        ray.get(self._router.wait_ready.remote())
        self._adopt(ray.get(self._router.snapshot.remote()))
        _warn_on_conflict(name, requested, resolved, self._config)

    @classmethod
    def attach(cls, name: str = "default", *, near_cache_ttl: float | None = None) -> Cache:
        """Return a handle on the running cache ``name``; raise if there is none."""
        validation.name(name)
        near = _near_cache(near_cache_ttl)
        if not ray.is_initialized():
            ray.init()
        try:
            router = ray.get_actor(router_name(name), namespace=NAMESPACE)
        except ValueError:
            raise CacheNotFoundError(f"no cache named {name!r} is running") from None
        return _restore(name, router, ray.get(router.snapshot.remote()), near)

    @property
    def name(self) -> str:
        """The cache's name, shared by every handle on it."""
        return self._name

    @property
    def config(self) -> CacheConfig:
        """The settings the cache runs with."""
        return self._config

    # -- single keys -------------------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        """Return the value under ``key``, or ``default`` if it is absent or unreadable."""
        digest = key_digest(key)
        if self._near is not None:
            value = self._near.get(digest, _ABSENT)
            if value is not _ABSENT:
                return value
        reply = self._call(digest, "get")
        value = self._value(digest, reply, _ABSENT)
        if value is _ABSENT:
            return default
        if self._near is not None and len(reply) > 2:
            self._near.put(digest, value)
        return value

    def get_ref(self, key: Any) -> ray.ObjectRef[Any] | None:
        """Return an ObjectRef to the value under ``key``, or None on a miss.

        Large values come back as the shard's own reference, with nothing copied; small
        ones are put in the object store by this call.
        """
        reply = self._call(key_digest(key), "get")
        if reply[0] == REF:
            ref: ray.ObjectRef[Any] = reply[1][0]
            return ref
        return ray.put(reply[1]) if reply[0] == HIT else None

    def put(
        self, key: Any, value: Any, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Store ``value`` under ``key``.

        Raises :class:`~raycache.errors.EntryTooLargeError` if the value exceeds the byte
        budget of the shard that owns the key.
        """
        digest = key_digest(key)
        self._forget(digest)
        warn_if_unpickled_on_hit(value, "the value for", key)
        reply = self._call(
            digest, "put", value, validation.seconds(ttl, "ttl"), validation.strings(tags, "tags")
        )
        _raise_if_too_large(reply)

    def delete(self, key: Any) -> bool:
        """Remove ``key``; return whether it was present."""
        digest = key_digest(key)
        self._forget(digest)
        return bool(self._call(digest, "delete")[1])

    def __contains__(self, key: Any) -> bool:
        """Return whether ``key`` holds an unexpired value, without counting a hit."""
        return bool(self._call(key_digest(key), "contains")[1])

    def get_or_compute(
        self, key: Any, fn: Callable[..., T], *args: Any, ttl: float | None = None, **kwargs: Any
    ) -> T:
        """Return the value under ``key``, computing ``fn(*args, **kwargs)`` on a miss.

        Concurrent callers of the same missing key, anywhere in the cluster, share one
        computation, which runs as a Ray task owned by the key's shard. An exception
        raised by ``fn`` reaches every caller and nothing is cached. If the cache itself
        fails, ``fn`` runs here and its value is returned.
        """
        digest = key_digest(key)
        reply = self._load(digest, Job.of(fn), args, kwargs, ttl=validation.seconds(ttl, "ttl"))
        return self._resolve(digest, reply, fn, args, kwargs)

    # -- many keys ---------------------------------------------------------------------

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        """Return ``{key: value}`` for the keys present; missing keys are omitted.

        Issues one call per shard, all at once.
        """
        by_digest = {key_digest(key): key for key in keys}
        digests, wanted = list(by_digest), list(by_digest.values())
        found: dict[Any, Any] = {}
        refs: dict[bytes, ray.ObjectRef[Any]] = {}
        for indices, (_, codes, payloads) in self._fan_out("get_many", digests, _nothing):
            if codes.count(HIT) == len(codes):
                found.update(zip([wanted[i] for i in indices], payloads, strict=True))
                continue
            for i, code, payload in zip(indices, codes, payloads, strict=True):
                if code == HIT:
                    found[wanted[i]] = payload
                elif code == REF:
                    refs[digests[i]] = payload[0]
        for digest, value in self._fetch_many(refs).items():
            found[by_digest[digest]] = value
        return found

    def put_many(self, mapping: Mapping[Any, Any], *, ttl: float | None = None) -> None:
        """Store every item of ``mapping``, with one call per shard, all at once."""
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"put_many takes a mapping of keys to values, got {type(mapping).__name__}"
            )
        ttl = validation.seconds(ttl, "ttl")
        digests = [key_digest(key) for key in mapping]
        values = list(mapping.values())
        for digest in digests:
            self._forget(digest)
        for key, value in mapping.items():
            warn_if_unpickled_on_hit(value, "the value for", key)

        def values_of(indices: list[int]) -> tuple[list[Any]]:
            return ([values[i] for i in indices],)

        for _, reply in self._fan_out("put_many", digests, values_of, ttl, ()):
            _raise_if_too_large(reply)

    # -- whole cache -------------------------------------------------------------------

    def invalidate_tag(self, tag: str) -> int:
        """Remove every entry put with ``tag``; return how many were removed."""
        (tag,) = validation.strings((tag,), "tags")
        self._forget(None)
        return sum(self._broadcast("invalidate_tag", tag))

    def clear(self) -> None:
        """Remove every entry of this cache."""
        self._forget(None)
        self._broadcast("clear")

    def stats(self) -> dict[str, Any]:
        """Return counters across all shards, with one row per shard under ``"shards"``."""
        rows = sorted(self._broadcast("stats"), key=lambda row: row["shard"])
        totals = {
            field: sum(row[field] for row in rows)
            for field in ("hits", "misses", "evictions", "expirations", "entries", "bytes")
        }
        lookups = totals["hits"] + totals["misses"]
        return {
            "name": self._name,
            **totals,
            "hit_ratio": totals["hits"] / lookups if lookups else 0.0,
            "capacity": sum(row["capacity"] for row in rows),
            "policy": self._config.policy,
            "shards": rows,
        }

    def _tag_summary(self, tag: str) -> tuple[int, int]:
        """Return how many live entries carry ``tag``, and their bytes, across all shards."""
        rows = self._broadcast("tag_summary", tag)
        return sum(row[0] for row in rows), sum(row[1] for row in rows)

    def resize(self, shards: int) -> None:
        """Change the number of shards, moving as few keys as possible.

        From then on the count is yours: the cache no longer grows as nodes join.

        Keys owned by a removed shard, and the few keys that change owner, become misses.
        """
        self._adopt(
            ray.get(self._router.resize.remote(validation.integer(shards, "shards", minimum=1)))
        )

    def shutdown(self) -> None:
        """Stop this cache's shards and router, freeing everything they hold.

        Shutting down a cache that is already gone does nothing.
        """
        try:
            ray.get(self._router.shutdown.remote())
        except SHARD_DOWN:
            for shard in self._shards.values():  # the router is gone: stop what it left
                ray.kill(shard, no_restart=True)
        ray.kill(self._router, no_restart=True)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the name, router and ring snapshot, so tasks attach with no calls."""
        near = None if self._near is None else NearCache(self._near.ttl)
        return _restore, (self._name, self._router, self._snapshot, near)

    def _forget(self, digest: bytes | None) -> None:
        """Drop this handle's near copy of ``digest``, or of everything for None."""
        if self._near is None:
            return
        if digest is None:
            self._near.clear()
        else:
            self._near.discard(digest)

    def __repr__(self) -> str:
        """Show the name, shard count and policy."""
        config = self._config
        return f"Cache({self._name!r}, shards={config.shards}, policy={config.policy!r})"

    # -- routing -----------------------------------------------------------------------

    def _adopt(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._ring = snapshot.ring
        self._shards = snapshot.shards
        self._config = snapshot.config

    def _refresh(self) -> None:
        try:
            self._adopt(ray.get(self._router.snapshot.remote()))
        except RayActorError:
            raise CacheNotFoundError(f"cache {self._name!r} has been shut down") from None

    def _call(
        self, digest: bytes, method: str, *args: Any, refresh_after: float | None = None
    ) -> Reply:
        for _ in range(_MAX_RING_REFRESHES):
            epoch = self._ring.epoch
            shard = self._shard_of(digest)
            try:
                request = pack_key_request(epoch, digest, refresh_after)
                call = getattr(shard, method).remote(request, *args)
                reply: Reply = ray.get(call)
            except SHARD_DOWN as error:
                # A crashed shard restarts under the same handle: a miss meanwhile. A
                # shard that is gone for good is replaced, and a newer ring routes there.
                if not (isinstance(error, SHARD_GONE) and self._ring_moved_past(epoch)):
                    return [MISS, None]
                continue
            if method == "lookup":
                reply = list(reply) if type(reply) is LookupReply else [INLINE, reply, call]
            if reply[0] != STALE:
                return reply
            self._ring_moved_past(epoch)
        return [MISS, None]

    def _load(
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
        reply = self._call(digest, "lookup", refresh_after=refresh_after)
        if reply[0] == MISS:
            return self._call(digest, "compute", Call.ship(job, args, kwargs, ttl, tags))
        if reply[0] in (HIT, REF) and len(reply) > 2:  # elected to refresh a stale entry
            request = pack_key_request(self._ring.epoch, digest)
            call = Call.ship(job, args, kwargs, ttl, tags)
            self._shard_of(digest).refresh.remote(request, call)
        return reply

    def _ring_moved_past(self, epoch: int) -> bool:
        self._refresh()
        return self._ring.epoch != epoch

    def _resolve(
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
        value = self._value(digest, reply, _ABSENT)
        return fn(*args, **kwargs) if value is _ABSENT else value

    def _value(self, digest: bytes, reply: Reply, default: Any) -> Any:
        if reply[0] in (HIT, INLINE):
            return reply[1]
        if reply[0] in _REFERENCES:
            return self._fetch_many({digest: reply[1][0]}).get(digest, default)
        return default

    def _fetch_many(self, refs: dict[bytes, ray.ObjectRef[Any]]) -> dict[bytes, Any]:
        if not refs:
            return {}
        try:
            return dict(zip(refs, ray.get(list(refs.values())), strict=True))
        except _CACHE_FAULTS:
            return self._fetch_each(refs)

    def _fetch_each(self, refs: dict[bytes, ray.ObjectRef[Any]]) -> dict[bytes, Any]:
        found = {}
        for digest, ref in refs.items():
            try:
                found[digest] = ray.get(ref)
            except _CACHE_FAULTS:
                self._report_lost(digest, ref)
        return found

    def _report_lost(self, digest: bytes, ref: ray.ObjectRef[Any]) -> None:
        logger.warning("cached object for %s was lost; recomputing", digest.hex())
        shard = self._shard_of(digest)
        with contextlib.suppress(*SHARD_DOWN):  # a dead shard starts again empty anyway
            ray.get(shard.report_lost.remote(digest, ref.hex()))

    def _fan_out(
        self,
        method: str,
        digests: list[bytes],
        per_group: Callable[[list[int]], tuple[Any, ...]],
        *args: Any,
    ) -> list[tuple[list[int], Reply]]:
        """Call ``method`` once per owning shard, concurrently; return each group's reply.

        A group is the list of indices, into ``digests``, of the keys one shard owns.
        Groups whose shard is down are left out: their keys are misses this time.
        """
        joined = b"".join(digests)
        points = key_points(joined)
        rows = np.frombuffer(joined, dtype=np.uint8).reshape(-1, DIGEST_SIZE)
        answered: list[tuple[list[int], Reply]] = []
        for _ in range(_MAX_RING_REFRESHES):
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

    def _shard_of(self, digest: bytes) -> Any:
        return self._shards[self._ring.owner_at(key_point(digest))]

    def _broadcast(self, method: str, *args: Any) -> list[Any]:
        """Call ``method`` on every shard; return the answers of those that are up.

        A shard gone for good has a replacement that only a newer ring knows of, so the
        call goes to it too: a clear or an invalidation must not skip it.
        """
        answers: dict[str, Any] = {}
        for _ in range(_MAX_RING_REFRESHES):
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


class _Absent:
    """Marks a value that could not be had from the cache."""


_ABSENT = _Absent()


def _nothing(group: list[int]) -> tuple[()]:
    return ()


def _gather(
    calls: list[tuple[list[int], ray.ObjectRef[Any]]],
) -> tuple[list[tuple[list[int], Reply]], bool]:
    """Wait for every call; return the answers, and whether a newer ring may route better."""
    answered = []
    retry = False
    for group, call in calls:
        try:
            reply: Reply = ray.get(call)
        except SHARD_DOWN as error:
            retry |= isinstance(error, SHARD_GONE)
            continue
        if reply[0] == STALE:
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


def _near_cache(ttl: float | None) -> NearCache | None:
    seconds = validation.seconds(ttl, "near_cache_ttl")
    return None if seconds is None else NearCache(seconds)


def _start_router(name: str, config: CacheConfig) -> Any:
    return (
        ray.remote(Router)
        .options(
            name=router_name(name),
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_concurrency=ROUTER_CONCURRENCY,
            num_cpus=0,
            resources={HEAD_NODE_RESOURCE: 0.001},
        )
        .remote(name, config)
    )


def _restore(name: str, router: Any, snapshot: Snapshot, near: NearCache | None) -> Cache:
    cache = Cache.__new__(Cache)
    cache._name = name
    cache._near = near
    cache._router = router
    cache._adopt(snapshot)
    return cache


def _resolve_config(requested: dict[str, Any]) -> CacheConfig:
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]

    return CacheConfig(
        shards=requested["shards"] or max(MIN_SHARDS, len(alive_nodes())),
        per_node=requested["shards"] is None,
        capacity=parse_capacity(
            requested["capacity"], object_store_bytes=int(resources.get("object_store_memory", 0))
        ),
        policy=requested["policy"],
        ttl=requested["ttl"],
    )


def _warn_on_conflict(
    name: str, requested: dict[str, Any], resolved: CacheConfig, config: CacheConfig
) -> None:
    explicit = {k for k, v in requested.items() if v is not None and k != "policy"}
    if requested["policy"] != DEFAULT_POLICY:
        explicit.add("policy")
    differing = [k for k in sorted(explicit) if getattr(resolved, k) != getattr(config, k)]
    if differing:
        running = ", ".join(f"{k}={getattr(config, k)!r}" for k in differing)
        warnings.warn(
            f"cache {name!r} is already running with {running}; the running settings apply",
            stacklevel=3,
        )


def _raise_if_too_large(reply: Reply) -> None:
    if reply[0] == TOO_LARGE:
        size, capacity = reply[1]
        raise EntryTooLargeError(size, capacity)
