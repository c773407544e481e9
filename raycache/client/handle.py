"""What :class:`~raycache.Cache` and :class:`~raycache.AsyncCache` share: every method's steps.

A handle holds a cache's name, this process's near cache, and the connection to its
shard client. Each public method of the two handles is one of the operations below,
written once as :mod:`~raycache.client.steps`: ``Cache`` takes them blocking and
``AsyncCache`` awaits them. Arguments are checked before anything is sent. Faults of
the cache itself (a dead shard, a lost object) are counted and treated as misses: they
never reach the caller as exceptions.
"""

from __future__ import annotations

import concurrent.futures
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, TypeVar

import ray
from ray.remote_function import RemoteFunction

from raycache.actors import registry
from raycache.actors.compute import Job
from raycache.actors.references import ship
from raycache.actors.router import Snapshot
from raycache.client import connect
from raycache.client.loader import load_here, load_many_here
from raycache.client.near import (
    Held,
    NearReader,
    NearSettings,
    near_settings,
    reader_for,
    stop_readers,
    values_near,
)
from raycache.client.shard_client import ABSENT, ShardClient, replies_by_digest
from raycache.client.steps import Invoke, Steps, Wait
from raycache.core import validation
from raycache.core.config import CacheConfig
from raycache.core.frames import warn_if_unpickled_on_hit
from raycache.core.keys import key_digest
from raycache.core.protocol import Code, Reply
from raycache.core.stats import totals
from raycache.core.store import DEFAULT_POLICY
from raycache.errors import EntryTooLargeError

if TYPE_CHECKING:  # Unpack is in typing from Python 3.11
    from typing_extensions import Unpack

H = TypeVar("H", bound="CacheHandle")
T = TypeVar("T")

_MISS = Reply(Code.MISS)

Connection = concurrent.futures.Future[ShardClient]
"""A shard client, or the connection under way that will give one."""


class Settings(NamedTuple):
    """A handle's checked arguments: what to connect to, and how."""

    name: str
    near: NearSettings | None
    requested: dict[str, Any]
    timeout: float | None


