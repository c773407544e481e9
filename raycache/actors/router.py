"""The router actor: a cache's membership, its ring, and its shards' lifecycle.

The router is off the data path. Clients ask it for a :class:`Snapshot` when they attach
and whenever a shard tells them their ring is stale; every get and put then goes straight
to the owning shard.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import ray
from ray.exceptions import GetTimeoutError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raycache.actors.cluster import alive_nodes
from raycache.actors.shard import MAX_WAITERS, SHARD_DOWN, SHARD_GONE, WAITERS, Shard
from raycache.actors.vault import drop_everywhere, wait_dropped
from raycache.core.config import CacheConfig
from raycache.core.naming import NAMESPACE, shard_actor_name, shard_id, shard_index
from raycache.core.ring import Ring

HEAD_NODE_RESOURCE = "node:__internal_head__"
"""Ray's resource that only the head node has: the router lives where the cluster does."""

ROUTER_CONCURRENCY = 8
"""Calls the router serves at once, so that a shard restarting mid-resize can reach it."""

HEALTH_INTERVAL_S = 1.0
"""How often the router checks that every shard is alive."""

PING_TIMEOUT_S = 30.0
"""How long a shard may take to answer a health check before it counts as busy."""


@dataclass(frozen=True)
class Snapshot:
    """What a client needs to route keys: the ring, a handle per member, and the config."""

    ring: Ring
    shards: dict[str, Any]
    config: CacheConfig


