"""Shard counters exported through ``ray.util.metrics``, for Prometheus and the dashboard.

Every series is tagged with its cache and shard. The series are the fields of a shard's
stats row (:class:`~raycache.core.stats.ShardStats`): its counters as
``raycache_<field>_total``, and its gauges as ``raycache_<field>``. A shard exports on a
timer rather than per operation, so the data path pays nothing for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ray.util.metrics import Counter, Gauge

from raycache.core.stats import COUNTERS, GAUGES, ShardStats

EXPORT_INTERVAL_S = 2.0
"""How often a shard publishes its counters."""

TAG_KEYS = ("cache", "shard")
"""The tags on every raycache series."""


class ShardMetrics:
    """The metric series of one shard, fed from its stats row."""

    def __init__(self, cache: str, shard: str) -> None:
        tags = {"cache": cache, "shard": shard}
        self._counters = {
            name: Counter(f"raycache_{name}", f"Cache {name}, per shard.", TAG_KEYS)
            for name in COUNTERS
        }
        self._gauges = {
            name: Gauge(f"raycache_{name}", f"Cache {name} held, per shard.", TAG_KEYS)
            for name in GAUGES
        }
        for metric in (*self._counters.values(), *self._gauges.values()):
            metric.set_default_tags(tags)
        self._last: dict[str, float] = dict.fromkeys(COUNTERS, 0.0)

    def export(self, stats: ShardStats) -> None:
        """Publish a stats row: counters by their increase since the last export."""
        for name, counter in self._counters.items():
            value = getattr(stats, name)
            if value > self._last[name]:
                counter.inc(value - self._last[name])
            self._last[name] = value
        for name, gauge in self._gauges.items():
            gauge.set(getattr(stats, name))

    def start(self, read: Callable[[], ShardStats]) -> None:
        """Export ``read()`` every few seconds, from a daemon thread that ends with the shard."""

        def loop() -> None:
            while True:
                time.sleep(EXPORT_INTERVAL_S)
                self.export(read())

        threading.Thread(target=loop, name="raycache-metrics", daemon=True).start()
