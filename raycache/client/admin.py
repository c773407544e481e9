"""Cluster-wide views over every cache: what is running, for the CLI and dashboards."""

from __future__ import annotations

from typing import Any

from raycache.actors import registry
from raycache.client.cache import Cache


def running_caches() -> list[dict[str, Any]]:
    """Return a summary row per cache running on the connected cluster."""
    rows = []
    for name in cache_names():
        stats = Cache.attach(name).stats()
        rows.append(
            {
                "name": name,
                "shards": len(stats["shards"]),
                **{k: stats[k] for k in ("entries", "bytes", "capacity", "hit_ratio")},
            }
        )
    return rows


def cache_names() -> list[str]:
    """Return the names of the caches on the connected cluster, whether or not a router runs."""
    return registry.names()
