"""Creating and finding a cache on the cluster: the router actor, and the settings it runs.

A cache is get-or-create by name: the first handle starts its router (a detached actor,
restarted by Ray if it crashes), and later handles find the running one, or start it
again from the cache's recorded settings if it was killed. Settings are
checked on the client before anything is started.
"""

from __future__ import annotations

import concurrent.futures
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import ray

from raycache.actors.cluster import alive_nodes
from raycache.actors.handles import call_remote
from raycache.actors.router import Router, find_router, start_router
from raycache.client.shard_client import ShardClient
from raycache.core import validation
from raycache.core.config import MIN_SHARDS, CacheConfig, parse_capacity, validate_capacity
from raycache.core.storage import Storage, StorageTier, parse_storage
from raycache.core.storage.trust import entrust
from raycache.core.store import DEFAULT_POLICY, POLICIES
from raycache.errors import CacheNotFoundError

T = TypeVar("T")


_BACKGROUND = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="raycache-connect")


def requested_settings(
    shards: object,
    capacity: object,
    policy: object,
    ttl: object,
    storage: object = None,
    storage_capacity: object = None,
    storage_key: object = None,
    storage_shared: object = False,
    elastic: object = False,
) -> dict[str, Any]:
    """Check the settings a caller asked for; None stands for "raycache's default".

    ``storage`` None means ``RAYCACHE_STORAGE``, and an unusable one raises ``ValueError``;
    ``storage_key`` None means ``RAYCACHE_STORAGE_KEY``.
    """
    located = entrust(parse_storage(storage), key=storage_key, shared=storage_shared)
    return {
        "shards": None if shards is None else validation.integer(shards, "shards", minimum=1),
        "capacity": validate_capacity(capacity),
        "policy": validation.choice(policy, POLICIES, "policy"),
        "ttl": validation.seconds(ttl, "ttl"),
        "storage": located,
        "storage_capacity": _storage_capacity(located, storage_capacity),
        "elastic": validation.flag(elastic, "elastic"),
    }


def create(name: str, requested: dict[str, Any], timeout: float | None = None) -> ShardClient:
    """Start cache ``name`` with ``requested`` settings, or join it if it is running.

    A running cache keeps its settings; those asked for here that differ are warned of.
    """
    if not ray.is_initialized():
        ray.init()
    resolved = _resolve(requested)
    router = start_router(name, resolved)
    ray.get(call_remote(router, Router.wait_ready))
    client = ShardClient(name, router, ray.get(call_remote(router, Router.snapshot)), timeout)
    _warn_on_conflict(name, requested, resolved, client.config)
    return client


def attach(name: str, timeout: float | None = None) -> ShardClient:
    """Return a client of the running cache ``name``; raise if there is none."""
    if not ray.is_initialized():
        ray.init()
    router = find_router(name)
    if router is None:
        raise CacheNotFoundError(f"no cache named {name!r} is running")
    return ShardClient(name, router, ray.get(call_remote(router, Router.snapshot)), timeout)


def in_background(connecting: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
    """Run ``connecting(*args)``, which blocks on the cluster, on a thread of its own.

    For an event loop's sake: the loop awaits the future instead. Ray itself is started
    here, in the caller's thread, if it is not yet: it must start on the main thread.
    """
    if not ray.is_initialized():
        ray.init()
    return _BACKGROUND.submit(connecting, *args)


def _resolve(requested: dict[str, Any]) -> CacheConfig:
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return CacheConfig(
        shards=requested["shards"] or max(MIN_SHARDS, len(alive_nodes())),
        per_node=requested["shards"] is None and not requested["elastic"],
        elastic=requested["elastic"],
        capacity=parse_capacity(
            requested["capacity"], object_store_bytes=int(resources.get("object_store_memory", 0))
        ),
        policy=requested["policy"],
        ttl=requested["ttl"],
        storage=requested["storage"],
        storage_capacity=requested["storage_capacity"],
    )


def _storage_capacity(storage: Storage | None, capacity: object) -> int | str | None:
    if capacity is None:
        return None
    if storage is None:
        raise ValueError("storage_capacity needs storage: give storage= or set RAYCACHE_STORAGE")
    StorageTier(storage, "check", capacity=capacity)  # type: ignore[arg-type]  # raises as a shard would
    return capacity  # type: ignore[return-value]


def _warn_on_conflict(
    name: str, requested: dict[str, Any], resolved: CacheConfig, config: CacheConfig
) -> None:
    explicit = {k for k, v in requested.items() if v not in (None, False) and k != "policy"}
    if requested["policy"] != DEFAULT_POLICY:
        explicit.add("policy")
    differing = [k for k in sorted(explicit) if getattr(resolved, k) != getattr(config, k)]
    if differing:
        running = ", ".join(f"{k}={getattr(config, k)!r}" for k in differing)
        warnings.warn(
            f"cache {name!r} is already running with {running}; the running settings apply",
            stacklevel=4,
        )
