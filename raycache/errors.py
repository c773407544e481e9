"""Exceptions raised by raycache.

Every error is a subclass of both :class:`RaycacheError` and the builtin that a caller
would naturally catch (``ValueError``, ``TypeError``, ``LookupError``), so code written
against the builtins keeps working.
"""

from __future__ import annotations


class RaycacheError(Exception):
    """Base class for every error raycache raises on purpose."""


class EntryTooLargeError(RaycacheError, ValueError):
    """A value is larger than the byte budget of the shard that would hold it.

    >>> raise EntryTooLargeError(size=10, capacity=4)
    Traceback (most recent call last):
    ...
    raycache.errors.EntryTooLargeError: entry of 10 bytes exceeds the budget of 4 bytes
    """

    def __init__(self, size: int, capacity: int) -> None:
        self.size = size
        self.capacity = capacity
        super().__init__(f"entry of {size} bytes exceeds the budget of {capacity} bytes")


class EmptyRingError(RaycacheError, LookupError):
    """A lookup was made on a ring that has no members."""


class CacheNotFoundError(RaycacheError, LookupError):
    """No cache of the given name is running on the cluster."""


class UnhashableValueError(RaycacheError, TypeError):
    """A value has no stable content hash, so it cannot be part of a memoization key.

    Raised for types whose content raycache cannot hash canonically (open connections,
    locks, arbitrary objects); pickling them instead would not give a stable key.
    """
