"""Faults to inject into a running cache: killed shards and routers, resizes, nodes lost."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

import raycache
from raycache.actors.cluster import NAMESPACE, router_name, shard_actor_name, shard_id


class ShardKiller:
    """Kills a random shard of a cache per call, alternating the two ways a shard dies.

    A shard killed with ``no_restart=False`` is restarted by Ray under the same handle;
    one killed for good is replaced by the router's health watcher, under a new handle
    and a new ring epoch.
    """

    def __init__(self, cache: raycache.Cache, seed: int = 0) -> None:
        self._cache = cache
        self._rng = random.Random(seed)
        self.kills = 0

    def __call__(self) -> bool:
        """Kill one shard; return False if the one drawn is dead and not yet replaced."""
        member = shard_id(self._rng.randrange(self._cache.config.shards))
        try:
            shard = ray.get_actor(shard_actor_name(self._cache.name, member), namespace=NAMESPACE)
        except ValueError:
            return False
        ray.kill(shard, no_restart=self.kills % 2 == 1)
        self.kills += 1
        return True


class RouterKiller:
    """Kills a cache's router per call, alternating a crash (Ray restarts it) and for good.

    A router killed for good is re-created by the next handle that needs it.
    """

    def __init__(self, cache: raycache.Cache) -> None:
        self._cache = cache
        self.kills = 0

    def __call__(self) -> bool:
        """Kill the router; return False if there is none right now."""
        try:
            router = ray.get_actor(router_name(self._cache.name), namespace=NAMESPACE)
        except ValueError:
            return False
        ray.kill(router, no_restart=self.kills % 2 == 1)
        self.kills += 1
        return True


class Resizer:
    """Resizes a cache per call, between its shard count and one more, and back."""

    def __init__(self, cache: raycache.Cache) -> None:
        self._cache = cache
        self._sizes = (cache.config.shards + 1, cache.config.shards)
        self.resizes = 0

    def __call__(self) -> bool:
        """Resize once."""
        self._cache.resize(self._sizes[self.resizes % 2])
        self.resizes += 1
        return True


def wait_until_serving(cache: raycache.Cache, timeout: float = 60.0) -> float:
    """Wait until every shard answers again; return how many seconds that took."""
    started = time.monotonic()
    while len(cache.stats()["shards"]) < cache.config.shards:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"shards of {cache.name!r} did not come back in {timeout}s")
        time.sleep(0.2)
    return time.monotonic() - started


class NodeSwapper:
    """Removes a worker node that holds a shard per call, and adds a fresh node instead."""

    def __init__(self, cluster: Cluster, cache: raycache.Cache, **node_args: Any) -> None:
        self._cluster = cluster
        self._cache = cache
        self._node_args = node_args

    def __call__(self) -> bool:
        """Swap one node; return False if no worker node holds a shard."""
        victim = holding_a_shard(self._cluster, self._cache)
        if victim is None:
            return False
        self._before_removal(victim)
        self._cluster.remove_node(victim)
        self._cluster.add_node(**self._node_args)
        return True

    def _before_removal(self, victim: Any) -> None:
        """Nothing: the node is lost without notice."""


def drain(cluster: Cluster, node_id: str, deadline_s: int) -> None:
    """Drain ``node_id`` as a cloud's spot preemption does, with ``ray drain-node``."""
    subprocess.run(
        [
            str(Path(sys.executable).with_name("ray")),
            "drain-node",
            f"--address={cluster.address}",
            f"--node-id={node_id}",
            "--reason=DRAIN_NODE_REASON_PREEMPTION",
            "--reason-message=spot instance reclaimed",
            f"--deadline-remaining-seconds={deadline_s}",
        ],
        check=True,
        capture_output=True,
    )


class NodeDrainer(NodeSwapper):
    """Drains a worker node that holds a shard per call, removes it at the deadline, adds one."""

    def __init__(
        self, cluster: Cluster, cache: raycache.Cache, deadline_s: int = 15, **node_args: Any
    ) -> None:
        super().__init__(cluster, cache, **node_args)
        self._deadline_s = deadline_s

    def _before_removal(self, victim: Any) -> None:
        """Give the node its notice, as a cloud's preemption does, and wait it out."""
        drain(self._cluster, victim.node_id, self._deadline_s)
        time.sleep(self._deadline_s)


def holding_a_shard(cluster: Cluster, cache: raycache.Cache) -> Any:
    """Return a worker node of ``cluster`` that holds a shard of ``cache``, or None."""
    holders = {row["node"] for row in cache.stats()["shards"]}
    return next((n for n in cluster.worker_nodes if n.node_id in holders), None)
