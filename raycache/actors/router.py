"""The router actor: a cache's membership, its ring, and its shards' lifecycle.

The router is off the data path. Clients ask it for a :class:`Snapshot` when they attach
and whenever a shard tells them their ring is stale; every get and put then goes straight
to the owning shard.

It is off the failure path too. Shards are detached actors that outlive it, and the
cache's settings are kept in Ray's internal KV (:mod:`raycache.actors.registry`). A router
that Ray restarts, or one started again by :func:`find_router` after it was killed for
good, rebuilds the same membership from there, so its ring places every key where it was.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import GetTimeoutError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raycache.actors import registry
from raycache.actors.cluster import (
    NAMESPACE,
    SHARD_DOWN,
    SHARD_GONE,
    alive_nodes,
    lasting,
    router_name,
    shard_actor_name,
    shard_id,
    shard_index,
)
from raycache.actors.evacuation import (
    Shards,
    count_left_behind,
    draining_nodes,
    evacuation_ends,
    hand_over,
    relocate,
    rows,
)
from raycache.actors.handles import bind, call_remote
from raycache.actors.leases import MAX_WAITERS, WAITERS
from raycache.actors.resizing import Give, Move
from raycache.actors.shard import Shard
from raycache.actors.subscribers import MAX_POLLERS, POLLERS
from raycache.actors.vault import drop_everywhere
from raycache.core.config import CacheConfig
from raycache.core.ring import Ring
from raycache.core.stats import ShardStats

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
    shards: Shards
    config: CacheConfig


class Router:
    """The router of one cache. Created by :class:`raycache.Cache`; not used directly."""

    def __init__(self, cache: str, config: CacheConfig) -> None:
        self._cache = cache
        self._lock = threading.Lock()
        self._moving = threading.RLock()  # one membership change at a time
        self._homes: dict[str, str] = {}  # where this router placed each shard
        self._node = ray.get_runtime_context().get_node_id()
        self._draining: set[str] = set()  # the nodes evacuated, or being evacuated
        # A cache that already runs keeps its settings: this router may be a restart.
        self._config = registry.load(cache) or config
        registry.save(cache, self._config)
        # Epochs start from the clock so that a restarted router's ring is newer than
        # any ring its shards already hold.
        self._ring = _recorded_ring(cache, self._config.shards).renamed({}, epoch=time.time_ns())
        self._shards = {member: self._start_shard(member) for member in self._ring.members}
        self._move: Move | None = None
        for member, shard in registry.shards(cache).items():
            if member not in self._shards:  # left over by a resize this router's crash cut short
                ray.kill(shard, no_restart=True)
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
        ray.get([call_remote(shard, Shard.ping) for shard in self.snapshot().shards.values()])
        return len(self._ring)

    def resize(self, shards: int) -> Snapshot:
        """Grow or shrink to ``shards`` shards, moving as few keys as the ring allows.

        The entries whose owner changes move to their new owner, as
        :mod:`raycache.actors.resizing` describes, while reads and writes go on; a
        removed shard is killed once it has handed its entries over. A cache resized by
        hand no longer follows the number of nodes.
        """
        return self._resize(shards, per_node=False)

    def _resize(self, shards: int, *, per_node: bool) -> Snapshot:
        def resized(ring: Ring) -> Ring:
            return ring.with_members(_resized(ring.members, shards))

        return self._change_members(resized, per_node=per_node)

    def _evacuate(self, node: str, deadline: float) -> None:
        """Move what drained ``node`` holds to live nodes: :mod:`~raycache.actors.evacuation`."""
        until = evacuation_ends(deadline)
        with self._moving:
            before = rows(self.snapshot().shards)
            leaving = [member for member, row in before.items() if row.node == node]
            if leaving and not self._stopped.is_set():
                fresh = _fresh_members(set(self._shards), len(leaving))
                names = dict(zip(leaving, fresh, strict=True))
                self._change_members(
                    lambda ring: ring.renamed(names), renames=names, before=before, until=until
                )
        relocate(self.snapshot().shards, [node], until)

    def _change_members(
        self,
        change: Callable[[Ring], Ring],
        *,
        per_node: bool | None = None,
        renames: dict[str, str] | None = None,
        before: dict[str, ShardStats] | None = None,
        until: float = math.inf,
    ) -> Snapshot:
        """Move to the ring ``change`` makes of the current one, handing entries over.

        ``renames`` says which members an evacuation replaces, by their heirs: only they
        give entries, the hottest first, until ``until``; what they held ``before`` counts
        what the deadline cut off.
        """
        with self._moving:
            with self._lock:
                previous = self._ring
                ring = change(previous)
            joining = self._started([m for m in ring.members if m not in self._shards])
            with self._lock:
                self._shards.update(joining)
                self._ring = ring
                keeps = self._config.per_node if per_node is None else per_node
                self._config = replace(self._config, shards=len(self._ring), per_node=keeps)
                registry.save(self._cache, self._config)
                registry.save_ring(self._cache, self._ring)
                givers: dict[str, Give] = {
                    m: bind(self._shards[m], Shard.give) for m in previous.members
                }
                self._move = Move(previous, givers, evacuation=renames is not None)
                self._publish_ring()
            # Outside the lock: clients fetch the new ring while the entries move.
            shards = self.snapshot().shards
            landed = hand_over(previous, self._ring, shards, renames or previous.members, until)
            if renames and before is not None and self._config.storage is None:
                count_left_behind(shards, renames, before, landed)
            with self._lock:
                self._move = None
                self._publish_ring()
                for member in previous.members:
                    if member not in self._ring:
                        ray.kill(self._shards.pop(member), no_restart=True)
                        self._homes.pop(member, None)
                        drop_everywhere(self._cache, member)
                return Snapshot(self._ring, dict(self._shards), self._config)

    def shutdown(self) -> None:
        """Stop changing the shards, so that they can be killed; see :func:`registry.remove`."""
        self._stopped.set()
        with self._moving, self._lock:  # a resize or replacement under way ends first
            self._shards.clear()

    def _watch(self) -> None:
        while not self._stopped.wait(HEALTH_INTERVAL_S):
            dead = _dead_shards(self.snapshot().shards)
            if dead:
                self._replace(dead)
            nodes = len(alive_nodes())
            if self._config.per_node and nodes > len(self._ring):
                self._resize(nodes, per_node=True)  # one shard per node, as nodes join
            self._watch_drains()

    def _watch_drains(self) -> None:
        # Each drain gets a thread, so that the health checks go on while it moves.
        for node, deadline in draining_nodes().items():
            if node not in self._draining and node != self._node:
                self._draining.add(node)
                evacuation = threading.Thread(
                    target=self._evacuate, args=(node, deadline), name="evacuation", daemon=True
                )
                evacuation.start()

    def _replace(self, dead: dict[str, Any]) -> None:
        """Start a new shard for each member whose shard died for good (its node is gone).

        A crashed shard on a live node is restarted by Ray under the same handle; one
        pinned to a dead node cannot be, so it is replaced, and the ring's epoch moves on
        so that clients fetch the new handle.
        """
        with self._moving:
            if self._stopped.is_set():
                return  # shutting down: the shards are about to be killed
            replaced = [m for m, handle in dead.items() if self._shards.get(m) is handle]
            if not replaced:
                return
            # Placing and starting them asks the GCS, which is slow while it buries a
            # node: clients' snapshots go on meanwhile, with the old ring.
            ring = self._ring.with_members(self._ring.members)
            started = {member: self._start_shard(member, ring) for member in replaced}
            with self._lock:
                self._ring = ring
                self._shards.update(started)
                # The replacements start with the new ring. Waiting for them to learn it
                # would hold every client's snapshot until they are up.
                self._publish_ring(started=set(started))

    def _started(self, members: list[str]) -> Shards:
        """Start a shard for each of ``members``; return them once they are up.

        Called with no lock but ``_moving`` held: during a resize or an evacuation,
        clients go on with the old ring until the new shards can answer, so that none
        waits on a shard starting. (A dead shard's replacement is not waited for: the
        writes its callers would drop meanwhile cost more than their wait.)
        """
        started = {member: self._start_shard(member) for member in members}
        with contextlib.suppress(GetTimeoutError, *SHARD_DOWN):  # the watcher replaces it
            ray.get([call_remote(s, Shard.ping) for s in started.values()], timeout=PING_TIMEOUT_S)
        return started

    def _publish_ring(self, started: AbstractSet[str] = frozenset()) -> None:
        # Shards learn the new epoch before any client can, so a client holding the new
        # ring never meets a shard that would still serve it with the old one. During a
        # move, the shards it removes learn it too, so that they turn old clients away.
        # Shards ``started`` with the current ring know it already.
        capacity = self._config.shard_capacity()
        move = self._move
        members = set(self._ring.members).union(move.previous.members if move else ())
        members -= started
        calls = [
            call_remote(self._shards[m], Shard.set_ring, self._ring, capacity, move)
            for m in members
        ]
        for call in calls:
            with contextlib.suppress(*SHARD_DOWN):  # the health watcher replaces it
                ray.get(call)

    def _start_shard(self, member: str, ring: Ring | None = None) -> Any:
        # Detached, so that a shard outlives a router that crashed or was killed; a
        # running shard of this name is found rather than started again. It starts with
        # ``ring``, the current one unless given.
        return (
            ray.remote(concurrency_groups={WAITERS: MAX_WAITERS, POLLERS: MAX_POLLERS})(Shard)  # type: ignore[call-overload]
            .options(
                name=shard_actor_name(self._cache, member),
                namespace=NAMESPACE,
                lifetime="detached",
                get_if_exists=True,
                max_restarts=-1,
                num_cpus=0,
                scheduling_strategy=self._placement(member),
            )
            .remote(self._cache, member, self._config, ring or self._ring)
        )

    def _placement(self, member: str) -> NodeAffinitySchedulingStrategy:
        # The live node with the fewest of this cache's shards: one per node, new nodes
        # first. The affinity is hard because Ray's soft affinity does not place actors
        # that ask for no resources; a shard whose node dies is replaced by the watcher.
        draining = self._draining.union(draining_nodes())
        alive = [node for node in alive_nodes() if node not in draining] or alive_nodes()
        placed = Counter(node for m, node in self._homes.items() if m != member and node in alive)
        node = min(alive, key=lambda candidate: (placed[candidate], candidate))
        self._homes[member] = node
        return NodeAffinitySchedulingStrategy(node_id=node, soft=False)


def _recorded_ring(cache: str, shards: int) -> Ring:
    """Return the ring recorded for ``cache`` if it has ``shards`` members, else a new one."""
    ring = registry.load_ring(cache)
    if ring is not None and len(ring) == shards:
        return ring
    return Ring(tuple(shard_id(i) for i in range(shards)))


def _resized(members: tuple[str, ...], shards: int) -> list[str]:
    """Return ``shards`` members: the lowest-numbered of ``members``, then new ones above them.

    A resize only adds or only removes the highest-numbered members, so that the shards
    that give entries and those that receive them are apart (see
    :mod:`raycache.actors.resizing`); from ``shard-0`` up, the ring stays canonical.
    """
    ordered = sorted(members, key=shard_index)
    return ordered[:shards] + _fresh_members(set(ordered), shards - len(ordered))


def _fresh_members(taken: set[str], count: int) -> list[str]:
    """Return ``count`` member ids numbered above every one in ``taken``."""
    start = max(map(shard_index, taken), default=-1) + 1
    return [shard_id(start + i) for i in range(max(0, count))]


def _dead_shards(shards: Shards) -> Shards:
    """Return the members, with their handles, whose shard is dead and will not restart."""
    pings = {member: call_remote(shard, Shard.ping) for member, shard in shards.items()}
    dead = {}
    for member, ping in pings.items():
        try:
            ray.get(ping, timeout=PING_TIMEOUT_S)
        except SHARD_GONE:
            dead[member] = shards[member]
        except (GetTimeoutError, *SHARD_DOWN):
            continue  # busy, or restarting under the same handle
    return dead


STORAGE_ENVIRONMENT = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)
"""Where S3 is, as this process sees it: passed on to the shards of a cache on S3.

