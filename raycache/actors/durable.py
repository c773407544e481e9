"""A shard's durable tier: its entries also kept as files, so they outlive the cluster.

Every shard of a cache shares one folder, ``<storage>/<cache>/``, where a key's file is
named by its digest: whichever shard owns a key, after a restart or a resize, finds the
file there. Each shard's tier counts and evicts only the files of the keys it owns, within
its share of ``storage_capacity`` (the budget over the number of shards), so that the
shards keep the folder within the budget without consulting each other. It lists the
folder as it starts, after every change of the ring, and every :data:`RESCAN_S` while it
writes.

Writes never delay the caller: the shard queues them, and one writer thread does the I/O
in order, at the lowest CPU priority, each write once the machine has a core to spare
(or it has waited :data:`~raycache.core.idle.MAX_WAIT_S`, or a caller waits on it; see
:mod:`raycache.core.idle`): a pipeline's cold pass is not slowed by the writes of its
results. Removals (``delete``, ``invalidate_tag``, ``clear``) go through the same queue
and are waited for, so that no write queued before them can bring a removed entry back.
Each shard removes the files of the keys it owns, whoever wrote them (an owner before a
resize, say). Reads happen on the shard's own thread, on a memory miss: a shard serves
one request at a time, so concurrent callers of one key load its file once.

Storage faults are misses. The tier counts them, and once it reports itself unhealthy
(storage unreachable, say) the shard warns once and carries on in memory only; it tries
the storage again every :data:`PROBE_S`, and uses it again once it answers. Removals made
meanwhile are owed (see :mod:`~raycache.core.storage.pending`): the files they cover are
misses, and they are done before the storage is used again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, NamedTuple, TypeVar

from raycache.actors.custody import Custody, Put
from raycache.actors.priority import lower_priority, spare_cores_now
from raycache.actors.references import INLINE_LIMIT
from raycache.core.config import CacheConfig
from raycache.core.idle import MAX_WAIT_S, WriteGate
from raycache.core.storage import StorageStats, StorageTier
from raycache.core.storage.file_entry import FileEntry
from raycache.core.storage.pending import Owns
from raycache.core.storage.watch import StorageWatch
from raycache.core.store import Entry

logger = logging.getLogger(__name__)

T = TypeVar("T")

RESCAN_S = 60.0
"""How often, at most, a writing shard lists the folder to learn the other shards' files."""

PROBE_S = 30.0
"""How often a shard whose storage failed tries it again."""

MAX_QUEUED = 1024
"""Writes a shard queues at most; more are dropped (and counted) until the writer catches up.

Queued values stay in memory until written, so a storage slower than the cache's writes
must not make the queue grow without end.
"""

DEFER_ENV = "RAYCACHE_STORAGE_DEFER_S"
"""The environment variable that sets how long, at most, a write waits for a spare core.

``0`` writes at once; unset, :data:`~raycache.core.idle.MAX_WAIT_S`.
"""

SAMPLE_S = 0.1
"""How long the writer watches the CPUs before deciding whether one is spare."""

ORDERED_TIMEOUT_S = 30.0
"""The longest a removal or a flush waits behind queued writes before the shard moves on."""


class _Job(NamedTuple):
    """Work for the writer thread; a write waits for a spare core first."""

    run: Callable[[], object]
    write: bool = False
    queued: float = 0.0


class Restored(NamedTuple):
    """An entry read back from storage, ready for the memory store."""

    value: Any
    size: int
    ttl: float | None
    tags: tuple[str, ...]
    cost: float


