"""Every value that enters a shard, by any door: a put, a computation, a lease, a move.

A value larger than the shard's whole budget is turned away (TOO_LARGE). A large one
goes to the node's vault first, so that its reference outlives the shard. Then the key's
arrival by a resize is superseded, and the store takes the value, evicting others as its
policy says. Near caches that hold the key are sent its new value if it is small (see
:data:`PUSH_LIMIT`) and has no TTL, and are told to drop it otherwise, and to drop the
evicted keys. The vault learns what the store holds and what it let go of, and the
durable tier queues the write, unless the value came from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raycache.actors.custody import Custody, as_digest
from raycache.actors.durable import Durable
from raycache.actors.references import INLINE_LIMIT, StoredRef, fetcher
from raycache.actors.resizing import Migration
from raycache.actors.subscribers import Subscribers
from raycache.core import protocol
from raycache.core.protocol import WireReply
from raycache.core.stats import ShardCounters
from raycache.core.store import Store

PUSH_LIMIT = 16 * 1024
"""Bytes of a written value at most that near caches holding the key are sent.

A bigger one is invalidated instead: a key read once is pushed every write to every
process that holds it, so what each push carries is kept small.
"""


class Intake:
    """Puts values into one shard's store, its vault and its durable tier."""

    def __init__(
        self,
        store: Store,
        custody: Custody,
        parts: tuple[Migration, Durable, Subscribers],
        counts: ShardCounters,
        default_ttl: float | None,
    ) -> None:
        self._store = store
        self._custody = custody
        self._migration, self._durable, self._subscribers = parts
        self._counts = counts
        self._default_ttl = default_ttl

    def put(
        self,
        digest: bytes,
        value: Any,
        size: int,
        ttl: float | None,
        tags: tuple[str, ...],
        cost: float = 1.0,
        *,
        persist: bool = True,
    ) -> WireReply:
        """Store ``value`` of ``size`` bytes; return OK, or TOO_LARGE with the budget."""
        return self.put_many([digest], [value], [size], ttl, tags, cost, persist=persist)

    def put_many(
        self,
        digests: Sequence[bytes],
        values: Sequence[Any],
        sizes: Sequence[int],
        ttl: float | None,
        tags: tuple[str, ...],
        cost: float = 1.0,
        *,
        persist: bool = True,
    ) -> WireReply:
        """Store each value under its digest; return OK, or the first TOO_LARGE."""
        refusal = None
        written: list[tuple[bytes, Any, int]] = []
        replaced: list[bytes] = []
        ttl = self._default_ttl if ttl is None else ttl
        for digest, value, size in zip(digests, values, sizes, strict=True):
            if size > self._store.capacity:
                self._counts.rejected += 1
                refusal = refusal or protocol.too_large(size, self._store.capacity)
                continue
            if size >= INLINE_LIMIT and not isinstance(value, StoredRef):
                value = self._custody.keep(value)
                if value is None:
                    continue  # its vault is restarting: uncached, as by a dead shard
            self._migration.supersede(digest)
            evicted = self._store.put(digest, value, size, ttl=ttl, tags=tags, cost=cost)
            self._custody.stored(digest, value)
            if ttl is None and size <= PUSH_LIMIT and not isinstance(value, StoredRef):
                written.append((digest, value, size))
            else:
                replaced.append(digest)
            replaced.extend(as_digest(entry.key) for entry in evicted)
            if persist:
                fetch = fetcher(value)
                self._durable.write(digest, fetch, size=size, ttl=ttl, tags=tags, cost=cost)
        # Near caches and the vault hear of the whole batch at once, before the reply.
        self._subscribers.changed(written, replaced)
        self._custody.release_unheld([digest for digest, _, _ in written] + replaced)
        return refusal or protocol.ok()
