"""The public path of the byte-budgeted store; it lives in :mod:`raycache.core.store`.

>>> from raycache.store import POLICIES, Store
>>> store = Store(100, policy="lru")
>>> store.put("k", "v", size=1)
[]
>>> store.get("k").value
'v'
"""

from raycache.core.store import POLICIES, Store

__all__ = ["POLICIES", "Store"]