class Durable:
    """The durable tier of a shard of ``cache``; without storage in ``config``, nothing."""

    def __init__(self, cache: str, config: CacheConfig, owns: Owns, shards: int) -> None:
        self._tier: StorageTier | None = None
        self._dropped = 0
        self._watch = StorageWatch(PROBE_S)
        if config.storage is None:
            return
        self._url = config.storage.url
        self._tier = StorageTier(
            config.storage,
            cache,
            capacity=config.storage_capacity,
            owns=owns,
            share=1 / shards,
        )
        self._scanned = time.monotonic()
        self._gate = WriteGate(max_wait_s=_defer_limit())
        self._waiters = 0  # callers waiting on the queue: writes then run at once
        self._waiters_lock = threading.Lock()
        self._queue: queue.Queue[_Job] = queue.Queue(MAX_QUEUED)
        threading.Thread(target=self._drain, name="raycache-storage", daemon=True).start()
        # Learn the files of earlier runs (their sizes count against the budget), and drop
        # the expired ones, without holding up the shard's start.
        self._queue.put(_Job(self._tier.expire))

    def usable(self) -> bool:
        """Return whether to use storage now: there is some, and it has not failed.

        A failed storage is warned of once per outage, and probed every :data:`PROBE_S`.
        """
        if self._tier is None:
            return False
        verdict = self._watch.check(healthy=self._tier.healthy)
        if verdict.warn:
            logger.warning(
                "raycache: storage %s failed repeatedly; serving from memory only", self._url
            )
        if verdict.probe:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_Job(self._tier.recover))
        return verdict.usable

    def rescan(self, shards: int) -> None:
        """Learn which files this shard owns now that the ring has ``shards`` shards."""
        tier = self._tier
        if tier is not None:
            tier.set_share(1 / shards)
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_Job(tier.scan))

    def write(
        self,
        digest: bytes,
        fetch: Callable[[], Any],
        *,
        size: int,
        ttl: float | None,
        tags: Iterable[str],
        cost: float,
    ) -> None:
        """Queue a write of the value that ``fetch`` gives, called on the writer thread.

        A value that is not written (storage down, queue full, a value the tier skips or
        fails to write) takes the key's older file with it, so that it cannot be read
        back in place of the newer value.
        """
        tier = self._tier
        if tier is None:
            return
        if not self.usable():
            tier.owe(digest=digest)
            return
        expires_at = None if ttl is None else time.time() + ttl
        tags = tuple(tags)

        def write() -> None:
            try:
                value = fetch()
            except Exception:
                tier.delete(digest)
                raise
            if not tier.write(
                digest, value, expires_at=expires_at, tags=tags, size=size, cost=cost
            ):
                tier.delete(digest)  # or owes its removal, if the storage refuses that too
            if time.monotonic() - self._scanned > RESCAN_S:
                self._scanned = time.monotonic()
                tier.scan()

        try:
            self._queue.put_nowait(_Job(write, write=True, queued=time.monotonic()))
        except queue.Full:
            self._dropped += 1
            tier.owe(digest=digest)

    def read(self, digest: bytes, *, map_above: int | None = None) -> Restored | None:
        """Return the entry stored under ``digest``, or None for a miss of any kind.

        A local entry of ``map_above`` bytes or more comes back as its verified
        :class:`~raycache.core.storage.file_entry.FileEntry`, for its readers to map.
        """
        if not self.usable():
            return None
        assert self._tier is not None
        stored = self._tier.read(digest, map_above=map_above)
        if stored is None:
            return None
        ttl = None if stored.expires_at is None else stored.expires_at - time.time()
        if ttl is not None and ttl <= 0:
            return None
        return Restored(stored.value, stored.size, ttl, stored.tags, stored.cost)

    def delete(self, digest: bytes) -> bool:
        """Remove the file of ``digest``; return whether there was one."""
        self._owe_if_down(digest=digest)
        return self._in_order(lambda tier: tier.delete(digest), False)

    def invalidate_tag(self, tag: str, owns: Callable[[bytes], bool]) -> int:
        """Remove the files carrying ``tag`` of the keys this shard ``owns``; return how many.

        Every shard removes its own keys' files, so that none is removed before its
        owner's queued write of it, and the shards' counts add up.
        """
        self._owe_if_down(tag=tag)
        return self._in_order(lambda tier: tier.invalidate_tag(tag, where=owns), 0)

    def clear(self, owns: Callable[[bytes], bool]) -> int:
        """Remove the files of the keys this shard ``owns``; return how many."""
        self._owe_if_down(where=owns)
        return self._in_order(lambda tier: tier.clear(where=owns), 0)

    def flush(self) -> None:
        """Wait until every write queued so far is done, and every removal owed, if it can be.

        A cache's shutdown flushes, so a storage that is back by then gets its removals.
        """
        self._in_order(lambda tier: tier.pay_owed(now=True), None)

    def stats(self) -> tuple[StorageStats | None, int]:
        """Return the tier's counters (None without storage), and the writes dropped."""
        return (None if self._tier is None else self._tier.stats()), self._dropped

    def _owe_if_down(
        self, *, digest: bytes | None = None, tag: str | None = None, where: Owns | None = None
    ) -> None:
        """With the storage down, owe it a removal, which it gets once it answers again."""
        if self._tier is not None and not self.usable():
            self._tier.owe(digest=digest, tag=tag, where=where)

    def _in_order(self, act: Callable[[StorageTier], T], otherwise: T) -> T:
        """Return what ``act`` does on the writer thread, after every write queued before it."""
        if not self.usable():
            return otherwise
        tier = self._tier
        assert tier is not None
        done: Future[T] = Future()

        def acting() -> None:
            try:
                done.set_result(act(tier))
            except Exception as error:
                done.set_exception(error)

        self._wait_on_queue(+1)
        try:
            self._queue.put(_Job(acting), timeout=ORDERED_TIMEOUT_S)
            return done.result(ORDERED_TIMEOUT_S)
        except Exception:  # slow or failing storage: memory is done with, which is enough
            return otherwise
        finally:
            self._wait_on_queue(-1)

    def _wait_on_queue(self, change: int) -> None:
        with self._waiters_lock:
            self._waiters += change

    def _drain(self) -> None:
        lower_priority()
        while True:
            job = self._queue.get()
            if job.write:
                self._wait_for_spare_core(job.queued)
            try:
                job.run()
            except Exception:  # the tier counts its own faults; fetching a lost value is one
                logger.exception("raycache: a storage write failed")

    def _wait_for_spare_core(self, queued: float) -> None:
        """Hold a write back while the machine is busy; see :mod:`raycache.core.idle`."""
        while True:
            hurried = self._waiters > 0 or self._queue.qsize() >= MAX_QUEUED // 2
            waited = time.monotonic() - queued
            if self._gate.may_write(0.0, waited, hurried):  # decided without the CPUs
                return
            if self._gate.may_write(spare_cores_now(SAMPLE_S), waited, hurried):
                return