class Router:
    """The router of one cache. Created by :class:`raycache.Cache`; not used directly."""

    def __init__(self, cache: str, config: CacheConfig) -> None:
        self._cache = cache
        self._lock = threading.Lock()
        self._homes: dict[str, str] = {}  # where this router placed each shard
        surviving = self._surviving_members()
        members = surviving or [shard_id(i) for i in range(config.shards)]
        self._config = replace(config, shards=len(members))
        # Epochs start from the clock so that a restarted router's ring is newer than
        # any ring its shards already hold.
        self._ring = Ring(tuple(members), epoch=time.time_ns())
        self._shards = {member: self._start_shard(member) for member in members}
        if surviving:
            self._publish_ring()
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, name="shard-health", daemon=True).start()

    def snapshot(self) -> Snapshot:
        """Return the current ring, shard handles and config."""
        with self._lock:
            return Snapshot(self._ring, dict(self._shards), self._config)

    def assignment(self) -> tuple[Ring, int]:
        """Return the current ring and the byte budget of each shard."""
        with self._lock:
            return self._ring, self._config.shard_capacity()

    def wait_ready(self) -> int:
        """Block until every shard has started; return the number of shards."""
        ray.get([shard.ping.remote() for shard in self.snapshot().shards.values()])
        return len(self._ring)

    def resize(self, shards: int) -> Snapshot:
        """Grow or shrink to ``shards`` shards, moving as few keys as the ring allows.

        New shards start empty. A removed shard is killed, and the values it held leave
        the object store with it; their keys become misses. Keys that change owner
        between surviving shards are dropped by their old owner rather than migrated,
        because a shard can only serve objects it owns. A cache resized by hand no
        longer follows the number of nodes.
        """
        return self._resize(shards, per_node=False)

    def _resize(self, shards: int, *, per_node: bool) -> Snapshot:
        with self._lock:
            members = [shard_id(i) for i in range(shards)]
            removed = [m for m in self._ring.members if m not in members]
            for member in members:
                if member not in self._shards:
                    self._shards[member] = self._start_shard(member)
            self._ring = self._ring.with_members(members)
            self._config = replace(self._config, shards=shards, per_node=per_node)
            self._publish_ring()
            for member in removed:
                ray.kill(self._shards.pop(member), no_restart=True)
                self._homes.pop(member, None)
                drop_everywhere(self._cache, member)
            return Snapshot(self._ring, dict(self._shards), self._config)

    def shutdown(self) -> None:
        """Kill every shard of this cache, and free the values the vaults kept for it."""
        self._stopped.set()
        with self._lock:
            for shard in self._shards.values():
                ray.kill(shard, no_restart=True)
            self._shards.clear()
            wait_dropped(drop_everywhere(self._cache))

    def _watch(self) -> None:
        while not self._stopped.wait(HEALTH_INTERVAL_S):
            dead = _dead_shards(self.snapshot().shards)
            if dead:
                self._replace(dead)
            nodes = len(alive_nodes())
            if self._config.per_node and nodes > len(self._ring):
                self._resize(nodes, per_node=True)  # one shard per node, as nodes join

    def _replace(self, dead: dict[str, Any]) -> None:
        """Start a new shard for each member whose shard died for good (its node is gone).

        A crashed shard on a live node is restarted by Ray under the same handle; one
        pinned to a dead node cannot be, so it is replaced, and the ring's epoch moves on
        so that clients fetch the new handle.
        """
        with self._lock:
            replaced = [m for m, handle in dead.items() if self._shards.get(m) is handle]
            for member in replaced:
                self._shards[member] = self._start_shard(member)
            if replaced:
                self._ring = self._ring.with_members(self._ring.members)
                self._publish_ring()

    def _publish_ring(self) -> None:
        # Shards learn the new epoch before any client can, so a client holding the new
        # ring never meets a shard that would still serve it with the old one.
        capacity = self._config.shard_capacity()
        calls = [self._shards[m].set_ring.remote(self._ring, capacity) for m in self._ring.members]
        for call in calls:
            with contextlib.suppress(*SHARD_DOWN):  # the health watcher replaces it
                ray.get(call)

    def _start_shard(self, member: str) -> Any:
        # Shards are owned by this detached router rather than detached themselves: Ray
        # gives every detached actor's tasks a worker pool of their own, so detached shards
        # would each start fresh workers for the computations they submit.
        return (
            ray.remote(concurrency_groups={WAITERS: MAX_WAITERS})(Shard)
            .options(
                name=shard_actor_name(self._cache, member),
                namespace=NAMESPACE,
                get_if_exists=True,
                max_restarts=-1,
                num_cpus=0,
                scheduling_strategy=self._placement(member),
            )
            .remote(self._cache, member, self._config, self._ring)
        )

    def _placement(self, member: str) -> NodeAffinitySchedulingStrategy:
        # The live node with the fewest of this cache's shards: one per node, new nodes
        # first. The affinity is hard because Ray's soft affinity does not place actors
        # that ask for no resources; a shard whose node dies is replaced by the watcher.
        alive = alive_nodes()
        homes = Counter(node for m, node in self._homes.items() if m != member and node in alive)
        node = min(alive, key=lambda candidate: (homes[candidate], candidate))
        self._homes[member] = node
        return NodeAffinitySchedulingStrategy(node_id=node, soft=False)

    def _surviving_members(self) -> list[str]:
        # A restarted router finds the shards that outlived it instead of starting anew.
        prefix = shard_actor_name(self._cache, shard_id(0)).removesuffix("0")
        names = [
            actor["name"]
            for actor in ray.util.list_named_actors(all_namespaces=True)
            if actor["namespace"] == NAMESPACE and actor["name"].startswith(prefix)
        ]
        members = (name.removeprefix(shard_actor_name(self._cache, "")) for name in names)
        return sorted(members, key=shard_index)


def _dead_shards(shards: dict[str, Any]) -> dict[str, Any]:
    """Return the members, with their handles, whose shard is dead and will not restart."""
    pings = {member: shard.ping.remote() for member, shard in shards.items()}
    dead = {}
    for member, ping in pings.items():
        try:
            ray.get(ping, timeout=PING_TIMEOUT_S)
        except SHARD_GONE:
            dead[member] = shards[member]
        except (GetTimeoutError, *SHARD_DOWN):
            continue  # busy, or restarting under the same handle
    return dead
