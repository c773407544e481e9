"""Creating and finding a cache on the cluster: the router actor, and the settings it runs.

A cache is get-or-create by name: the first handle starts its router (a detached actor,
restarted by Ray if it crashes), and later handles find the running one. Settings are
checked on the client before anything is started.
"""

from __future__ import annotations

import warnings
from typing import Any

import ray

from raycache.actors.cluster import alive_nodes, lasting
from raycache.actors.router import HEAD_NODE_RESOURCE, ROUTER_CONCURRENCY, Router
from raycache.client.shard_client import ShardClient
from raycache.core import validation
from raycache.core.config import MIN_SHARDS, CacheConfig, parse_capacity, validate_capacity
from raycache.core.naming import NAMESPACE, router_name
from raycache.core.store import DEFAULT_POLICY, POLICIES
from raycache.errors import CacheNotFoundError


def requested_settings(
    shards: object, capacity: object, policy: object, ttl: object
) -> dict[str, Any]:
    """Check the settings a caller asked for; None stands for "raycache's default"."""
    return {
        "shards": None if shards is None else validation.integer(shards, "shards", minimum=1),
        "capacity": validate_capacity(capacity),
        "policy": validation.choice(policy, POLICIES, "policy"),
        "ttl": validation.seconds(ttl, "ttl"),
    }


def create(name: str, requested: dict[str, Any]) -> ShardClient:
    """Start cache ``name`` with ``requested`` settings, or join it if it is running.

    A running cache keeps its settings; those asked for here that differ are warned of.
    """
    if not ray.is_initialized():
        ray.init()
    resolved = _resolve(requested)
    router = _start_router(name, resolved)
    ray.get(router.wait_ready.remote())
    client = ShardClient(name, router, ray.get(router.snapshot.remote()))
    _warn_on_conflict(name, requested, resolved, client.config)
    return client


def attach(name: str) -> ShardClient:
    """Return a client of the running cache ``name``; raise if there is none."""
    if not ray.is_initialized():
        ray.init()
    try:
        router = ray.get_actor(router_name(name), namespace=NAMESPACE)
    except ValueError:
        raise CacheNotFoundError(f"no cache named {name!r} is running") from None
    return ShardClient(name, router, ray.get(router.snapshot.remote()))


def _start_router(name: str, config: CacheConfig) -> Any:
    return (
        ray.remote(Router)
        .options(
            **lasting(router_name(name)),
            max_concurrency=ROUTER_CONCURRENCY,
            resources={HEAD_NODE_RESOURCE: 0.001},
        )
        .remote(name, config)
    )


def _resolve(requested: dict[str, Any]) -> CacheConfig:
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return CacheConfig(
        shards=requested["shards"] or max(MIN_SHARDS, len(alive_nodes())),
        per_node=requested["shards"] is None,
        capacity=parse_capacity(
            requested["capacity"], object_store_bytes=int(resources.get("object_store_memory", 0))
        ),
        policy=requested["policy"],
        ttl=requested["ttl"],
    )


def _warn_on_conflict(
    name: str, requested: dict[str, Any], resolved: CacheConfig, config: CacheConfig
) -> None:
    explicit = {k for k, v in requested.items() if v is not None and k != "policy"}
    if requested["policy"] != DEFAULT_POLICY:
        explicit.add("policy")
    differing = [k for k in sorted(explicit) if getattr(resolved, k) != getattr(config, k)]
    if differing:
        running = ", ".join(f"{k}={getattr(config, k)!r}" for k in differing)
        warnings.warn(
            f"cache {name!r} is already running with {running}; the running settings apply",
            stacklevel=4,
        )
