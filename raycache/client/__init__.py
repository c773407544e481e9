"""The client: what user code holds. :class:`~raycache.client.cache.Cache`, memoize, admin.

The client routes each key to its shard with a ring snapshot, checks arguments before
anything is sent, and turns every fault of the cache into a miss.
"""
