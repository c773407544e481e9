"""Measures of what a cache holds: the object store's usage and its shards' memory."""

from __future__ import annotations

import time
from typing import Any

import ray
from ray._private.internal_api import get_memory_info_reply, get_state_from_address

import raycache
from raycache.actors.cluster import NAMESPACE, shard_actor_name, shard_id


def object_store_bytes() -> int:
    """Return the bytes in use in the object store of every node, as the raylets count them."""
    state = get_state_from_address(ray.get_runtime_context().gcs_address)
    return int(get_memory_info_reply(state).store_stats.object_store_bytes_used)


def settled_object_store_bytes(target: int, timeout: float = 15.0) -> int:
    """Return the object store's usage once it is at most ``target``, or at ``timeout``.

    Objects are freed asynchronously once their last reference goes, so a drop to the
    baseline shows within moments, not at once.
    """
    deadline = time.monotonic() + timeout
    used = object_store_bytes()
    while used > target and time.monotonic() < deadline:
        time.sleep(0.2)
        used = object_store_bytes()
    return used


def _rss(_: Any) -> int:
    import psutil  # Ray ships psutil with itself: importable once Ray is

    return int(psutil.Process().memory_info().rss)


def shard_rss(cache: raycache.Cache) -> dict[str, int]:
    """Return the resident memory of each shard's process, in bytes."""
    members = [shard_id(i) for i in range(cache.config.shards)]
    shards = [ray.get_actor(shard_actor_name(cache.name, m), namespace=NAMESPACE) for m in members]
    return dict(
        zip(members, ray.get([shard.__ray_call__.remote(_rss) for shard in shards]), strict=True)
    )
