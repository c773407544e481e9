"""Eviction policies by name: which entry a :class:`~raycache.core.store.Store` evicts next.

>>> make_policy("lru").name
'lru'
>>> make_policy("arc")
Traceback (most recent call last):
...
ValueError: unknown policy 'arc'; choose one of: adaptive, fifo, gdsf, lfu, lru, tinylfu
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from raycache.core.policies.adaptive import AdaptivePolicy
from raycache.core.policies.base import Policy
from raycache.core.policies.fifo import FIFOPolicy
from raycache.core.policies.gdsf import GDSFPolicy
from raycache.core.policies.lfu import LFUPolicy
from raycache.core.policies.lru import LRUPolicy
from raycache.core.policies.tinylfu import TinyLFUPolicy

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "AdaptivePolicy",
    "FIFOPolicy",
    "GDSFPolicy",
    "LFUPolicy",
    "LRUPolicy",
    "Policy",
    "TinyLFUPolicy",
    "make_policy",
]

POLICIES: Final[Mapping[str, type[Policy]]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (AdaptivePolicy, LRUPolicy, LFUPolicy, FIFOPolicy, GDSFPolicy, TinyLFUPolicy)
    }
)
"""Every built-in policy by name."""

DEFAULT_POLICY: Final = "adaptive"
"""The policy a store or a cache uses when none is given."""


def make_policy(name: str) -> Policy:
    """Return a new, empty policy of the given name."""
    if not isinstance(name, str):
        raise TypeError(f"policy name must be a str, not {type(name).__name__}")
    cls = POLICIES.get(name)
    if cls is None:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {name!r}; choose one of: {known}")
    return cls()
