"""raycache: a distributed cache and memoizer that lives inside a Ray cluster.

>>> import raycache
>>> sorted(raycache.POLICIES)
['adaptive', 'fifo', 'gdsf', 'lfu', 'lru', 'tinylfu']
"""

from raycache import data
from raycache.client.async_cache import AsyncCache
from raycache.client.cache import Cache
from raycache.client.memoize import CacheInfo, memoize
from raycache.core.frames import ObjectColumnsWarning
from raycache.core.store import POLICIES
from raycache.errors import (
    CacheNotFoundError,
    EmptyRingError,
    EntryTooLargeError,
    RaycacheError,
    UnhashableValueError,
)

__all__ = [
    "POLICIES",
    "AsyncCache",
    "Cache",
    "CacheInfo",
    "CacheNotFoundError",
    "EmptyRingError",
    "EntryTooLargeError",
    "ObjectColumnsWarning",
    "RaycacheError",
    "UnhashableValueError",
    "data",
    "memoize",
]
__version__ = "0.1.0"
