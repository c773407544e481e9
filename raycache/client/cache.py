"""``raycache.Cache``: the client handle, a plain Python object over a cache's actors.

The handle holds a snapshot of the cache's ring, so every operation goes straight to the
shard that owns the key, in one actor round trip, through its
:class:`~raycache.client.shard_client.ShardClient`. Arguments are checked here, before
anything is sent. Faults of the cache itself (a dead shard, a lost object) are counted and
treated as misses: they never reach the caller as exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import ray
from ray.remote_function import RemoteFunction

from raycache.actors.compute import Job
from raycache.actors.router import Snapshot
from raycache.actors.shard import SHARD_DOWN
from raycache.actors.vault import drop_everywhere, ship, wait_dropped
from raycache.client import connect
from raycache.client.loader import load_here
from raycache.client.shard_client import ABSENT, ShardClient
from raycache.core import validation
from raycache.core.config import CacheConfig
from raycache.core.frames import warn_if_unpickled_on_hit
from raycache.core.hotkeys import NearCache
from raycache.core.keys import key_digest
from raycache.core.protocol import Code, Reply
from raycache.core.store import DEFAULT_POLICY
from raycache.errors import EntryTooLargeError

T = TypeVar("T")

_STAT_TOTALS = ("hits", "misses", "evictions", "expirations", "entries", "bytes")


class Cache:
    """A named, cluster-wide cache. Get-or-create: the same name gives the same cache.

    ``capacity`` is the byte budget across all shards: an int, a size such as ``"8GiB"``
    or ``"512MB"``, or a share of the object store such as ``"30%"`` (the default is 30%).
    ``policy`` names an eviction policy of :data:`raycache.POLICIES`; the default,
    ``"adaptive"``, suits every workload measured, and ``"lru"``, ``"lfu"``, ``"fifo"``,
    ``"gdsf"`` (cost-aware) and ``"tinylfu"`` are there for those who want them.
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
        requested = connect.requested_settings(shards, capacity, policy, ttl)
        self._client = connect.create(name, requested)

    @classmethod
    def attach(cls, name: str = "default", *, near_cache_ttl: float | None = None) -> Cache:
        """Return a handle on the running cache ``name``; raise if there is none."""
        validation.name(name)
        near = _near_cache(near_cache_ttl)
        return _restore(connect.attach(name), near)

    @property
    def name(self) -> str:
        """The cache's name, shared by every handle on it."""
        return self._name

    @property
    def config(self) -> CacheConfig:
        """The settings the cache runs with."""
        return self._client.config

    @property
    def shard_client(self) -> ShardClient:
        """The internal API this handle reaches its shards through (see its module)."""
        return self._client

    # -- single keys -------------------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        """Return the value under ``key``, or ``default`` if it is absent or unreadable."""
        digest = key_digest(key)
        if self._near is not None:
            value = self._near.get(digest, ABSENT)
            if value is not ABSENT:
                return value
        reply = self._client.call(digest, "get")
        value = self._client.value(digest, reply)
        if value is ABSENT:
            return default
        if self._near is not None and reply.hot:
            self._near.put(digest, value)
        return value

    def get_ref(self, key: Any) -> ray.ObjectRef[Any] | None:
        """Return an ObjectRef to the value under ``key``, or None on a miss.

        Large values come back as the shard's own reference, with nothing copied; small
        ones are put in the object store by this call.
        """
        reply = self._client.call(key_digest(key), "get")
        if reply.code == Code.REF:
            ref: ray.ObjectRef[Any] = reply.reference
            return ref
        return ray.put(reply.payload) if reply.code == Code.HIT else None

    def put(
        self, key: Any, value: Any, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Store ``value`` under ``key``.

        Raises :class:`~raycache.errors.EntryTooLargeError` if the value exceeds the byte
        budget of the shard that owns the key.
        """
        digest = key_digest(key)
        seconds = validation.seconds(ttl, "ttl")
        checked_tags = validation.strings(tags, "tags")
        self._forget(digest)
        warn_if_unpickled_on_hit(value, "the value for", key)
        _raise_if_too_large(self._client.call(digest, "put", ship(value), seconds, checked_tags))

    def delete(self, key: Any) -> bool:
        """Remove ``key``; return whether it was present."""
        digest = key_digest(key)
        self._forget(digest)
        return bool(self._client.call(digest, "delete").payload)

    def __contains__(self, key: Any) -> bool:
        """Return whether ``key`` holds an unexpired value, without counting a hit."""
        return bool(self._client.call(key_digest(key), "contains").payload)

    def get_or_compute(
        self, key: Any, fn: Callable[..., T], *args: Any, ttl: float | None = None, **kwargs: Any
    ) -> T:
        """Return the value under ``key``, computing ``fn(*args, **kwargs)`` on a miss.

        ``fn`` runs here, in the caller, so it may use this process's connections, locks
        or models. Concurrent callers of the same missing key, anywhere in the cluster,
        share one computation: one caller runs ``fn`` and the others wait for its value.
        If that caller dies, another takes over. An exception raised by ``fn`` reaches
        every waiting caller and nothing is cached. If the cache itself fails, ``fn``
        runs here and its value is returned. A ``@ray.remote`` function runs as a task
        on the cluster instead.
        """
        digest = key_digest(key)
        seconds = validation.seconds(ttl, "ttl")
        if isinstance(fn, RemoteFunction):  # a task: it runs on the cluster, as asked
            reply = self._client.load(digest, Job.of(fn), args, kwargs, ttl=seconds)
            computed: T = self._client.resolve(digest, reply, fn, args, kwargs)
            return computed
        value: T = load_here(self._client, digest, fn, args, kwargs, ttl=seconds).value
        return value

    # -- many keys ---------------------------------------------------------------------

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        """Return ``{key: value}`` for the keys present; missing keys are omitted.

        Issues one call per shard, all at once.
        """
        by_digest = {key_digest(key): key for key in keys}
        digests, wanted = list(by_digest), list(by_digest.values())
        found: dict[Any, Any] = {}
        refs: dict[bytes, ray.ObjectRef[Any]] = {}
        for indices, reply in self._client.fan_out("get_many", digests, _nothing):
            codes, payloads = reply.payload
            if codes.count(Code.HIT) == len(codes):
                found.update(zip([wanted[i] for i in indices], payloads, strict=True))
                continue
            for i, code, payload in zip(indices, codes, payloads, strict=True):
                if code == Code.HIT:
                    found[wanted[i]] = payload
                elif code == Code.REF:
                    refs[digests[i]] = payload[0]
        for digest, value in self._client.fetch_many(refs).items():
            found[by_digest[digest]] = value
        return found

    def put_many(self, mapping: Mapping[Any, Any], *, ttl: float | None = None) -> None:
        """Store every item of ``mapping``, with one call per shard, all at once."""
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"put_many takes a mapping of keys to values, got {type(mapping).__name__}"
            )
        seconds = validation.seconds(ttl, "ttl")
        digests = [key_digest(key) for key in mapping]
        values = list(mapping.values())
        for digest in digests:
            self._forget(digest)
        for key, value in mapping.items():
            warn_if_unpickled_on_hit(value, "the value for", key)

        def values_of(indices: list[int]) -> tuple[list[Any]]:
            return ([ship(values[i]) for i in indices],)

        for _, reply in self._client.fan_out("put_many", digests, values_of, seconds, ()):
            _raise_if_too_large(reply)

    # -- whole cache -------------------------------------------------------------------

    def invalidate_tag(self, tag: str) -> int:
        """Remove every entry put with ``tag``; return how many were removed."""
        (tag,) = validation.strings((tag,), "tags")
        self._forget(None)
        return sum(self._client.broadcast("invalidate_tag", tag))

    def clear(self) -> None:
        """Remove every entry of this cache."""
        self._forget(None)
        self._client.broadcast("clear")

    def stats(self) -> dict[str, Any]:
        """Return counters across all shards, with one row per shard under ``"shards"``."""
        rows = sorted(self._client.broadcast("stats"), key=lambda row: row["shard"])
        totals = {field: sum(row[field] for row in rows) for field in _STAT_TOTALS}
        lookups = totals["hits"] + totals["misses"]
        return {
            "name": self._name,
            **totals,
            "hit_ratio": totals["hits"] / lookups if lookups else 0.0,
            "capacity": sum(row["capacity"] for row in rows),
            "policy": self.config.policy,
            "shards": rows,
        }

    def resize(self, shards: int) -> None:
        """Change the number of shards, moving as few keys as possible.

        From then on the count is yours: the cache no longer grows as nodes join.

        Keys owned by a removed shard, and the few keys that change owner, become misses.
        """
        count = validation.integer(shards, "shards", minimum=1)
        self._client.adopt(ray.get(self._client.router.resize.remote(count)))

    def shutdown(self) -> None:
        """Stop this cache's shards and router, freeing everything they hold.

        Shutting down a cache that is already gone does nothing.
        """
        router = self._client.router
        try:
            ray.get(router.shutdown.remote())
        except SHARD_DOWN:
            for shard in self._client.shards.values():  # the router is gone: stop what it left
                ray.kill(shard, no_restart=True)
            wait_dropped(drop_everywhere(self._name))
        ray.kill(router, no_restart=True)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the name, router and ring snapshot, so tasks attach with no calls."""
        near = None if self._near is None else NearCache(self._near.ttl)
        client = self._client
        return _unpickle, (self._name, client.router, client.snapshot, near)

    def __repr__(self) -> str:
        """Show the name, shard count and policy."""
        config = self.config
        return f"Cache({self._name!r}, shards={config.shards}, policy={config.policy!r})"

    def _forget(self, digest: bytes | None) -> None:
        """Drop this handle's near copy of ``digest``, or of everything for None."""
        if self._near is None:
            return
        if digest is None:
            self._near.clear()
        else:
            self._near.discard(digest)


def _nothing(group: list[int]) -> tuple[()]:
    return ()


def _near_cache(ttl: float | None) -> NearCache | None:
    seconds = validation.seconds(ttl, "near_cache_ttl")
    return None if seconds is None else NearCache(seconds)


def _unpickle(name: str, router: Any, snapshot: Snapshot, near: NearCache | None) -> Cache:
    return _restore(ShardClient(name, router, snapshot), near)


def _restore(client: ShardClient, near: NearCache | None) -> Cache:
    cache = Cache.__new__(Cache)
    cache._name = client.name
    cache._near = near
    cache._client = client
    return cache


def _raise_if_too_large(reply: Reply) -> None:
    if reply.code == Code.TOO_LARGE:
        size, capacity = reply.payload
        raise EntryTooLargeError(size, capacity)
