"""What the actors need to know of the cluster: where they live, and when they are gone.

Every raycache actor lives in one Ray namespace, named from its cache's name; the live
nodes decide how many shards a cache runs by default; and a call that raises one of
:data:`SHARD_GONE` or :data:`SHARD_DOWN` reached a shard that is not there.

>>> router_name("default")
'default/router'
>>> shard_actor_name("default", shard_id(3))
'default/shard-3'
>>> vault_name("ab12")
'vault:ab12'
"""

from __future__ import annotations

from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnschedulableError, RayActorError

NAMESPACE = "raycache"
"""The Ray namespace that holds every raycache actor, whatever job created it."""


VAULT_PREFIX = "vault:"
"""The start of every vault's actor name; the rest is its node's id."""


def vault_name(node_id: str) -> str:
    """Return the actor name of the vault of node ``node_id``, shared by every cache."""
    return VAULT_PREFIX + node_id


def router_name(cache: str) -> str:
    """Return the actor name of the router of cache ``cache``."""
    return f"{cache}/router"


def shard_id(index: int) -> str:
    """Return the ring member id of the shard numbered ``index``."""
    return f"shard-{index}"


def shard_index(member: str) -> int:
    """Return the number in a shard's ring member id (the inverse of :func:`shard_id`)."""
    return int(member.rsplit("-", 1)[1])


def shard_actor_name(cache: str, member: str) -> str:
    """Return the actor name of the shard ``member`` of cache ``cache``."""
    return f"{cache}/{member}"


SHARD_GONE = (ActorDiedError, ActorUnschedulableError)
"""Errors meaning a shard is dead for good: its node is gone, or a resize removed it."""

SHARD_DOWN = (RayActorError, ActorUnschedulableError)
"""Errors meaning a shard did not answer: gone, or restarting under the same handle."""


def alive_nodes() -> list[str]:
    """Return the ids of the connected cluster's live nodes, sorted."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return sorted(node["NodeID"] for node in nodes if node.get("Alive"))


def lasting(name: str) -> dict[str, Any]:
    """Return the options of a named actor that outlives its creator: one per name.

    Detached, restarted whenever it dies, found rather than started twice, and asking for
    no CPU, since it only keeps state and answers calls.
    """
    return {
        "name": name,
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        "num_cpus": 0,
    }
