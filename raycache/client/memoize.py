"""``@raycache.memoize``: compute each distinct call once, cluster-wide.

On a ``@ray.remote`` function, ``f.remote(...)`` returns an ObjectRef whose value is the
undecorated task's. A hit costs one actor round trip and returns the cache's own
reference, so nothing is copied; a miss has the vault of the key's shard's node start the
task, so the result outlives the driver that asked first, and the shard too. On a plain
function, the call returns the value, computed in the caller on a miss. On an ``async def``
function, the call returns a coroutine: awaiting it gives the value (never a coroutine,
which is all that would be cached otherwise), computed in the caller's event loop on a
miss, while the cache is reached without blocking that loop.

A call is keyed by the function's fingerprint (its code, constants, closure, defaults
and ``version``) and its arguments bound by signature. DataFrames, Arrow tables and
numpy arrays are hashed by content; an ObjectRef that raycache produced is keyed by the
call it came from, without hashing any data.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, overload

import ray
from ray.actor import ActorClass
from ray.exceptions import RayError
from ray.remote_function import RemoteFunction

from raycache.actors.compute import Job
from raycache.client import connect
from raycache.client.cache import Cache
from raycache.client.lineage import LINEAGE
from raycache.client.loader import load_here
from raycache.client.steps import Invoke, Steps, run, run_async
from raycache.core import validation
from raycache.core.fingerprint import (
    bind_arguments,
    call_digest,
    check_ignore,
    function_fingerprint,
)
from raycache.core.hashing import hash_value
from raycache.core.keys import key_digest
from raycache.core.protocol import Code, Reply
from raycache.errors import RaycacheError

logger = logging.getLogger(__name__)

_CACHE_LAYER_FAULTS = (RaycacheError, RayError)

RUN_ON = ("caller", "cluster")
"""Where a plain memoized function runs on a miss."""
_LINEAGE_TAG = b"lineage:"
_CONTENT_TAG = b"content:"
_SEQUENCE_TAG = b"sequence:"


@dataclass(frozen=True)
class CacheInfo:
    """Counters of one memoized function, in the manner of ``functools.lru_cache``.

    ``hits``, ``misses`` and ``merged`` (calls that joined a computation already in
    flight) count this process's calls; ``currsize`` and ``bytes`` are the function's
    entries across the whole cache.
    """

    hits: int
    misses: int
    merged: int
    currsize: int
    bytes: int


@dataclass(frozen=True)
class _Settings:
    cache: Cache | str | None
    ttl: float | None
    refresh_after: float | None
    version: Any
    ignore: frozenset[str]
    run_on: str


_COUNTED = {"hit": "hits", "miss": "misses", "merged": "merged"}


def _how(reply: Reply) -> str:
    if reply.code == Code.PENDING:
        return "merged"
    return "miss" if reply.code in (Code.MISS, Code.COMPUTING) else "hit"


class _Counters:
    """Hit, miss and merged counts of one memoized function, in this process."""

    def __init__(self) -> None:
        self.hits = self.misses = self.merged = 0
        self._lock = threading.Lock()

    def count(self, how: str) -> None:
        """Count one call that was a ``"hit"``, a ``"miss"`` or ``"merged"``."""
        with self._lock:
            setattr(self, _COUNTED[how], getattr(self, _COUNTED[how]) + 1)

    def __reduce__(self) -> tuple[Any, ...]:
        return _Counters, ()  # counts belong to the process that made the calls


@overload
def memoize(fn: Any, /) -> Any: ...


@overload
def memoize(
    *,
    cache: Cache | str | None = None,
    ttl: float | None = None,
    refresh_after: float | None = None,
    version: Any = None,
    ignore: Iterable[str] = (),
    run_on: str = "caller",
) -> Callable[[Any], Any]: ...


def memoize(
    fn: Any = None,
    /,
    *,
    cache: Cache | str | None = None,
    ttl: float | None = None,
    refresh_after: float | None = None,
    version: Any = None,
    ignore: Iterable[str] = (),
    run_on: str = "caller",
) -> Any:
    """Memoize a ``@ray.remote`` function or a plain function across the cluster.

    Use it bare (``@raycache.memoize``) or with options. ``cache`` is a :class:`Cache`
    or a cache name (default ``"default"``, created on first use). ``ttl`` bounds an
    entry's life; ``refresh_after`` serves an older entry at once while one background
    recompute refreshes it (stale-while-revalidate). ``version`` is mixed into the key,
    for changes the code does not show; ``ignore`` names parameters left out of it.

    On a miss, a plain function runs in the caller (``run_on="caller"``, the default),
    so it may use the caller's connections, locks, files or models; concurrent callers
    anywhere in the cluster wait for that one computation. ``run_on="cluster"`` runs it
    as a Ray task instead, as a ``@ray.remote`` function always is.

    An ``async def`` function stays one: ``await f(x)`` gives the value, and on a miss
    the function runs in the caller's event loop. ``f.invalidate``, ``f.clear`` and
    ``f.cache_info`` are plain methods on every kind of function: each waits for one
    round trip, so call them from a thread (``asyncio.to_thread``) in a busy event loop.
    """
    settings = _Settings(
        cache=_checked_cache(cache),
        ttl=validation.seconds(ttl, "ttl"),
        refresh_after=validation.seconds(refresh_after, "refresh_after"),
        version=version,
        ignore=frozenset(validation.strings(ignore, "ignore")),
        run_on=validation.choice(run_on, RUN_ON, "run_on"),
    )
    if fn is None:
        return functools.partial(_decorate, settings=settings)
    return _decorate(fn, settings=settings)


def _decorate(fn: Callable[..., Any] | RemoteFunction, *, settings: _Settings) -> Any:
    if isinstance(fn, RemoteFunction):
        return MemoizedRemoteFunction(fn, settings)
    if isinstance(fn, (ActorClass, type)):
        raise TypeError("@raycache.memoize decorates functions, not classes or actors")
    if not callable(fn):
        raise TypeError(f"@raycache.memoize needs a function, got {type(fn).__name__}")
    if inspect.iscoroutinefunction(fn):
        return MemoizedAsyncFunction(fn, settings)
    return MemoizedFunction(fn, settings)


class _Memoized:
    """What both kinds of memoized function share: keys, the cache, and bookkeeping."""

    def __init__(self, fn: Callable[..., Any], job: Job, settings: _Settings) -> None:
        self._fn = fn
        self._job = job
        self._settings = settings
        self._ignore = check_ignore(fn, settings.ignore)
        self._fingerprint = function_fingerprint(fn, settings.version)
        self._tag = f"memoize:{fn.__module__}.{fn.__qualname__}"
        self._counters = _Counters()
        self._resolved: Cache | None = settings.cache if isinstance(settings.cache, Cache) else None
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Drop the cached result of ``self(*args, **kwargs)``; return whether there was one."""
        return self._cache().delete(self._key(args, kwargs))

    def clear(self) -> int:
        """Drop every cached result of this function; return how many."""
        return self._cache().invalidate_tag(self._tag)

    def cache_info(self) -> CacheInfo:
        """Return this function's hit, miss and merged counts and its cached size."""
        entries, size = run(self._cache().shard_client.tag_summary(self._tag))
        c = self._counters
        return CacheInfo(c.hits, c.misses, c.merged, entries, size)

    def _key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        bound = bind_arguments(self._fn, args, kwargs, self._ignore)
        return call_digest(
            self._fingerprint, bound, _hash_argument, function_name=self._fn.__qualname__
        )

    def _load(
        self, key: bytes, job: Job, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Steps[Reply]:
        """Return the shard's reply for ``key``, or MISS if the cache itself is unusable."""
        try:
            reply = yield from self._cache().shard_client.load(
                key_digest(key),
                job,
                args,
                kwargs,
                ttl=self._settings.ttl,
                tags=(self._tag,),
                refresh_after=self._settings.refresh_after,
            )
        except _CACHE_LAYER_FAULTS as error:
            logger.warning("raycache unavailable (%s); running %s uncached", error, self._tag)
            return Reply(Code.MISS)
        self._counters.count(_how(reply))
        return reply

    def _cache(self) -> Cache:
        if self._resolved is None:
            name = self._settings.cache if isinstance(self._settings.cache, str) else "default"
            self._resolved = shared_handle(name)
        return self._resolved

    def _usable_cache(self) -> Cache | None:
        """Return the cache, or None (with a warning) if it cannot be reached."""
        try:
            return self._cache()
        except _CACHE_LAYER_FAULTS as error:
            logger.warning("raycache unavailable (%s); running %s uncached", error, self._tag)
            return None

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Steps[Any]:
        """Return ``fn(*args, **kwargs)``, from the cache when this call was made before."""
        key = self._key(args, kwargs)
        cache = self._usable_cache()
        if cache is None:
            return (yield Invoke(self._fn, args, kwargs))
        client = cache.shard_client
        if self._settings.run_on == "cluster":
            reply = yield from self._load(key, self._job, args, kwargs)
            return (yield from client.resolve(key_digest(key), reply, self._fn, args, kwargs))
        loaded = yield from load_here(
            client,
            key_digest(key),
            self._fn,
            args,
            kwargs,
            ttl=self._settings.ttl,
            tags=(self._tag,),
            refresh_after=self._settings.refresh_after,
        )
        self._counters.count(loaded.how)
        return loaded.value


class MemoizedFunction(_Memoized):
    """A plain function memoized across the cluster; calling it returns the value."""

    def __init__(self, fn: Callable[..., Any], settings: _Settings) -> None:
        super().__init__(fn, Job.of(fn), settings)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Return ``fn(*args, **kwargs)``, from the cache when this call was made before."""
        return run(self._call(args, kwargs))


class MemoizedAsyncFunction(_Memoized):
    """An ``async def`` function memoized across the cluster; awaiting a call gives the value.

    Concurrent awaits of one missing call, here or anywhere in the cluster, run the
    function once; an exception it raises reaches every one of them.
    """

    def __init__(self, fn: Callable[..., Any], settings: _Settings) -> None:
        super().__init__(fn, Job.of(fn), settings)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Return ``await fn(*args, **kwargs)``, from the cache when this call was made before."""
        if self._resolved is None:  # the first call finds or starts the cache off the loop
            await asyncio.wrap_future(connect.in_background(self._usable_cache))
        return await run_async(self._call(args, kwargs))


class MemoizedRemoteFunction(_Memoized):
    """A ``@ray.remote`` function memoized across the cluster.

    ``f.remote(...)`` returns an ObjectRef, as the undecorated task does; ``f.options``
    passes task options through and returns another memoized function.
    """

    def __init__(
        self, remote: RemoteFunction, settings: _Settings, options: dict[str, Any] | None = None
    ) -> None:
        _check_single_return(remote._default_options.get("num_returns"))
        self._remote = remote
        self._options = dict(options or {})
        super().__init__(remote._function, Job.of(remote, self._options), settings)

    def remote(self, *args: Any, **kwargs: Any) -> ray.ObjectRef[Any]:
        """Return a reference to the task's result, computed at most once per distinct call."""
        key = self._key(args, kwargs)
        reply = run(self._load(key, self._job, args, kwargs))
        if reply.code == Code.MISS:
            ref: ray.ObjectRef[Any] = self._remote.options(**self._options).remote(*args, **kwargs)
            return ref
        if reply.code == Code.INLINE:
            ref = reply.call  # the lookup's own result: the value, with no put
        else:
            ref = ray.put(reply.payload) if reply.code == Code.HIT else reply.reference
        LINEAGE.record(ref.hex(), key)
        return ref

    def options(self, **options: Any) -> MemoizedRemoteFunction:
        """Return this function with Ray task options set, as ``RemoteFunction.options``."""
        _check_single_return(options.get("num_returns"))
        return MemoizedRemoteFunction(self._remote, self._settings, {**self._options, **options})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Refuse a direct call, as Ray does for remote functions."""
        raise TypeError(
            f"remote function {self._fn.__qualname__} cannot be called directly; use .remote(...)"
        )


_handles: dict[str, Cache] = {}
_handles_lock = threading.Lock()


def shared_handle(name: str) -> Cache:
    """Return this process's handle on cache ``name``, creating the cache if need be."""
    with _handles_lock:
        if name not in _handles:
            _handles[name] = Cache(name)
        return _handles[name]


def _hash_argument(name: str, value: Any) -> bytes:
    if isinstance(value, ray.ObjectRef):
        key = LINEAGE.key_of(value.hex())
        if key is not None:
            return _LINEAGE_TAG + key
        return _CONTENT_TAG + hash_value(ray.get(value))
    if isinstance(value, (tuple, list)) and any(isinstance(v, ray.ObjectRef) for v in value):
        # *args of a task: Ray resolves each reference, so each is keyed as one.
        parts = b"".join(_hash_argument(name, item) for item in value)
        return _SEQUENCE_TAG + type(value).__name__.encode() + hash_value(parts)
    return hash_value(value)


def _check_single_return(num_returns: Any) -> None:
    if num_returns not in (None, 1):
        raise ValueError(
            "@raycache.memoize supports tasks with one return value; "
            f"got num_returns={num_returns!r}. Return a tuple instead."
        )


def _checked_cache(cache: object) -> Cache | str | None:
    if isinstance(cache, str):
        return validation.name(cache)  # now, not at the first call, which may be much later
    if cache is None or isinstance(cache, Cache):
        return cache
    raise TypeError(f"cache must be a raycache.Cache, a cache name or None, got {cache!r}")
