"""A cache's settings, checked on the client before anything is sent to the cluster.

Capacities are given in bytes as an int, as a size string with a binary or decimal unit,
or as a percentage of the cluster's object store:

>>> parse_capacity("8GiB", object_store_bytes=0)
8589934592
>>> parse_capacity("512MB", object_store_bytes=0)
512000000
>>> parse_capacity("30%", object_store_bytes=1000)
300
>>> parse_capacity("lots", object_store_bytes=0)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: capacity must be a positive int of bytes up to 2**63 - 1, ... got 'lots'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from raycache.core import validation

if TYPE_CHECKING:
    from raycache.core.storage.location import Storage

DEFAULT_CAPACITY_FRACTION = 0.3
"""Share of the cluster's object store a cache takes when no capacity is given."""

MIN_SHARDS = 2
"""Fewest shards a cache starts with when the number is left to raycache."""

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
}  # fmt: skip
MAX_BYTES = 2**63 - 1
"""The largest capacity, in bytes: what a storage file's header can record."""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True)
class CacheConfig:
    """The settings a cache runs with, as the router holds them.

    ``capacity`` is in bytes across all shards; ``ttl`` is the default time to live in
    seconds, or None for entries that never expire. ``per_node`` means the number of
    shards was left to raycache: one per live node, grown as nodes join; ``elastic`` that
    the cluster's workers come and go (see :class:`~raycache.Cache`). ``storage`` is
    the durable tier's location, or None for a cache in memory only; ``storage_capacity``
    is its budget as given (a share of a volume is measured where the files are), or None.
    """

    shards: int
    capacity: int
    policy: str
    ttl: float | None
    per_node: bool = False
    elastic: bool = False
    storage: Storage | None = None
    storage_capacity: int | str | None = None

    def shard_capacity(self, shards: int | None = None) -> int:
        """Return the byte budget of each shard when ``shards`` shards share the capacity."""
        return max(1, self.capacity // (shards or self.shards))


def validate_capacity(capacity: object) -> int | str | None:
    """Check the form of ``capacity`` without needing the cluster; raise if it is malformed."""
    if capacity is not None:
        parse_capacity(capacity, object_store_bytes=0)  # type: ignore[arg-type]
    return capacity  # type: ignore[return-value]


def parse_capacity(
    capacity: int | str | None,
    *,
    object_store_bytes: int,
    what: str = "capacity",
    whole: str = "the object store",
) -> int:
    """Return ``capacity`` in bytes; None means a default share of the object store.

    ``what`` names the argument in errors, and a percentage is of ``object_store_bytes``,
    which errors call ``whole``: :mod:`raycache.core.storage` parses ``storage_capacity``
    as a share of the storage volume.
    """
    if capacity is None:
        return max(1, int(object_store_bytes * DEFAULT_CAPACITY_FRACTION))
    if isinstance(capacity, bool) or not isinstance(capacity, (int, str)):
        raise TypeError(
            f"{what} must be an int of bytes or a str such as '8GiB' or '30%', "
            f"got {type(capacity).__name__}"
        )
    if isinstance(capacity, int):
        if 0 < capacity <= MAX_BYTES:
            return capacity
    else:
        parsed = _parse_capacity_text(capacity, object_store_bytes)
        if parsed is not None and 0 < parsed <= MAX_BYTES:
            return parsed
    raise ValueError(
        f"{what} must be a positive int of bytes up to 2**63 - 1, a size such as '8GiB' or "
        f"'512MB', or a percentage such as '30%' of {whole}; got {validation.shown(capacity)}"
    )


def _parse_capacity_text(text: str, object_store_bytes: int) -> int | None:
    percent = _PERCENT.match(text)
    if percent:
        share = float(Decimal(percent.group(1)))
        if not 0 < share <= 100:
            return None
        # With no cluster to measure yet, any valid percentage passes the form check.
        return max(1, int(object_store_bytes * share / 100)) if object_store_bytes else 1
    size = _SIZE.match(text)
    if size is None or size.group(2).lower() not in _UNITS:
        return None
    # Decimal, not float: "1" followed by 400 zeros is a number too large, not infinity.
    return int(Decimal(size.group(1)) * _UNITS[size.group(2).lower()])
