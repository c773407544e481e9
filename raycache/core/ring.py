"""Consistent-hash ring that maps cache keys to shard ids, through a table of slots.

The 64-bit circle is cut into :data:`~raycache.core.slots.SLOTS` (65,536) equal slots,
and a table names each slot's owner, so a lookup is one shift and one list index, and
partitioning a batch is one numpy gather. The table (built in :mod:`raycache.core.slots`)
keeps every member within one slot of the mean: max/mean 1.0 at 64 shards, 1.007 at
1,000. When a member joins it takes exactly its share from the fullest members, and
when one leaves its slots go to the emptiest, so only the keys of that member move.

A ring built from a member set, ``Ring(members)``, has the *canonical* table of that set
(order and epoch do not matter). :meth:`Ring.with_members` keeps it canonical whenever
members join or leave at the end of :func:`~raycache.core.slots.canonical_order`, which
is how ``shard-{i}`` ids grow and shrink, so a restarted router that rebuilds the ring
routes exactly as before. Any other change is derived step by step from the current
table; the ring then carries its table along when pickled (128 KiB), as it does above
:data:`RECOMPUTE_AT_MOST` members, where shipping beats rebuilding (rebuilding 1,000
members takes hundreds of milliseconds, unpickling the table well under one).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import xxhash

from raycache.core import slots, validation
from raycache.errors import EmptyRingError

__all__ = ["RECOMPUTE_AT_MOST", "Ring", "stable_hash64"]

RECOMPUTE_AT_MOST = 64
"""Largest canonical ring whose pickle carries only its members; larger ones ship the table."""

_SLOT_MASK = slots.SLOTS - 1
_EMPTY = "cannot look up a key on a ring with no members"


def stable_hash64(data: bytes) -> int:
    """Return the xxh3 64-bit hash of ``data`` as an unsigned int.

    Unlike the builtin :func:`hash`, the result does not depend on the process
    (no ``PYTHONHASHSEED``), so every client and shard agrees on key placement.

    >>> stable_hash64(b"hello") == stable_hash64(b"hello")
    True
    >>> 0 <= stable_hash64(b"hello") < 2**64
    True
    """
    return xxhash.xxh3_64_intdigest(data)


def _validate_members(members: object) -> tuple[str, ...]:
    """Return ``members`` as a tuple, checking it holds unique, non-empty, UTF-8 strs."""
    result = validation.strings(members, "members")
    seen: set[str] = set()
    for index, member in enumerate(result):
        if not member:
            raise ValueError(f"members[{index}] is an empty string; shard ids must be non-empty")
        try:
            member.encode()
        except UnicodeEncodeError:
            raise ValueError(f"members[{index}] = {member!r} is not encodable as UTF-8") from None
        if member in seen:
            raise ValueError(f"duplicate member {member!r} at members[{index}]")
        seen.add(member)
    if len(result) > slots.SLOTS:
        raise ValueError(f"a ring holds at most {slots.SLOTS} members, got {len(result)}")
    return result


def _canonical_bytes(members: tuple[str, ...]) -> bytes:
    """Return the canonical table of ``members`` as little-endian uint16 bytes."""
    if not members:
        return b""
    table = slots.canonical_table(slots.canonical_order(members))
    return table.astype("<u2").tobytes()


def _is_tail_change(old: tuple[str, ...], new: tuple[str, ...]) -> bool:
    """Return whether ``new`` differs from ``old`` (both canonical) only past a shared prefix."""
    shared = 0
    while shared < min(len(old), len(new)) and old[shared] == new[shared]:
        shared += 1
    return set(old[shared:]).isdisjoint(new) and set(new[shared:]).isdisjoint(old)


# Not slots=True: on Python < 3.12 a frozen slotted dataclass raises TypeError instead of
# FrozenInstanceError when an unknown attribute is assigned.
@dataclass(frozen=True)
class Ring:
    """An immutable consistent-hash ring over a set of shard ids.

    ``owner_at(point)`` reads the owner of the point's slot from a table, in O(1).
    Changing membership returns a new ring with ``epoch + 1`` that moves only the keys
    of the members that joined or left. ``Ring(members)`` places keys by the *set* of
    members alone, never their order or the epoch. Two rings are equal when their
    members (in order), epoch and placement are.

    >>> ring = Ring(("shard-0", "shard-1", "shard-2"))
    >>> ring.owner(b"user:42") in ring
    True
    >>> bigger = ring.add("shard-3")
    >>> bigger.epoch, len(bigger), bigger.slot_counts()["shard-3"]
    (1, 4, 16384)
    >>> moved = [k for k in (b"a", b"b", b"c", b"d") if ring.owner(k) != bigger.owner(k)]
    >>> all(bigger.owner(k) == "shard-3" for k in moved)
    True
    >>> Ring(()).owner(b"x")
    Traceback (most recent call last):
    ...
    raycache.errors.EmptyRingError: cannot look up a key on a ring with no members
    """

    members: tuple[str, ...]
    """Shard ids in the order given; unique, non-empty strings."""
    epoch: int = 0
    """Version of the membership; incremented by every change."""
    _table: bytes = field(init=False, repr=False)
    _canonical: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the fields and build the canonical table of the members."""
        members = _validate_members(self.members)
        validation.integer(self.epoch, "epoch", minimum=0)
        _fill(self, members, self.epoch, _canonical_bytes(members), canonical=True)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the members and epoch, plus the table when rebuilding it would not do."""
        if self._canonical and len(self.members) <= RECOMPUTE_AT_MOST:
            return (type(self), (self.members, self.epoch))
        return (_restore, (self.members, self.epoch, self._table, self._canonical))

    def owner(self, key: bytes) -> str:
        """Return the member that owns ``key``, which sits at ``stable_hash64(key)``.

        Raises :class:`~raycache.errors.EmptyRingError` if the ring has no members.
        """
        return self.owner_at(stable_hash64(key))

    def owner_at(self, point: int) -> str:
        """Return the member that owns the position ``point`` (taken modulo 2**64)."""
        try:
            return self._owners[(point >> slots.SLOT_SHIFT) & _SLOT_MASK]
        except IndexError:
            raise EmptyRingError(_EMPTY) from None

    def partition(self, points: npt.NDArray[np.uint64]) -> dict[str, npt.NDArray[np.intp]]:
        """Group many positions by owner: each member maps to the indices of its points.

        The vectorised form of :meth:`owner_at`, for routing a batch of keys at once.

        >>> ring = Ring(("a", "b"))
        >>> points = np.array([1, 2**40, 2**63], dtype=np.uint64)
        >>> groups = ring.partition(points)
        >>> sorted(i for indices in groups.values() for i in indices.tolist())
        [0, 1, 2]
        >>> all(ring.owner_at(int(points[i])) == m for m, ix in groups.items() for i in ix)
        True
        """
        if not self._table:
            raise EmptyRingError(_EMPTY)
        owners = self._ids[points >> np.uint64(slots.SLOT_SHIFT)]
        order = np.argsort(owners, kind="stable")
        found, starts = np.unique(owners[order], return_index=True)
        names = self._names
        groups = np.split(order, starts)[1:]  # the first piece, before starts[0] = 0, is empty
        return {names[i]: group for i, group in zip(found.tolist(), groups, strict=True)}

    def slot_counts(self) -> dict[str, int]:
        """Return how many of the 65,536 slots each member owns, in member order."""
        counts = np.bincount(self._ids, minlength=len(self.members)).tolist()
        by_name = dict(zip(self._names, counts, strict=True))
        return {member: by_name[member] for member in self.members}

    def with_members(self, members: Iterable[str]) -> Ring:
        """Return a ring over ``members`` with ``epoch + 1``, moving as few keys as possible."""
        new = _validate_members(members)
        old_order, new_order = self._names, slots.canonical_order(new)
        if set(old_order) == set(new_order):
            return _restore(new, self.epoch + 1, self._table, self._canonical)
        if not old_order or (self._canonical and _is_tail_change(old_order, new_order)):
            return _restore(new, self.epoch + 1, _canonical_bytes(new), True)
        table = slots.derive(self._ids, old_order, new_order)
        return _restore(new, self.epoch + 1, table.astype("<u2").tobytes(), False)

    def renamed(self, names: Mapping[str, str], *, epoch: int | None = None) -> Ring:
        """Return the ring with members renamed by ``names``, each keeping its slots.

        Every key stays with the same slots, under the member's new name: this is how a
        shard moves to another node (its new actor is a new member) without moving any
        other shard's keys. The epoch is ``epoch`` if given, else ``self.epoch + 1``.

        >>> ring = Ring(("shard-0", "shard-1", "shard-2"))
        >>> moved = ring.renamed({"shard-1": "shard-3"})
        >>> moved.members, moved.epoch
        (('shard-0', 'shard-3', 'shard-2'), 1)
        >>> keys = [str(i).encode() for i in range(200)]
        >>> renamed = {"shard-1": "shard-3"}
        >>> all(moved.owner(k) == renamed.get(ring.owner(k), ring.owner(k)) for k in keys)
        True
        """
        unknown = set(names).difference(self.members)
        if unknown:
            raise KeyError(f"not members of the ring: {sorted(unknown)}")
        members = _validate_members([names.get(m, m) for m in self.members])
        new_order = slots.canonical_order(members)
        index = {name: i for i, name in enumerate(new_order)}
        remap = np.array([index[names.get(m, m)] for m in self._names], dtype=np.uint16)
        table = remap[self._ids].astype("<u2").tobytes() if self._table else b""
        canonical = self._canonical and not names
        after = self.epoch + 1 if epoch is None else validation.integer(epoch, "epoch", minimum=0)
        return _restore(members, after, table, canonical)

    def add(self, member: str) -> Ring:
        """Return a ring with ``member`` appended and ``epoch + 1``.

        Raises ``ValueError`` if ``member`` is already present.
        """
        if member in self.members:
            raise ValueError(f"member {member!r} is already in the ring")
        return self.with_members((*self.members, member))

    def remove(self, member: str) -> Ring:
        """Return a ring without ``member`` and ``epoch + 1``.

        Raises ``KeyError`` (like :meth:`set.remove`) if ``member`` is absent.
        """
        if member not in self.members:
            raise KeyError(member)
        return self.with_members(m for m in self.members if m != member)

    def load(self, keys: Iterable[bytes]) -> dict[str, int]:
        """Count how many of ``keys`` each member owns.

        Every member appears in the result, with 0 if it owns none of the keys.
        Raises :class:`~raycache.errors.EmptyRingError` if the ring is empty and
        ``keys`` is not.
        """
        counts = dict.fromkeys(self.members, 0)
        owner = self.owner
        for key in keys:
            counts[owner(key)] += 1
        return counts

    @functools.cached_property
    def _names(self) -> tuple[str, ...]:
        """The members in canonical order, which the table's entries index."""
        return slots.canonical_order(self.members)

    @functools.cached_property
    def _ids(self) -> npt.NDArray[np.uint16]:
        """The table as an array: per slot, the index of its owner in ``_names``."""
        return np.frombuffer(self._table, dtype="<u2").astype(np.uint16)

    @functools.cached_property
    def _owners(self) -> list[str]:
        """Per slot, its owner's name: what :meth:`owner_at` reads."""
        names = np.array(self._names, dtype=object)
        owners: list[str] = names[self._ids].tolist()
        return owners

    def __len__(self) -> int:
        """Return the number of members."""
        return len(self.members)

    def __contains__(self, member: object) -> bool:
        """Return whether ``member`` is one of the ring's shard ids."""
        return member in self.members

    def __iter__(self) -> Iterator[str]:
        """Iterate over the members in the order given."""
        return iter(self.members)


def _fill(ring: Ring, members: tuple[str, ...], epoch: int, table: bytes, canonical: bool) -> None:
    """Set a ring's fields, bypassing the frozen dataclass's ``__setattr__``."""
    object.__setattr__(ring, "members", members)
    object.__setattr__(ring, "epoch", epoch)
    object.__setattr__(ring, "_table", table)
    object.__setattr__(ring, "_canonical", canonical)


def _restore(members: tuple[str, ...], epoch: int, table: bytes, canonical: bool) -> Ring:
    """Return a ring with the given table, without rebuilding it (used by pickle too)."""
    ring = object.__new__(Ring)
    _fill(ring, members, epoch, table, canonical)
    return ring
