"""raycache: a distributed cache and memoizer that lives inside a Ray cluster.

>>> import raycache
>>> sorted(raycache.POLICIES)
['fifo', 'gdsf', 'lfu', 'lru', 'tinylfu']
"""

from raycache.cache import Cache
from raycache.errors import (
    CacheNotFoundError,
    EmptyRingError,
    EntryTooLargeError,
    RaycacheError,
)
from raycache.frames import ObjectColumnsWarning
from raycache.memoize import CacheInfo, memoize
from raycache.store import POLICIES

__all__ = [
    "POLICIES",
    "Cache",
    "CacheInfo",
    "CacheNotFoundError",
    "EmptyRingError",
    "EntryTooLargeError",
    "ObjectColumnsWarning",
    "RaycacheError",
    "memoize",
]
__version__ = "0.1.0"
