"""What outlives a cache's router: its settings in Ray's internal KV, and its shards.

The router holds a cache's membership, but it must not be the only one: a router killed
for good, or lost with the head node's workers, is started again from what is here. The
settings live in the GCS (Ray's internal KV), which outlives every worker process, and the
shards are detached actors, found by their names. A cache exists while its settings do.
"""

from __future__ import annotations

import contextlib
import pickle
from typing import Any, cast

import ray
from ray.exceptions import RayActorError
from ray.experimental import internal_kv

from raycache.actors.cluster import NAMESPACE, router_name, shard_actor_name, shard_index
from raycache.actors.vault import drop_everywhere, wait_dropped
from raycache.core.config import CacheConfig
from raycache.core.ring import Ring

_PREFIX = "cache:"
_RING_PREFIX = "ring:"


def save(cache: str, config: CacheConfig) -> None:
    """Record ``config`` as the settings cache ``cache`` runs with.

    Pickled, not JSON: the settings hold a :class:`~raycache.core.storage.Storage`,
    which may hold a filesystem object and a key in bytes, and must come back as one.
    The KV is the cluster's own, as trusted as its actors.
    """
    value = pickle.dumps(config)
    internal_kv._internal_kv_put(_PREFIX + cache, value, overwrite=True, namespace=NAMESPACE)


def load(cache: str) -> CacheConfig | None:
    """Return the settings recorded for cache ``cache``, or None if it does not exist."""
    value = internal_kv._internal_kv_get(_PREFIX + cache, namespace=NAMESPACE)
    return None if value is None else cast(CacheConfig, pickle.loads(value))


def save_ring(cache: str, ring: Ring) -> None:
    """Record the members of cache ``cache``'s ring, and their slots.

    A ring of ``shard-0`` to ``shard-{n-1}`` is rebuilt from its size alone; once a shard
    moved off a drained node under a new member, only this record places keys as before.
    """
    value = pickle.dumps(ring)
    internal_kv._internal_kv_put(_RING_PREFIX + cache, value, overwrite=True, namespace=NAMESPACE)


def load_ring(cache: str) -> Ring | None:
    """Return the ring recorded for cache ``cache``, or None."""
    value = internal_kv._internal_kv_get(_RING_PREFIX + cache, namespace=NAMESPACE)
    return None if value is None else cast(Ring, pickle.loads(value))


def names() -> list[str]:
    """Return the names of the caches whose settings are recorded, router or not."""
    keys = internal_kv._internal_kv_list(_PREFIX, namespace=NAMESPACE)
    return sorted(key.decode().removeprefix(_PREFIX) for key in keys)


def shards(cache: str) -> dict[str, Any]:
    """Return a handle on every shard of ``cache`` that is alive, by ring member."""
    prefix = shard_actor_name(cache, "shard-")
    found = {}
    for actor in ray.util.list_named_actors(all_namespaces=True):
        name = actor["name"]
        if actor["namespace"] == NAMESPACE and name.startswith(prefix):
            member = name.removeprefix(shard_actor_name(cache, ""))
            with contextlib.suppress(ValueError):  # killed since it was listed
                found[member] = ray.get_actor(name, namespace=NAMESPACE)
    return dict(sorted(found.items(), key=lambda item: shard_index(item[0])))


def remove(cache: str) -> None:
    """Forget cache ``cache``'s settings, stop its router, kill its shards, free its values.

    The settings go first, so that no client starts the router again meanwhile; the
    router is told to stop first, so that it starts no shard while they are killed. Then
    the vaults free the values they kept for the cache.
    """
    internal_kv._internal_kv_del(_PREFIX + cache, namespace=NAMESPACE)
    internal_kv._internal_kv_del(_RING_PREFIX + cache, namespace=NAMESPACE)
    with contextlib.suppress(ValueError):  # no router: killed, or never started
        router = ray.get_actor(router_name(cache), namespace=NAMESPACE)
        with contextlib.suppress(RayActorError):
            ray.get(router.shutdown.remote())
        ray.kill(router, no_restart=True)
    for shard in shards(cache).values():
        ray.kill(shard, no_restart=True)
    wait_dropped(drop_everywhere(cache))  # only once no shard is left to keep more
