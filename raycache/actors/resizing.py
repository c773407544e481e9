"""Resizing without losing entries: each shard hands over what it no longer owns.

A resize runs in three steps, all driven by the router:

1. Every shard of the old and the new ring learns the new ring together with a
   :class:`Move` (the previous ring, and a handle on each of its members), before any
   client can fetch the new ring. From then on, a client with the old ring gets STALE
   from any shard and refreshes; a client with the new ring goes to the new owner.
2. The router drains each shard (``Router._hand_over``): the shard gives up, in batches,
   the entries it no longer owns, and the router passes them to their new owner, which
   lands each one unless its key was written, deleted, invalidated or cleared there
   meanwhile (:class:`~raycache.core.migration.Arrivals`).
3. The router publishes the ring again without a move; shards drop what is left over,
   and only then does the router kill the shards the resize removed.

While step 2 runs, the new owner of a key that has not arrived yet asks the key's previous
owner for it (:meth:`Migration.arrive`) before answering. We chose this pull over making
clients wait until the hand-over ends, because reads and writes then go on at once, and
over a miss, because a key in flight would otherwise read as absent for the whole move.
Moves never form a cycle (a resize only adds or only removes the highest-numbered
shards, so the shards that give and those that receive are apart), and a shard that gives
never calls another shard, so the pull cannot deadlock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ObjectLostError

from raycache.actors.cluster import SHARD_DOWN
from raycache.actors.custody import Put
from raycache.actors.handles import RemoteMethod
from raycache.actors.references import StoredRef
from raycache.core.migration import Arrivals, Parcel, parcel
from raycache.core.protocol import Code, code_of
from raycache.core.ring import Ring
from raycache.core.stats import ShardCounters
from raycache.core.store import Store

BATCH_ENTRIES = 256
"""Most entries one hand-over call carries, so that the shards serve requests between."""

BATCH_BYTES = 8 * 2**20
"""Most bytes of small values one hand-over call carries; large ones travel as references."""

BATCH_LARGE_BYTES = 64 * 2**20
"""Most bytes of large values one hand-over call refers to: the receiver may copy them all."""


Give = RemoteMethod[[list[bytes]], list[Parcel]]
"""A shard's ``give``: hand over the entries of these digests that it no longer owns."""


@dataclass(frozen=True)
class Move:
    """A resize in progress: the ring before it, and how to pull keys from its members.

    An ``evacuation`` moves the shards of a draining node (see
    :mod:`raycache.actors.evacuation`): their hottest entries go first, since a deadline
    may cut the move short, and what lands is counted as evacuated.
    """

    previous: Ring
    givers: dict[str, Give]
    evacuation: bool = False


class Migration:
    """One shard's side of a resize: giving what it no longer owns, landing what it now owns."""

    def __init__(
        self,
        store: Store,
        member: str,
        take_large: Callable[[Any], StoredRef],
        counts: ShardCounters,
    ) -> None:
        self._store = store
        self._member = member
        self._take_large = take_large
        self._counts = counts
        self._arrivals: Arrivals | None = None
        self._senders: dict[str, Give] = {}
        self._epoch: int | None = None
        self._evacuation = False

    def begin(self, move: Move | None, epoch: int) -> None:
        """Expect what ``move`` brings to the ring of ``epoch``; None ends any move."""
        if move is None:
            self._arrivals, self._senders, self._epoch = None, {}, None
            self._evacuation = False
        else:
            self._arrivals = Arrivals(move.previous, self._member)
            self._senders, self._epoch = move.givers, epoch
            self._evacuation = move.evacuation

    @property
    def moving(self) -> bool:
        """Whether a move is under way."""
        return self._arrivals is not None

    def give(self, digests: list[bytes], owns: Callable[[bytes], bool]) -> list[Parcel]:
        """Remove and return the entries of ``digests`` held here that ``owns`` rejects."""
        now = time.monotonic()
        parcels = []
        for digest in digests:
            entry = self._store.peek(digest)
            if entry is None or owns(digest):
                continue
            held = entry.value
            large = isinstance(held, StoredRef)
            packed = parcel(entry, held.ref if large else held, large=large, now=now)
            self._store.delete(digest)
            if packed is not None:
                parcels.append(packed)
        return parcels

    def give_batch(self, owns: Callable[[bytes], bool]) -> list[Parcel]:
        """Remove and return a batch of the entries held here that ``owns`` rejects."""
        chosen: list[bytes] = []
        inline_bytes = large_bytes = 0
        # A resize sends those nearest eviction first; an evacuation, racing a deadline,
        # the hottest.
        live = self._store.hottest_first() if self._evacuation else self._store.keys()
        for key in live:
            assert isinstance(key, bytes)
            if owns(key):
                continue
            entry = self._store.peek(key)
            if entry is not None and isinstance(entry.value, StoredRef):
                large_bytes += entry.size
            elif entry is not None:
                inline_bytes += entry.size
            chosen.append(key)
            full = inline_bytes >= BATCH_BYTES or large_bytes >= BATCH_LARGE_BYTES
            if len(chosen) >= BATCH_ENTRIES or full:
                break
        return self.give(chosen, owns)

    def arrive(self, digests: Iterable[bytes], put: Put) -> None:
        """Fetch, from their previous owner, the entries of ``digests`` still on their way.

        They land with ``put``, the shard's, as every value that enters it.
        """
        if self._arrivals is None:
            return
        missing = [digest for digest in digests if digest not in self._store]
        for member, wanted in self._arrivals.sources(missing).items():
            sender = self._senders.get(member)
            if sender is None:
                continue
            with contextlib.suppress(*SHARD_DOWN):  # a sender that died took its entries
                self.land(ray.get(sender.remote(wanted)), put)

    def land(self, parcels: list[Parcel], put: Put, epoch: int | None = None) -> int:
        """Store, with ``put``, each parcel that may still land; return how many did.

        ``epoch`` is the ring the router moves entries to; a shard that restarted since
        knows nothing of what was written meanwhile, so it takes nothing.
        """
        arrivals = self._arrivals
        if arrivals is None or (epoch is not None and epoch != self._epoch):
            return 0
        landed = 0
        for packed in parcels:
            if packed.size > self._store.capacity or not arrivals.admits(packed):
                continue
            value = packed.value
            if packed.large:
                try:
                    value = self._take_large(value)
                except ObjectLostError:
                    continue  # its holder died: the value went with it
            ttl, tags, cost = packed.ttl, packed.tags, packed.cost
            stored = put(packed.digest, value, packed.size, ttl, tags, cost)
            if code_of(stored) is Code.OK:
                landed += 1
                if self._evacuation:
                    self._counts.evacuated += 1
                    self._counts.evacuated_bytes += packed.size
        return landed

    def supersede(self, digest: bytes) -> None:
        """Note a write or delete of ``digest`` here: an older value must not land on it."""
        if self._arrivals is not None:
            self._arrivals.supersede(digest)

    def drop_tag(self, tag: str) -> None:
        """Note that ``tag`` was invalidated here."""
        if self._arrivals is not None:
            self._arrivals.drop_tag(tag)

    def clear(self) -> None:
        """Note that the shard was cleared."""
        if self._arrivals is not None:
            self._arrivals.clear()