class CacheHandle(ABC):
    """The state and the operations of a cache handle; see :class:`~raycache.Cache`."""

    def __init__(
        self,
        name: str = "default",
        *,
        shards: int | None = None,
        capacity: int | str | None = None,
        policy: str = DEFAULT_POLICY,
        ttl: float | None = None,
        near_cache: bool = False,
        near_cache_capacity: int | str | None = None,
        near_cache_ttl: float | None = None,
        timeout: float | None = None,
        storage: object = None,
        storage_capacity: int | str | None = None,
        storage_key: bytes | str | None = None,
        storage_shared: bool = False,
        elastic: bool = False,
    ) -> None:
        requested = connect.requested_settings(
            shards,
            capacity,
            policy,
            ttl,
            storage,
            storage_capacity,
            storage_key,
            storage_shared,
            elastic,
        )
        settings = Settings(
            validation.name(name),
            near_settings(near_cache, near_cache_capacity, near_cache_ttl),
            requested,
            validation.seconds(timeout, "timeout"),
        )
        self._setup(settings.name, settings.near, self._connect(settings))

    @abstractmethod
    def _connect(self, settings: Settings) -> Connection:
        """Start or join the cache; the subclass says whether by blocking."""

    def _setup(self, name: str, near: NearSettings | None, connection: Connection) -> None:
        self._name = name
        self._near_settings = near
        self._reader: NearReader | None = None
        self._connection = connection

    @classmethod
    def _of(cls: type[H], client: ShardClient, near: NearSettings | None) -> H:
        handle = cls.__new__(cls)
        handle._setup(client.name, near, connected(client))
        return handle

    @property
    def shard_client(self) -> ShardClient:
        """The internal API this handle reaches its shards through (see its module).

        A handle still connecting (an ``AsyncCache`` just made) waits for it here.
        """
        return self._connection.result()

    @property
    def name(self) -> str:
        """The cache's name, shared by every handle on it."""
        return self._name

    def _ready(self) -> Steps[ShardClient]:
        """Return the shard client, once the connection under way (if any) is made."""
        if not self._connection.done():
            yield Wait([self._connection])
        return self._connection.result()

    @property
    def config(self) -> CacheConfig:
        """The settings the cache runs with."""
        return self.shard_client.config

    # -- single keys -------------------------------------------------------------------

    def _get(self, key: Any, default: Any) -> Steps[Any]:
        digest = key_digest(key)
        client = yield from self._ready()
        reader = self._near(client)
        copy = ABSENT if reader is None else reader.lookup(digest)
        if isinstance(copy, Held):
            reply = Reply(Code.REF, [copy.ref])
        elif copy is not ABSENT:
            return copy
        else:
            reply = yield from self._get_reply(client, digest)
        value = yield from client.value(digest, reply)
        return default if value is ABSENT else value

    def _near(self, client: ShardClient) -> NearReader | None:
        """Return this handle's near cache, made on first use; None without one."""
        if self._reader is None and self._near_settings is not None:
            self._reader = reader_for(client, self._near_settings)
        return self._reader

    def _get_reply(self, client: ShardClient, digest: bytes) -> Steps[Reply]:
        """Ask the shard for ``digest`` (tracked with a near cache); batching handles override."""
        if self._reader is None:
            return (yield from client.get(digest))
        groups = yield from self._reader.read(client, [digest])
        return replies_by_digest([digest], groups).get(digest, _MISS)

    def _get_ref(self, key: Any) -> Steps[ray.ObjectRef[Any] | None]:
        digest = key_digest(key)
        client = yield from self._ready()
        reply = yield from client.get(digest)
        if reply.code == Code.REF:
            ref: ray.ObjectRef[Any] = reply.reference
            return ref
        return ray.put(reply.payload) if reply.code == Code.HIT else None

    def _put(self, key: Any, value: Any, ttl: float | None, tags: Iterable[str]) -> Steps[None]:
        digest = key_digest(key)
        seconds = validation.seconds(ttl, "ttl")
        checked_tags = validation.strings(tags, "tags")
        client = yield from self._ready()
        warn_if_unpickled_on_hit(value, "the value for", key)
        put = client.put(digest, ship(value), seconds, checked_tags)
        _raise_if_too_large((yield from self._fenced(client, [digest], put)))

    def _delete(self, key: Any) -> Steps[bool]:
        digest = key_digest(key)
        client = yield from self._ready()
        reply = yield from self._fenced(client, [digest], client.delete(digest))
        return bool(reply.payload)

    def _contains(self, key: Any) -> Steps[bool]:
        digest = key_digest(key)
        client = yield from self._ready()
        reply = yield from client.contains(digest)
        return bool(reply.payload)

    def _get_or_compute(
        self,
        key: Any,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ttl: float | None,
    ) -> Steps[Any]:
        digest = key_digest(key)
        seconds = validation.seconds(ttl, "ttl")
        client = yield from self._ready()
        if isinstance(fn, RemoteFunction):  # a task: it runs on the cluster, as asked
            reply = yield from client.load(digest, Job.of(fn), args, kwargs, ttl=seconds)
            return (yield from client.resolve(digest, reply, fn, args, kwargs))
        loaded = yield from load_here(client, digest, fn, args, kwargs, ttl=seconds)
        return loaded.value

    # -- many keys ---------------------------------------------------------------------

    def _get_many(self, keys: Iterable[Any]) -> Steps[dict[Any, Any]]:
        by_digest = {key_digest(key): key for key in keys}
        client = yield from self._ready()
        reader = self._near(client)
        if reader is None:
            found = yield from client.values_many(list(by_digest))
        else:
            found = yield from values_near(client, reader, list(by_digest))
        return {by_digest[digest]: value for digest, value in found.items()}

    def _get_or_compute_many(
        self, keys: Iterable[Any], fn: Callable[[list[Any]], Mapping[Any, Any]], ttl: float | None
    ) -> Steps[dict[Any, Any]]:
        if not callable(fn):
            raise TypeError(f"get_or_compute_many takes a function of a list of keys, got {fn!r}")
        seconds = validation.seconds(ttl, "ttl")
        by_digest = {key_digest(key): key for key in keys}
        client = yield from self._ready()
        found = yield from client.values_many(list(by_digest))
        missing = [digest for digest in by_digest if digest not in found]
        if missing:
            keys_missing = [by_digest[digest] for digest in missing]
            found.update(
                (yield from load_many_here(client, missing, keys_missing, fn, ttl=seconds))
            )
        return {by_digest[digest]: value for digest, value in found.items()}

    def _put_many(self, mapping: Mapping[Any, Any], ttl: float | None) -> Steps[None]:
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"put_many takes a mapping of keys to values, got {type(mapping).__name__}"
            )
        seconds = validation.seconds(ttl, "ttl")
        digests = [key_digest(key) for key in mapping]
        values = list(mapping.values())
        client = yield from self._ready()
        for key, value in mapping.items():
            warn_if_unpickled_on_hit(value, "the value for", key)
        shipped = [ship(value) for value in values]
        put = client.put_many(digests, shipped, seconds, ())
        for _, reply in (yield from self._fenced(client, digests, put)):
            _raise_if_too_large(reply)

    def _delete_many(self, keys: Iterable[Any]) -> Steps[int]:
        digests = list(dict.fromkeys(key_digest(key) for key in keys))
        client = yield from self._ready()
        return (yield from self._fenced(client, digests, client.delete_many(digests)))

    # -- whole cache -------------------------------------------------------------------

    def _invalidate_tag(self, tag: str) -> Steps[int]:
        (tag,) = validation.strings((tag,), "tags")
        client = yield from self._ready()
        return (yield from self._fenced(client, None, client.invalidate_tag(tag)))

    def _clear(self) -> Steps[None]:
        client = yield from self._ready()
        yield from self._fenced(client, None, client.clear())

    def _stats(self) -> Steps[dict[str, Any]]:
        client = yield from self._ready()
        rows = yield from client.stats()
        summed = totals(rows)
        if self._reader is not None:  # hits not yet reported to the shards
            summed["near_hits"] += self._reader.copies.unreported_hits
        lookups = summed["hits"] + summed["misses"]
        return {
            "name": self._name,
            **summed,
            "hit_ratio": summed["hits"] / lookups if lookups else 0.0,
            "policy": client.config.policy,
            "shards": [row.row() for row in rows],
        }

    def _flush(self) -> Steps[None]:
        client = yield from self._ready()
        yield from client.flush()

    def _resize(self, shards: int) -> Steps[None]:
        count = validation.integer(shards, "shards", minimum=1)
        client = yield from self._ready()
        yield from client.resize(count)

    def _shutdown(self) -> Steps[None]:
        yield from self._flush()  # writes to storage land before shards stop
        stop_readers(self._name)
        # Through the registry, which stops the shards even if the router is gone.
        yield Invoke(registry.remove, (self._name,))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the name, router and ring snapshot, so tasks attach with no calls."""
        client = self.shard_client
        near = self._near_settings
        args = (type(self), self._name, client.router, client.snapshot, near, client.health.timeout)
        return _unpickle, args

    def __repr__(self) -> str:
        """Show the name, shard count and policy."""
        if not self._connection.done():
            return f"{type(self).__name__}({self._name!r}, connecting)"
        config = self.config
        return (
            f"{type(self).__name__}({self._name!r}, shards={config.shards}, "
            f"policy={config.policy!r})"
        )

    def _fenced(
        self, client: ShardClient, digests: list[bytes] | None, write: Steps[T]
    ) -> Steps[T]:
        """Take the steps of ``write`` of ``digests`` (None: of every key), fencing them.

        This process's copies of them are dropped and fenced before the write is sent,
        and again once it is done, so that no read in flight meanwhile keeps a value
        older than the write, and this handle reads its own writes.
        """
        self._fence(client, digests)
        done = yield from write
        self._fence(client, digests)
        return done

    def _fence(self, client: ShardClient, digests: list[bytes] | None) -> None:
        reader = self._near(client)
        if reader is None:
            return
        if digests is None:
            reader.copies.fence_all()
        for digest in digests or ():
            reader.copies.fence(digest)


def connected(client: ShardClient) -> Connection:
    """Return a connection that is already made."""
    connection: Connection = concurrent.futures.Future()
    connection.set_result(client)
    return connection


class AttachOptions(TypedDict, total=False):
    """The options of ``Cache.attach`` and ``AsyncCache.attach``: the constructor's own."""

    near_cache: bool
    near_cache_capacity: int | str | None
    near_cache_ttl: float | None
    timeout: float | None


def checked_attach(name: str, **options: Unpack[AttachOptions]) -> Settings:
    """Check the arguments of ``attach``, as the constructor checks its own."""
    seconds = validation.seconds(options.get("timeout"), "timeout")
    near = near_settings(
        options.get("near_cache", False),
        options.get("near_cache_capacity"),
        options.get("near_cache_ttl"),
    )
    return Settings(validation.name(name), near, {}, seconds)


def _unpickle(
    cls: type[CacheHandle],
    name: str,
    router: Any,
    snapshot: Snapshot,
    near: NearSettings | None,
    timeout: float,
) -> CacheHandle:
    return cls._of(ShardClient(name, router, snapshot, timeout), near)


def _raise_if_too_large(reply: Reply) -> None:
    if reply.code == Code.TOO_LARGE:
        size, capacity = reply.payload
        raise EntryTooLargeError(size, capacity)
