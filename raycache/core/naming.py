"""Where a cache's actors live: one Ray namespace, names derived from the cache's name.

>>> router_name("default")
'default/router'
>>> shard_actor_name("default", shard_id(3))
'default/shard-3'
>>> vault_name("ab12")
'vault:ab12'
"""

from __future__ import annotations

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
