"""The actors: thin Ray wrappers around the pure core.

A shard actor wraps one :class:`~raycache.core.store.Store`; the router actor keeps a
cache's membership and publishes its ring. Neither is used directly: the client in
:mod:`raycache.client` talks to them.
"""
