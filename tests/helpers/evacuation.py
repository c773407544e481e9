"""How a drained node's entries move off it: what is kept, how fast, and the slowest read."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from ray.cluster_utils import Cluster

import raycache
from tests.helpers.faults import drain, holding_a_shard


@dataclass(frozen=True)
class Evacuation:
    """One drain's measurements."""

    small: int
    large: int
    small_kept: int
    large_kept: int
    bytes_moved: int
    seconds: float
    slowest_read: float
    wrong: int

    @property
    def seconds_per_gb(self) -> float:
        """Seconds the move took per GB moved."""
        return self.seconds / max(self.bytes_moved / 1e9, 1e-9)


def measure_evacuation(
    cache: raycache.Cache,
    cluster: Cluster,
    *,
    small: int = 2_000,
    large: int = 48,
    large_bytes: int = 2 * 2**20,
    deadline_s: int = 30,
    **node_args: Any,
) -> Evacuation:
    """Fill ``cache``, drain a worker node holding a shard, and measure the move.

    The move ends when no shard is left on the node and the bytes evacuated stop growing;
    readers check every value meanwhile. The node is removed at the deadline and a fresh
    one, started with ``node_args``, takes its place.
    """
    smalls = {f"evacuate-small-{i}": i for i in range(small)}
    larges = {f"evacuate-large-{i}": np.full(large_bytes // 8, i) for i in range(large)}
    cache.put_many(smalls)
    cache.put_many(larges)
    victim = holding_a_shard(cluster, cache)
    assert victim is not None, "no worker node holds a shard"
    moved_before = cache.stats()["evacuated_bytes"]
    reader = _Reader(cache, smalls, dict(list(larges.items())[:8]))
    reader.start()
    started = time.perf_counter()
    drain(cluster, victim.node_id, deadline_s)
    seconds = _wait_for_the_move(cache, victim.node_id, started + deadline_s) - started
    time.sleep(max(0.0, started + deadline_s - time.perf_counter()))
    cluster.remove_node(victim)
    cluster.add_node(**node_args)
    reader.stop()
    found = cache.get_many(list(smalls))
    kept = sum(1 for key, value in found.items() if value == smalls[key])
    large_found = cache.get_many(list(larges))
    large_kept = sum(1 for k, v in large_found.items() if np.array_equal(v, larges[k]))
    moved = cache.stats()["evacuated_bytes"] - moved_before
    return Evacuation(small, large, kept, large_kept, moved, seconds, reader.slowest, reader.wrong)


def _wait_for_the_move(cache: raycache.Cache, node: str, deadline: float) -> float:
    """Return when no shard is left on ``node`` and the bytes evacuated settled."""
    last, settled_at = -1, time.perf_counter()
    while time.perf_counter() < deadline:
        stats = cache.stats()
        on_node = any(row["node"] == node for row in stats["shards"])
        if stats["evacuated_bytes"] != last:
            last, settled_at = stats["evacuated_bytes"], time.perf_counter()
        elif not on_node and time.perf_counter() - settled_at > 1.0:
            return settled_at
        time.sleep(0.1)
    return deadline


class _Reader(threading.Thread):
    """Reads every key over and over, noting the slowest call and any wrong value."""

    def __init__(self, cache: raycache.Cache, *sets: dict[str, Any]) -> None:
        super().__init__(name="evacuation-reader", daemon=True)
        self._cache = cache
        self._sets = sets
        self._stopped = threading.Event()
        self.slowest = 0.0
        self.wrong = 0

    def run(self) -> None:
        while not self._stopped.is_set():
            for values in self._sets:
                began = time.perf_counter()
                found = self._cache.get_many(list(values))
                self.slowest = max(self.slowest, time.perf_counter() - began)
                self.wrong += sum(
                    1 for key, value in found.items() if not np.array_equal(value, values[key])
                )

    def stop(self) -> None:
        self._stopped.set()
        self.join()
