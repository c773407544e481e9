"""Which ObjectRefs raycache handed out, and for which key: lineage instead of hashing.

When the result of one memoized call is passed to another, the second call is keyed by
the first call's key, so a chain of memoized stages never hashes intermediate data. The
table is per process and bounded; a reference it has forgotten is keyed by content,
which costs time but never gives a wrong key.

>>> table = Lineage(limit=2)
>>> table.record("ref-a", b"key-a")
>>> table.key_of("ref-a")
b'key-a'
>>> table.record("ref-b", b"key-b"); table.record("ref-c", b"key-c")
>>> table.key_of("ref-a") is None
True
"""

from __future__ import annotations

from raycache.core.bounded import BoundedLRU

DEFAULT_LIMIT = 100_000
"""References remembered per process; about 100 bytes each."""


class Lineage:
    """A bounded map from ObjectRef ids to the keys of the calls that produced them."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._keys: BoundedLRU[str, bytes] = BoundedLRU(limit)

    def record(self, ref_id: str, key: bytes) -> None:
        """Remember that the reference ``ref_id`` holds the result keyed ``key``."""
        self._keys.put(ref_id, key)

    def key_of(self, ref_id: str) -> bytes | None:
        """Return the key whose result ``ref_id`` holds, or None if it is not known here."""
        return self._keys.get(ref_id)

    def __len__(self) -> int:
        """Return how many references are remembered."""
        return len(self._keys)


LINEAGE = Lineage()
"""This process's table."""