Credentials are not: they stay out of Ray's runtime environments, and come from each
node's own AWS credential chain (an instance role, say).
"""


def start_router(name: str, config: CacheConfig) -> ActorHandle[Router]:
    """Return the router of cache ``name``, starting one with ``config`` if there is none.

    The router is detached, so that the cache outlives the job that created it, and Ray
    restarts it if it crashes; calls made meanwhile wait for the restart.
    """
    actor: Any = ray.remote(Router)  # Ray's stubs type the handle as a union
    router: ActorHandle[Router] = actor.options(
        **lasting(router_name(name)),
        max_task_retries=-1,
        max_concurrency=ROUTER_CONCURRENCY,
        resources={HEAD_NODE_RESOURCE: 0.001},
        # The router's environment is its shards' too.
        runtime_env=_storage_environment(config),
    ).remote(name, config)
    return router


def _storage_environment(config: CacheConfig) -> dict[str, Any] | None:
    remote = config.storage is not None and config.storage.local_root is None
    environment = {k: os.environ[k] for k in STORAGE_ENVIRONMENT if remote and os.environ.get(k)}
    return {"env_vars": environment} if environment else None


def find_router(name: str) -> ActorHandle[Router] | None:
    """Return the router of cache ``name``, starting it again if the cache outlived it.

    None means there is no such cache: neither a router nor recorded settings.
    """
    try:
        router: ActorHandle[Router] = ray.get_actor(router_name(name), namespace=NAMESPACE)
        return router
    except ValueError:
        config = registry.load(name)
        return None if config is None else start_router(name, config)
