"""What the actors need to know of the cluster itself."""

from __future__ import annotations

from typing import Any

import ray


def alive_nodes() -> list[str]:
    """Return the ids of the connected cluster's live nodes, sorted."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return sorted(node["NodeID"] for node in nodes if node.get("Alive"))
