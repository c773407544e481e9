"""What the actors need to know of the cluster itself."""

from __future__ import annotations

from typing import Any

import ray

from raycache.core.naming import NAMESPACE


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
