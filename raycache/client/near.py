"""A process's coherent near cache of one cache: its copies, its reads, and its poller.

Handles of one cache in one process, with the same near-cache settings, share one
:class:`NearReader`: one set of copies (:class:`~raycache.core.near_cache.NearCache`),
one subscriber id, and one poller thread. The poller keeps a long poll
(:meth:`Shard.poll`) waiting at every shard and applies what each answers. A poll that
fails, or that does not answer within :data:`POLL_GRACE_S` of the shard's own
:data:`~raycache.actors.subscribers.POLL_S`, drops every copy of that shard's values,
and none is kept again until a poll of it answers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, NamedTuple

import ray

from raycache.actors.handles import call_remote
from raycache.actors.router import Snapshot
from raycache.actors.shard import Shard
from raycache.actors.subscribers import POLL_S
from raycache.client.shard_client import ABSENT, Many, ShardClient
from raycache.client.steps import Steps
from raycache.core import validation
from raycache.core.config import parse_capacity
from raycache.core.near_cache import DEFAULT_CAPACITY, REFERENCE_SIZE, Found, NearCache, Read
from raycache.core.protocol import Code, Columns, Notice

logger = logging.getLogger(__name__)

POLL_GRACE_S = 5.0
"""How much later than the shard's own wait a poll may answer before its shard is lost."""

ERROR_PAUSE_S = 0.2
"""How long the poller pauses after a failed poll, so a dead shard is not asked in a spin."""


class Held(NamedTuple):
    """A large value's copy: its reference, fetched from the object store on each read."""

    ref: ray.ObjectRef[Any]


class NearSettings(NamedTuple):
    """A handle's near-cache arguments, checked."""

    capacity: int
    ttl: float | None


class NearReader:
    """One process's near cache of one cache, kept coherent by a poller thread."""

    def __init__(self, settings: NearSettings, snapshot: Snapshot) -> None:
        self.copies = NearCache(settings.capacity, settings.ttl)
        self.subscriber = os.urandom(16)
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self.stopped = False
        poller = threading.Thread(
            target=_poll_forever, args=(weakref.ref(self),), name="raycache-near", daemon=True
        )
        poller.start()

    @property
    def snapshot(self) -> Snapshot:
        """The newest ring any read through this reader used; the poller polls its shards."""
        return self._snapshot

    def lookup(self, digest: bytes) -> Any:
        """Return the copy of ``digest`` (a :class:`Held` for a large value), or ABSENT."""
        return self.copies.get(digest, ABSENT)

    def read(self, client: ShardClient, digests: list[bytes]) -> Steps[list[Many]]:
        """Read ``digests`` from their shards and keep what may be kept.

        Return, as :meth:`ShardClient.get_many` does, per shard that answered, the
        indices of its keys and their replies.
        """
        self._observe(client.snapshot)
        read_at = time.monotonic()
        ticket = self.copies.ticket
        groups: list[Many] = []
        for tracked in (yield from client.read(digests, self.subscriber)):
            keyed = [digests[i] for i in tracked.indices]
            found = _found(keyed, tracked.columns, tracked.stamp.ttls, tracked.stamp.sizes)
            self.copies.offer(Read(tracked.member, read_at, ticket), tracked.stamp, found)
            groups.append((tracked.indices, tracked.columns))
        return groups

    def stop(self) -> None:
        """Stop the poller and drop every copy: the cache is shut down."""
        self.stopped = True
        self.copies.fence_all()

    def _observe(self, snapshot: Snapshot) -> None:
        """Drop every copy when a read uses a newer ring than this reader knows of."""
        if snapshot.ring.epoch > self._snapshot.ring.epoch:
            with self._lock:
                self._snapshot = snapshot
                self.copies.fence_all()


def _found(
    digests: list[bytes], columns: Columns, ttls: list[float | None], sizes: list[int]
) -> Iterator[Found]:
    """Return the copies a tracked read's columns give: inline values, and references."""
    for digest, code, payload, ttl, size in zip(digests, *columns, ttls, sizes, strict=True):
        if code == Code.HIT:
            yield Found(digest, payload, size, ttl)
        elif code == Code.REF:
            yield Found(digest, Held(payload[0]), REFERENCE_SIZE, ttl)


