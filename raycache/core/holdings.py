"""Which objects a shard holds for its keys, and which of them it may let go of.

A shard's large values, and the results of the computations it starts, are objects that
its node's vault owns and holds for the shard, by object id. An object may go once
neither the key's entry in the store nor the key's computation in flight refers to it.
The shard learns that an entry left its store from what the store's methods return,
except for entries that expired out of sight, which the store's expiration count
reveals: then every key held is checked. The decisions are here, pure: object ids are
opaque strings, and the caller says which ones a key still uses.

>>> holdings = Holdings(expirations=0)
>>> holdings.hold(b"k", "obj-1"); holdings.hold(b"k", "obj-2")
>>> holdings.release(b"k", in_use={"obj-2"})
['obj-1']
>>> holdings.release(b"k", in_use=set()), b"k" in holdings
(['obj-2'], False)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Holdings"]


class Holdings:
    """The object ids one shard holds, by key digest."""

    def __init__(self, expirations: int) -> None:
        self._held: dict[bytes, set[str]] = {}
        self._expirations = expirations

    def hold(self, digest: bytes, object_id: str) -> None:
        """Note that the object ``object_id`` is held for ``digest``."""
        self._held.setdefault(digest, set()).add(object_id)

    def to_check(self, digests: Iterable[bytes] | None, expirations: int) -> list[bytes]:
        """Return the keys whose objects to check after a change to ``digests``.

        Every key held, for None (after a bulk removal) or when the store's
        ``expirations`` count moved since the last check (entries expired unseen).

        >>> holdings = Holdings(expirations=0)
        >>> holdings.hold(b"a", "1"); holdings.hold(b"b", "2")
        >>> holdings.to_check([b"a"], expirations=0), holdings.to_check([b"a"], expirations=1)
        ([b'a'], [b'a', b'b'])
        """
        if digests is None or expirations != self._expirations:
            self._expirations = expirations
            return list(self._held)
        return list(digests)

    def release(self, digest: bytes, in_use: set[str]) -> list[str]:
        """Let go of the objects of ``digest`` not ``in_use``; return their ids."""
        held = self._held.get(digest)
        if held is None:
            return []
        unused = held - in_use
        held -= unused
        if not held:
            del self._held[digest]
        return sorted(unused)

    def __contains__(self, digest: object) -> bool:
        """Return whether any object is held for ``digest``."""
        return digest in self._held
