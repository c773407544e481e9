"""``raycache.Cache``: the client handle, a plain Python object over a cache's actors.

The handle holds a snapshot of the cache's ring, so every operation goes straight to the
shard that owns the key, in one actor round trip, through its
:class:`~raycache.client.shard_client.ShardClient`. Each method takes the steps that
:mod:`~raycache.client.handle` writes once for this handle and
:class:`~raycache.AsyncCache`, blocking its thread until they are done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import ray

from raycache.client import connect
from raycache.client.handle import (
    AttachOptions,
    CacheHandle,
    Connection,
    Settings,
    checked_attach,
    connected,
)
from raycache.client.steps import run

if TYPE_CHECKING:  # Unpack is in typing from Python 3.11
    from typing_extensions import Unpack

T = TypeVar("T")


class Cache(CacheHandle):
    """A named, cluster-wide cache. Get-or-create: the same name gives the same cache.

    ``capacity`` is the byte budget across all shards: an int, a size such as ``"8GiB"``
    or ``"512MB"``, or a share of the object store such as ``"30%"`` (the default is 30%).
    ``policy`` names an eviction policy of :data:`raycache.POLICIES`; the default,
    ``"adaptive"``, suits every workload measured, and ``"lru"``, ``"lfu"``, ``"fifo"``,
    ``"gdsf"`` (cost-aware) and ``"tinylfu"`` are there for those who want them.
    ``ttl`` is the default time to live, in seconds, of every entry.

    ``near_cache=True`` keeps the values this handle reads in its own process, and
    serves repeated reads from there with a dictionary lookup. It stays coherent: the
    shards track what each process holds and push an invalidation when a key is written,
    deleted, evicted, invalidated by tag or cleared, or when the cache is resized, and a
    copy ends with its entry's TTL. A read never returns a value older than one this
    process has already returned; another process's write reaches it within
    milliseconds, the time the push takes. Handles of one cache in one process share the
    near cache. ``near_cache_capacity`` bounds it in bytes (default 64 MiB; a large
    value held by reference costs its reference), and ``near_cache_ttl`` bounds how long
    a copy is kept, in seconds; either turns it on. Off by default.

    ``timeout`` bounds, in seconds, how long a read (``get``, ``get_many``, ``in``, and
    the lookup of ``get_or_compute``) waits for a shard that is down, restarting or
    swamped: after that it is a miss, and this handle avoids that shard until it answers
    again. The default is 0.25 s, or the environment variable ``RAYCACHE_TIMEOUT``.

    ``storage`` adds a durable tier: a directory, a URL (``s3://bucket/prefix``,
    ``gs://``, ``file://``, ...) or a filesystem object, or a ``(filesystem, path)`` pair.
    Every entry is also written there in the background, and a memory miss looks there,
    so cached values outlive the cluster. Without it the environment variable
    ``RAYCACHE_STORAGE`` applies, and without either the cache lives in memory only.
    ``storage_capacity`` bounds the files as ``capacity`` bounds memory, as the disk
    counts them (a percentage is of the storage volume). An unusable value raises
    ``ValueError`` here.

    The storage is a trust boundary: values are unpickled from it. ``storage_key``
    (bytes or str, at least 16 bytes; else ``RAYCACHE_STORAGE_KEY``) signs every file
    with a keyed MAC, and a file the key did not sign is a miss, counted in
    ``storage_rejected``, and never decoded. Without a key, a storage that others may
    write is warned about. Files are private to this user (``0600`` in ``0700``
    folders); ``storage_shared=True`` opens them to the group, for a shared filesystem.

    ``elastic=True`` suits a cluster whose workers come and go, under an autoscaler: the
    cache keeps the number of shards it starts with (on the nodes up then, such as the
    head) rather than one per node, and a value a memoized task computes on a worker is
    copied onto its shard's node once computed, so that the worker holds nothing of the
    cache and the autoscaler removes it when it is idle. By default a node that holds
    cached values is busy to the autoscaler, and stays. Either way, a node that Ray
    drains (a spot preemption, or the autoscaler) hands what it holds to live nodes
    before its deadline.

    When the cache already exists, its running settings win; settings given here that
    differ are reported with a warning.
    """

    def _connect(self, settings: Settings) -> Connection:
        return connected(connect.create(settings.name, settings.requested, settings.timeout))

    @classmethod
    def attach(cls, name: str = "default", **options: Unpack[AttachOptions]) -> Cache:
        """Return a handle on the running cache ``name``; raise if there is none.

        ``options`` are the constructor's near-cache options and ``timeout``
        (:class:`~raycache.client.handle.AttachOptions`).
        """
        settings = checked_attach(name, **options)
        return cls._of(connect.attach(settings.name, settings.timeout), settings.near)

    # -- single keys -------------------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        """Return the value under ``key``, or ``default`` if it is absent or unreadable."""
        return run(self._get(key, default))

    def get_ref(self, key: Any) -> ray.ObjectRef[Any] | None:
        """Return an ObjectRef to the value under ``key``, or None on a miss.

        Large values come back as the shard's own reference, with nothing copied; small
        ones are put in the object store by this call.
        """
        return run(self._get_ref(key))

    def put(
        self, key: Any, value: Any, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Store ``value`` under ``key``.

        Raises :class:`~raycache.errors.EntryTooLargeError` if the value exceeds the byte
        budget of the shard that owns the key.
        """
        run(self._put(key, value, ttl, tags))

    def delete(self, key: Any) -> bool:
        """Remove ``key``; return whether it was present."""
        return run(self._delete(key))

    def __contains__(self, key: Any) -> bool:
        """Return whether ``key`` holds an unexpired value, without counting a hit."""
        return run(self._contains(key))

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
        value: T = run(self._get_or_compute(key, fn, args, kwargs, ttl))
        return value

    # -- many keys ---------------------------------------------------------------------

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        """Return ``{key: value}`` for the keys present; missing keys are omitted.

        Issues one call per shard, all at once.
        """
        return run(self._get_many(keys))

    def put_many(self, mapping: Mapping[Any, Any], *, ttl: float | None = None) -> None:
        """Store every item of ``mapping``, with one call per shard, all at once."""
        run(self._put_many(mapping, ttl))

    def get_or_compute_many(
        self,
        keys: Iterable[Any],
        fn: Callable[[list[Any]], Mapping[Any, Any]],
        *,
        ttl: float | None = None,
    ) -> dict[Any, Any]:
        """Return ``{key: value}`` for ``keys``, computing the missing ones with one ``fn`` call.

        ``fn(missing_keys)`` runs once, here, on every key this call must compute, and
        returns a mapping from key to value: one query for a batch, not one per key.
        The keys are leased together, one request per shard, so that concurrent callers
        anywhere in the cluster compute each key once; keys another caller is computing
        are waited for. An exception raised by ``fn`` reaches the waiters too, and
        nothing is cached. Keys ``fn`` leaves out are left out of the answer.
        """
        found: dict[Any, Any] = run(self._get_or_compute_many(keys, fn, ttl))
        return found

    def delete_many(self, keys: Iterable[Any]) -> int:
        """Remove every key of ``keys``; return how many were present.

        Issues one call per shard, all at once.
        """
        return run(self._delete_many(keys))

    # -- whole cache -------------------------------------------------------------------

    def invalidate_tag(self, tag: str) -> int:
        """Remove every entry put with ``tag``; return how many were removed."""
        return run(self._invalidate_tag(tag))

    def clear(self) -> None:
        """Remove every entry of this cache."""
        run(self._clear())

    def flush(self) -> None:
        """Return once every storage write and removal queued so far is done.

        Writes to storage happen in the background; scripts and tests call this rather
        than sleep. Without storage it returns at once.
        """
        run(self._flush())

    def stats(self) -> dict[str, Any]:
        """Return counters across all shards, with one row per shard under ``"shards"``."""
        return run(self._stats())

    def resize(self, shards: int) -> None:
        """Change the number of shards, moving as few keys as possible.

        From then on the count is yours: the cache no longer grows as nodes join.

        Keys owned by a removed shard, and the few keys that change owner, become misses.
        """
        run(self._resize(shards))

    def shutdown(self) -> None:
        """Stop this cache's shards and router, freeing everything they hold.

        Shutting down a cache that is already gone does nothing.
        """
        run(self._shutdown())
