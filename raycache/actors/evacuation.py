"""Leaving a node before it goes: what a cache does when Ray drains one of its nodes.

A cloud reclaims a spot instance with a notice of 30 s to 2 min, which Ray turns into a
drain (``ray drain-node --reason DRAIN_NODE_REASON_PREEMPTION``); autoscaler v2 drains an
idle node the same way (``IDLE_TERMINATION``) before removing it. The GCS lists the
draining nodes with their deadlines, and the router's health thread watches that list
(:func:`draining_nodes`), as Ray Serve's controller does for its replicas. For each node
newly draining, the router, before the deadline:

1. starts every shard of the node anew on a live node, under a new ring member that
   keeps the old one's slots (:meth:`~raycache.core.ring.Ring.renamed`), so that no
   other shard's keys move; then moves the old shard's entries to it as a resize does
   (:mod:`raycache.actors.resizing`), the hottest first. A large value is copied into
   the new node's vault on landing. Reads and writes go on meanwhile: a key on its way
   is pulled on demand, and reads as a hit.
2. has every other shard copy the large values whose only copies are on the node (a
   memoized task that ran there, say) into its own vault (:func:`relocate`).

What the deadline cuts off is counted as ``evacuation_lost`` in the stats, unless the
cache has a durable tier: the old shard's queued writes to it are flushed when it learns
the new ring, so its entries are read back from there.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterable

import ray
from ray.actor import ActorHandle
from ray.exceptions import GetTimeoutError

from raycache.actors.cluster import SHARD_DOWN
from raycache.actors.handles import call_remote
from raycache.actors.shard import Shard
from raycache.core.keys import key_point
from raycache.core.migration import Parcel
from raycache.core.ring import Ring
from raycache.core.stats import ShardStats

Shards = dict[str, ActorHandle[Shard]]
"""Shard handles, by ring member."""

DEADLINE_MARGIN_S = 2.0
"""How long before a drain's deadline the move stops, to let the new ring out in time."""

NO_DEADLINE_S = 600.0
"""How long an evacuation may take when the drain names no deadline."""

RELOCATE_BUDGET = 64 * 2**20
"""Most bytes of large values one shard copies per call, so that it serves requests between."""

STATS_TIMEOUT_S = 5.0
"""How long the router waits for a shard to say where it lives and what it holds."""


def draining_nodes() -> dict[str, float]:
    """Return the draining nodes' ids, each with its deadline (``time.time()``, inf if none)."""
    try:
        deadlines: dict[str, int] = ray._private.state.state.get_draining_nodes()
    except Exception:  # the GCS is unreachable for now: no drain is seen until it answers
        return {}
    return {node: ms / 1000 if ms else math.inf for node, ms in deadlines.items()}


def evacuation_ends(deadline: float) -> float:
    """Return when an evacuation for a drain with ``deadline`` must stop moving entries."""
    if math.isinf(deadline):
        return time.time() + NO_DEADLINE_S
    return deadline - DEADLINE_MARGIN_S


def rows(shards: Shards) -> dict[str, ShardStats]:
    """Return the stats row of every shard that answers (its node, what it holds), by member."""
    calls = {member: call_remote(shard, Shard.stats) for member, shard in shards.items()}
    found = {}
    for member, call in calls.items():
        with contextlib.suppress(GetTimeoutError, *SHARD_DOWN):
            found[member] = ray.get(call, timeout=STATS_TIMEOUT_S)
    return found


def hand_over(
    previous: Ring, ring: Ring, shards: Shards, givers: Iterable[str], until: float
) -> Counter[str]:
    """Drain each of ``givers`` of what ``ring`` gives others, until ``until``.

    Return how many entries of each giver landed. ``shards`` holds the handles of both
    rings' members. A shard that dies meanwhile loses what it held or was sent, as a
    crash would anyway: those keys become misses.
    """
    landed: Counter[str] = Counter()
    for member in givers:
        while time.time() < until:
            try:
                parcels = ray.get(call_remote(shards[member], Shard.hand_over))
            except SHARD_DOWN:
                break
            if not parcels:
                break
            landed[member] += _deliver(parcels, ring, shards)
    return landed


def _deliver(parcels: list[Parcel], ring: Ring, shards: Shards) -> int:
    groups: dict[str, list[Parcel]] = {}
    for packed in parcels:
        groups.setdefault(ring.owner_at(key_point(packed.digest)), []).append(packed)
    calls = [
        call_remote(shards[owner], Shard.receive, group, ring.epoch)
        for owner, group in groups.items()
    ]
    landed = 0
    for call in calls:
        with contextlib.suppress(*SHARD_DOWN):
            landed += ray.get(call)
    return landed


def count_left_behind(
    shards: Shards, renames: dict[str, str], before: dict[str, ShardStats], landed: Counter[str]
) -> None:
    """Count what each shard an evacuation replaces still holds, on its heir: lost.

    ``renames`` maps each old member to its heir; ``shards`` holds both's handles. An old
    shard whose node is gone already is counted from its row ``before`` the move, less
    what ``landed`` from it.
    """
    calls = {old: call_remote(shards[old], Shard.stats) for old in renames}
    for old, call in calls.items():
        try:
            row = ray.get(call, timeout=STATS_TIMEOUT_S)
            entries, size = row.entries, row.bytes
        except (GetTimeoutError, *SHARD_DOWN):
            was = before[old]
            entries = max(0, was.entries - landed[old])
            size = was.bytes * entries // max(1, was.entries)
        if entries:
            call_remote(shards[renames[old]], Shard.count_lost, entries, size)


def relocate(shards: Shards, nodes: list[str], until: float) -> None:
    """Have every shard copy the large values held only on ``nodes``, until ``until``."""
    busy = dict(shards)
    while busy and time.time() < until:
        calls = {m: call_remote(s, Shard.relocate, nodes, RELOCATE_BUDGET) for m, s in busy.items()}
        for member, call in calls.items():
            try:
                copied = ray.get(call, timeout=max(0.0, until - time.time()))
            except (GetTimeoutError, *SHARD_DOWN):
                copied = 0
            if not copied:
                busy.pop(member)