def _defer_limit() -> float:
    """Return the longest a write waits for a spare core, from :data:`DEFER_ENV`."""
    text = os.environ.get(DEFER_ENV, "").strip()
    try:
        return max(0.0, float(text)) if text else MAX_WAIT_S
    except ValueError:
        logger.warning("raycache: %s=%r is not a number of seconds; using %s", DEFER_ENV, text,
                       MAX_WAIT_S)  # fmt: skip
        return MAX_WAIT_S


class Recall:
    """A shard's storage hits, taken back into memory as they are served.

    A hit goes back into the shard's store without being written again. A large one in
    a local file is served as its file, which each reader maps, while the vault copies
    it into the object store in the background (see
    :meth:`~raycache.actors.custody.Custody.promote`).
    """

    def __init__(self, durable: Durable, custody: Custody, put: Put, key: bytes | None) -> None:
        self._durable = durable
        self._custody = custody
        self._put = put  # the shard's, without writing to storage again
        self._key = key  # the derived storage key, which the vault checks its copy with

    def __call__(self, digest: bytes) -> Entry | None:
        """Return the entry of ``digest`` read from storage, or None for a miss."""
        restored = self._durable.read(digest, map_above=INLINE_LIMIT)
        if restored is None:
            return None
        value, size, ttl, tags, cost = restored
        served = value
        if isinstance(value, FileEntry):  # large, in a local file: readers map it themselves
            served = self._custody.promote(digest, value, self._key)
            if served is None:
                return None
            value = served.copy
        self._put(digest, value, size, ttl, tags, cost)  # a large one goes to the vault
        # The policy may turn a restored value away; it is served all the same.
        return Entry(digest, served, size, cost, time.monotonic(), None, frozenset())
