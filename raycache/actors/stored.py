"""Large values as a shard holds them: references to objects in Ray's object store."""

from __future__ import annotations

from typing import Any

import ray


class StoredRef:
    """A large value held in Ray's object store and owned by this shard."""

    __slots__ = ("ref",)

    def __init__(self, ref: ray.ObjectRef[Any]) -> None:
        self.ref = ref


def adopt_large(ref: ray.ObjectRef[Any]) -> StoredRef:
    """Take over a large value another shard held, such as one a resize moves here.

    The value is copied into an object this shard owns, because an object is lost with
    its owner and the shard that held it is about to let it go, or to be killed. The one
    place that decides who owns a moved value.
    """
    return StoredRef(ray.put(ray.get(ref)))
