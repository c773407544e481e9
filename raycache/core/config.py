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
ValueError: capacity must be a positive int of bytes, ... got 'lots'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from numbers import Real

from raycache.core.store import POLICIES

DEFAULT_CAPACITY_FRACTION = 0.3
"""Share of the cluster's object store a cache takes when no capacity is given."""

DEFAULT_POLICY = "lru"
"""Eviction policy used when none is given."""

MIN_SHARDS = 2
"""Fewest shards a cache starts with when the number is left to raycache."""

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True)
class CacheConfig:
    """The settings a cache runs with, as the router holds them.

    ``capacity`` is in bytes across all shards; ``ttl`` is the default time to live in
    seconds, or None for entries that never expire. ``per_node`` means the number of
    shards was left to raycache: one per live node, grown as nodes join.
    """

    shards: int
    capacity: int
    policy: str
    ttl: float | None
    per_node: bool = False

    def shard_capacity(self, shards: int | None = None) -> int:
        """Return the byte budget of each shard when ``shards`` shards share the capacity."""
        return max(1, self.capacity // (shards or self.shards))


def validate_name(name: object) -> str:
    """Return ``name`` if it can name a cache, else raise ``TypeError`` or ``ValueError``."""
    if not isinstance(name, str):
        raise TypeError(f"cache name must be a str, got {type(name).__name__}")
    if not name or "/" in name or name.strip() != name:
        raise ValueError(
            f"cache name must be non-empty, without '/' or surrounding spaces; got {name!r}"
        )
    return name


def validate_shards(shards: object) -> int:
    """Return ``shards`` if it is a positive int, else raise ``TypeError`` or ``ValueError``."""
    if isinstance(shards, bool) or not isinstance(shards, int):
        raise TypeError(f"shards must be an int, got {type(shards).__name__}")
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    return shards


def validate_policy(policy: object) -> str:
    """Return ``policy`` if it names a known eviction policy, else raise ``ValueError``."""
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a str, got {type(policy).__name__}")
    if policy not in POLICIES:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {policy!r}; choose one of: {known}")
    return policy


def validate_ttl(ttl: object, what: str = "ttl") -> float | None:
    """Return ``ttl`` as seconds, or None; raise unless it is None or a finite number > 0.

    ``what`` names the setting in the error, for other durations checked the same way.
    """
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, Real):
        raise TypeError(f"{what} must be a number of seconds or None, got {type(ttl).__name__}")
    seconds = float(ttl)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {ttl!r}")
    return seconds


def validate_capacity(capacity: object) -> int | str | None:
    """Check the form of ``capacity`` without needing the cluster; raise if it is malformed."""
    if capacity is not None:
        parse_capacity(capacity, object_store_bytes=0)  # type: ignore[arg-type]
    return capacity  # type: ignore[return-value]


def parse_capacity(capacity: int | str | None, *, object_store_bytes: int) -> int:
    """Return ``capacity`` in bytes; None means a default share of the object store."""
    if capacity is None:
        return max(1, int(object_store_bytes * DEFAULT_CAPACITY_FRACTION))
    if isinstance(capacity, bool) or not isinstance(capacity, (int, str)):
        raise TypeError(
            f"capacity must be an int of bytes or a str such as '8GiB' or '30%', "
            f"got {type(capacity).__name__}"
        )
    if isinstance(capacity, int):
        if capacity > 0:
            return capacity
    else:
        parsed = _parse_capacity_text(capacity, object_store_bytes)
        if parsed is not None and parsed > 0:
            return parsed
    raise ValueError(
        "capacity must be a positive int of bytes, a size such as '8GiB' or '512MB', "
        f"or a percentage such as '30%' of the object store; got {capacity!r}"
    )


def _parse_capacity_text(text: str, object_store_bytes: int) -> int | None:
    percent = _PERCENT.match(text)
    if percent:
        share = float(percent.group(1))
        if not 0 < share <= 100:
            return None
        # With no cluster to measure yet, any valid percentage passes the form check.
        return max(1, int(object_store_bytes * share / 100)) if object_store_bytes else 1
    size = _SIZE.match(text)
    if size is None or size.group(2).lower() not in _UNITS:
        return None
    return int(float(size.group(1)) * _UNITS[size.group(2).lower()])
