"""Shard counters exported through ``ray.util.metrics``, for Prometheus and the dashboard.

Every series is tagged with its cache and shard. Counters carry hits, misses, evictions
and expirations, and the durable tier's hits, misses, write and read errors and corrupt
files; gauges carry bytes, entries and capacity, and the durable tier's bytes and
entries. A shard exports on a timer rather than per operation, so the data path pays
nothing for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from ray.util.metrics import Counter, Gauge

EXPORT_INTERVAL_S = 2.0
"""How often a shard publishes its counters."""

TAG_KEYS = ("cache", "shard")
"""The tags on every raycache series."""

COUNTED = (
    "hits",
    "misses",
    "evictions",
    "expirations",
    "storage_hits",
    "storage_misses",
    "storage_write_errors",
    "storage_read_errors",
    "storage_corrupt",
    "storage_rejected",
)
"""The fields of a shard's stats row exported as counters, ``raycache_<field>_total``."""

GAUGED = ("bytes", "entries", "capacity", "storage_bytes", "storage_entries")
"""The fields of a shard's stats row exported as gauges, ``raycache_<field>``."""


class ShardMetrics:
    """The metric series of one shard, fed from its stats row."""

    def __init__(self, cache: str, shard: str) -> None:
        tags = {"cache": cache, "shard": shard}
        self._counters = {
            name: Counter(f"raycache_{name}", f"Cache {name}, per shard.", TAG_KEYS)
            for name in COUNTED
        }
        self._gauges = {
            name: Gauge(f"raycache_{name}", f"Cache {name} held, per shard.", TAG_KEYS)
            for name in GAUGED
        }
        for metric in (*self._counters.values(), *self._gauges.values()):
            metric.set_default_tags(tags)
        self._last: dict[str, float] = dict.fromkeys(COUNTED, 0.0)

    def export(self, stats: Mapping[str, float]) -> None:
        """Publish a stats row: counters by their increase since the last export."""
        for name, counter in self._counters.items():
            value = stats[name]
            if value > self._last[name]:
                counter.inc(value - self._last[name])
            self._last[name] = value
        for name, gauge in self._gauges.items():
            gauge.set(stats[name])

    def start(self, read: Callable[[], Mapping[str, float]]) -> None:
        """Export ``read()`` every few seconds, from a daemon thread that ends with the shard."""

        def loop() -> None:
            while True:
                time.sleep(EXPORT_INTERVAL_S)
                self.export(read())

        threading.Thread(target=loop, name="raycache-metrics", daemon=True).start()
