"""Large values as a shard holds them: references to objects in Ray's object store."""

from __future__ import annotations

from typing import Any

import ray


class StoredRef:
    """A large value held in Ray's object store, owned by the vault of its shard's node."""

    __slots__ = ("ref",)

    def __init__(self, ref: ray.ObjectRef[Any]) -> None:
        self.ref = ref