_READERS: weakref.WeakValueDictionary[tuple[Any, ...], NearReader] = weakref.WeakValueDictionary()
_READERS_LOCK = threading.Lock()


def reader_for(client: ShardClient, settings: NearSettings) -> NearReader:
    """Return this process's reader of ``client``'s cache with ``settings``, shared."""
    key = (client.name, client.router._actor_id.hex(), settings)
    with _READERS_LOCK:
        reader = _READERS.get(key)
        if reader is None or reader.stopped:
            reader = _READERS[key] = NearReader(settings, client.snapshot)
        return reader


def stop_readers(name: str) -> None:
    """Stop every reader of the cache ``name`` in this process: it is being shut down."""
    with _READERS_LOCK:
        for key, reader in list(_READERS.items()):
            if key[0] == name:
                reader.stop()
                del _READERS[key]


class _Poll(NamedTuple):
    member: str
    call: ray.ObjectRef[Notice]
    sent_at: float


def _poll_forever(reader_ref: weakref.ref[NearReader]) -> None:
    """Keep a poll waiting at every shard of the reader's ring, until the reader goes."""
    polls: dict[str, _Poll] = {}
    answered: set[str] = set()  # members whose polls may wait: they answered before
    while (reader := reader_ref()) is not None and not reader.stopped:
        try:
            _poll_once(reader, polls, answered)
        except Exception as error:  # Ray shut down under it, most likely: stop quietly
            logger.debug("near-cache poller stopped: %r", error)
            reader.stop()
        del reader  # hold no strong reference while not polling


def _poll_once(reader: NearReader, polls: dict[str, _Poll], answered: set[str]) -> None:
    snapshot = reader.snapshot
    copies = reader.copies
    for member in set(polls) - set(snapshot.shards):
        del polls[member]
    for member, shard in snapshot.shards.items():
        if member not in polls:
            hits, held = copies.report(member)
            wait = member in answered
            call = call_remote(shard, Shard.poll, reader.subscriber, hits, held, wait)
            polls[member] = _Poll(member, call, time.monotonic())
    by_call = {poll.call: poll for poll in polls.values()}
    ready, _ = ray.wait(list(by_call), num_returns=1, timeout=0.5)
    for call in ready:
        member = by_call[call].member
        del polls[member]
        try:
            copies.apply(member, ray.get(call))
            answered.add(member)
        except Exception as error:  # the shard died or restarts: its copies go
            logger.debug("near-cache poll of %s failed: %r", member, error)
            copies.lose(member)
            answered.discard(member)
            time.sleep(ERROR_PAUSE_S)
    overdue = time.monotonic() - POLL_S - POLL_GRACE_S
    for poll in [p for p in polls.values() if p.sent_at < overdue]:
        copies.lose(poll.member)
        answered.discard(poll.member)
        del polls[poll.member]


def near_settings(
    near_cache: bool, capacity: int | str | None, ttl: float | None
) -> NearSettings | None:
    """Check the near-cache arguments; a capacity or a TTL turns the near cache on."""
    validation.flag(near_cache, "near_cache")
    seconds = validation.seconds(ttl, "near_cache_ttl")
    if not (near_cache or capacity is not None or seconds is not None):
        return None
    if isinstance(capacity, str) and capacity.strip().endswith("%"):
        raise ValueError(
            f"near_cache_capacity is a size such as '64MiB', not a share: {capacity!r}"
        )
    size = parse_capacity(
        DEFAULT_CAPACITY if capacity is None else capacity,
        object_store_bytes=0,
        what="near_cache_capacity",
    )
    return NearSettings(size, seconds)


def values_near(
    client: ShardClient, reader: NearReader, digests: list[bytes]
) -> Steps[dict[bytes, Any]]:
    """Return the values of ``digests`` the cache holds: copies first, then the shards."""
    found: dict[bytes, Any] = {}
    refs: dict[bytes, ray.ObjectRef[Any]] = {}
    missing = []
    for digest in digests:
        copy = reader.lookup(digest)
        if copy is ABSENT:
            missing.append(digest)
        elif isinstance(copy, Held):
            refs[digest] = copy.ref
        else:
            found[digest] = copy
    groups = (yield from reader.read(client, missing)) if missing else []
    return (yield from client.collect(missing, groups, found, refs))
