"""Moving entries to their new owner after a resize: what travels, and what may land.

When the ring changes, each shard hands the entries it no longer owns to their new owner
as :class:`Parcel` objects, which keep what the entry's standing depends on: the time it
has left to live, its tags and its cost. While the move lasts, the receiving shard keeps
an :class:`Arrivals`: a parcel lands only if nothing newer happened to its key there
first. A write or a delete of the key, an invalidation of one of its tags or a clear all
win over a value that was on its way, so a move never brings back an older value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from raycache.core.keys import key_point
from raycache.core.ring import Ring
from raycache.core.store import Entry


@dataclass(frozen=True)
class Parcel:
    """One entry on its way to its new owner.

    ``value`` is the value itself, or for a large one the reference to it (``large``).
    ``ttl`` is the seconds it has left, or None if it never expires.
    """

    digest: bytes
    value: Any
    large: bool
    size: int
    ttl: float | None
    tags: tuple[str, ...]
    cost: float


def parcel(entry: Entry, value: Any, *, large: bool, now: float) -> Parcel | None:
    """Return ``entry`` as a parcel carrying ``value``; None if it has expired by ``now``."""
    if entry.expired(now):
        return None
    ttl = None if entry.expires_at is None else entry.expires_at - now
    assert isinstance(entry.key, bytes)
    return Parcel(entry.key, value, large, entry.size, ttl, tuple(entry.tags), entry.cost)


class Arrivals:
    """What the shard ``member`` may still receive while keys move from ``previous``'s owners.

    A key is *settled* once its entry arrived, or once it was written or deleted here;
    nothing that arrives for it later lands.
    """

    def __init__(self, previous: Ring, member: str) -> None:
        self.previous = previous
        self._member = member
        self._settled: set[bytes] = set()
        self._dropped_tags: set[str] = set()
        self._cleared = False

    def sources(self, digests: Iterable[bytes]) -> dict[str, list[bytes]]:
        """Group the ``digests`` that may still arrive by the member that held them before."""
        found: dict[str, list[bytes]] = {}
        if self._cleared:
            return found
        for digest in digests:
            if digest not in self._settled:
                before = self.previous.owner_at(key_point(digest))
                if before != self._member:
                    found.setdefault(before, []).append(digest)
        return found

    def supersede(self, digest: bytes) -> None:
        """Note that ``digest`` was written or deleted here: what arrives for it is older."""
        self._settled.add(digest)

    def drop_tag(self, tag: str) -> None:
        """Note that ``tag`` was invalidated here: no parcel carrying it may land."""
        self._dropped_tags.add(tag)

    def clear(self) -> None:
        """Note that the shard was cleared: no parcel may land any more."""
        self._cleared = True

    def admits(self, parcel: Parcel) -> bool:
        """Return whether ``parcel`` may land, and if so settle its key."""
        if self._cleared or parcel.digest in self._settled:
            return False
        if self._dropped_tags.intersection(parcel.tags):
            return False
        self._settled.add(parcel.digest)
        return True
