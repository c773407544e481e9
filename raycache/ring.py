"""The public path of the consistent-hash ring; it lives in :mod:`raycache.core.ring`.

>>> from raycache.ring import Ring
>>> Ring(("shard-0", "shard-1")).owner(b"user:42") in ("shard-0", "shard-1")
True
"""

from raycache.core.ring import Ring

__all__ = ["Ring"]
