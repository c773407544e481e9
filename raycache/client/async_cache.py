"""``raycache.AsyncCache``: the client handle for asyncio code (Ray Serve, async actors).

It takes :class:`~raycache.Cache`'s arguments and has its methods, each a coroutine that
awaits its ObjectRefs instead of blocking on ``ray.get``, so the event loop keeps serving
while a call is in flight. The steps of every method are :mod:`~raycache.client.handle`'s,
shared with ``Cache``: the same checks, routing, retries, and faults taken as misses.
What it adds is batching: gets that many coroutines make in one tick of the loop go out
as one ``get_many`` per shard (:mod:`~raycache.client.batcher`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import ray

from raycache.client import connect
from raycache.client.batcher import GetBatcher
from raycache.client.handle import AttachOptions, CacheHandle, Connection, Settings, checked_attach
from raycache.client.near import NearSettings
from raycache.client.shard_client import ShardClient
from raycache.client.steps import Steps, Wait, run_async
from raycache.core.protocol import Reply

if TYPE_CHECKING:  # Unpack is in typing from Python 3.11
    from typing_extensions import Unpack

T = TypeVar("T")


class AsyncCache(CacheHandle):
    """A named, cluster-wide cache whose every method is a coroutine; see :class:`Cache`.

    ``AsyncCache(name, ...)`` takes ``Cache``'s arguments and checks them at once. It
    then starts or joins the cache on a thread of its own, so that constructing it in
    an event loop (in a Serve replica's ``__init__``, say) does not block the loop; the
    first method awaited waits for that connection, and ``await acache.connect()`` waits
    for it explicitly. ``await AsyncCache.attach(name)`` joins a running cache, raising
    :class:`~raycache.errors.CacheNotFoundError` if there is none. If Ray is not yet
    started, either starts it first, in the caller's thread.

    ``key in acache`` cannot be awaited: use ``await acache.contains(key)``. Concurrent
    gets of one event loop are sent together, as one ``get_many`` per shard for each tick
    of the loop; set :attr:`batching` to False to send each on its own. With a near cache
    (``near_cache=True``), gets are served from it, and those it misses are batched.
    """

    batching: bool
    """Whether concurrent gets are sent together (the default), or each on its own."""

    def _connect(self, settings: Settings) -> Connection:
        name, requested, timeout = settings.name, settings.requested, settings.timeout
        return connect.in_background(connect.create, name, requested, timeout)

    def _setup(self, name: str, near: NearSettings | None, connection: Connection) -> None:
        super()._setup(name, near, connection)
        self.batching = True
        self._batcher: GetBatcher | None = None

    @classmethod
    async def attach(cls, name: str = "default", **options: Unpack[AttachOptions]) -> AsyncCache:
        """Return a handle on the running cache ``name``; raise if there is none.

        ``options`` are :meth:`Cache.attach`'s.
        """
        settings = checked_attach(name, **options)
        joining = connect.in_background(connect.attach, settings.name, settings.timeout)
        return cls._of(await asyncio.wrap_future(joining), settings.near)

    async def connect(self) -> AsyncCache:
        """Wait until this handle has started or joined its cache; return it."""
        await run_async(self._ready())
        return self

    # -- single keys -------------------------------------------------------------------

    async def get(self, key: Any, default: Any = None) -> Any:
        """Return the value under ``key``, or ``default`` if it is absent or unreadable."""
        return await run_async(self._get(key, default))

    async def get_ref(self, key: Any) -> ray.ObjectRef[Any] | None:
        """Return an ObjectRef to the value under ``key``, or None on a miss."""
        return await run_async(self._get_ref(key))

    async def put(
        self, key: Any, value: Any, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Store ``value`` under ``key``; raise ``EntryTooLargeError`` if it cannot fit."""
        await run_async(self._put(key, value, ttl, tags))

    async def delete(self, key: Any) -> bool:
        """Remove ``key``; return whether it was present."""
        return await run_async(self._delete(key))

    async def contains(self, key: Any) -> bool:
        """Return whether ``key`` holds an unexpired value, without counting a hit."""
        return await run_async(self._contains(key))

    def __contains__(self, key: Any) -> bool:
        """Refuse ``in``, which cannot wait for the shard without blocking the loop."""
        raise TypeError("`key in acache` cannot be awaited: use `await acache.contains(key)`")

    async def get_or_compute(
        self, key: Any, fn: Callable[..., Any], *args: Any, ttl: float | None = None, **kwargs: Any
    ) -> Any:
        """Return the value under ``key``, computing ``fn(*args, **kwargs)`` here on a miss.

        ``fn`` may be a coroutine function, awaited in this event loop, or a plain one,
        called in it. As for :meth:`Cache.get_or_compute`, concurrent callers anywhere in
        the cluster share one computation, and an exception ``fn`` raises reaches them all.
        """
        return await run_async(self._get_or_compute(key, fn, args, kwargs, ttl))

    # -- many keys ---------------------------------------------------------------------

    async def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        """Return ``{key: value}`` for the keys present, with one call per shard."""
        return await run_async(self._get_many(keys))

    async def put_many(self, mapping: Mapping[Any, Any], *, ttl: float | None = None) -> None:
        """Store every item of ``mapping``, with one call per shard, all at once."""
        await run_async(self._put_many(mapping, ttl))

    async def get_or_compute_many(
        self,
        keys: Iterable[Any],
        fn: Callable[[list[Any]], Any],
        *,
        ttl: float | None = None,
    ) -> dict[Any, Any]:
        """Like :meth:`Cache.get_or_compute_many`; ``fn`` may be a coroutine function."""
        found: dict[Any, Any] = await run_async(self._get_or_compute_many(keys, fn, ttl))
        return found

    async def delete_many(self, keys: Iterable[Any]) -> int:
        """Remove every key of ``keys``; return how many were present."""
        return await run_async(self._delete_many(keys))

    # -- whole cache -------------------------------------------------------------------

    async def invalidate_tag(self, tag: str) -> int:
        """Remove every entry put with ``tag``; return how many were removed."""
        return await run_async(self._invalidate_tag(tag))

    async def clear(self) -> None:
        """Remove every entry of this cache."""
        await run_async(self._clear())

    async def flush(self) -> None:
        """Return once every storage write and removal queued so far is done."""
        await run_async(self._flush())

    async def stats(self) -> dict[str, Any]:
        """Return counters across all shards, with one row per shard under ``"shards"``."""
        return await run_async(self._stats())

    async def resize(self, shards: int) -> None:
        """Change the number of shards, moving as few keys as possible."""
        await run_async(self._resize(shards))

    async def shutdown(self) -> None:
        """Stop this cache's shards and router; a cache already gone is left as it is."""
        await run_async(self._shutdown())

    # -- batching ----------------------------------------------------------------------

    def _get_reply(self, client: ShardClient, digest: bytes) -> Steps[Reply]:
        if not self.batching:
            return super()._get_reply(client, digest)
        return self._batched(client, digest)

    def _batched(self, client: ShardClient, digest: bytes) -> Steps[Reply]:
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.loop is not loop:
            self._batcher = GetBatcher(client, loop, self._reader)
        replies: list[Reply] = yield Wait([self._batcher.reply(digest)])
        return replies[0]
