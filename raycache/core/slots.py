"""Slot tables: which member owns each of the ``SLOTS`` equal slices of the hash circle.

A key's slot is the top 16 bits of its 64-bit point, so every slot holds 1/65,536 of the
keys. A table keeps every member within one slot of ``SLOTS / n`` (at 1,000 members,
65 or 66 slots: max/mean 1.007), and it changes only as much as balance demands:

* :func:`join` gives a newcomer ``SLOTS // (n + 1)`` slots, taken one water level at a
  time from the fullest members, so no slot moves between two old members;
* :func:`leave` deals a leaver's slots to the emptiest members, and nothing else moves.

Which of its slots a member gives up first is fixed by a hash of (member, slot), so a
step depends only on the table before it and the names, never on a process or a clock.

The *canonical* table of a member set is the one built by joining its members one by one
in :func:`canonical_order` (names compared with their digits as numbers, so ``shard-10``
follows ``shard-9``). It is a pure function of the set: a restarted router that rebuilds
the ring from its members gets the table its predecessor had derived step by step, as
long as shards joined and left at the end of that order, which is how ``shard-{i}`` ids
grow and shrink. Other changes keep movement ideal but yield a derived table, which a
ring then carries along (see :mod:`raycache.core.ring`).

Why not a pure function for every change? A placement that moves only the keys of the
member that joins or leaves, whatever the member, must give each slot a fixed preference
order over names (rendezvous hashing, a vnode ring), and then a member's share is a sum of
random pieces: to keep 1,000 members within 5% takes ~2,500 pieces each, millions of
hashes to build. Capping loads on top of such a placement instead cascades: measured over
65,536 slots, caps at 1.02x the mean moved 1.08x the ideal at 64 members and 1.42x at 256.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import xxhash

__all__ = ["SLOTS", "SLOT_SHIFT", "Table", "canonical_order", "canonical_table", "derive"]

SLOT_BITS = 16
SLOTS = 1 << SLOT_BITS
"""Number of slots; a ring holds at most this many members."""

SLOT_SHIFT = 64 - SLOT_BITS
"""A point's slot is ``point >> SLOT_SHIFT``."""

Table = npt.NDArray[np.uint16]
"""Per slot, the index of its owner in the members' :func:`canonical_order`."""

_CACHE_SIZE = 8  # a table is 128 KiB
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SLOT_SALTS = np.arange(SLOTS, dtype=np.uint64) * _GOLDEN


def canonical_order(members: Sequence[str]) -> tuple[str, ...]:
    """Return ``members`` sorted with runs of digits compared as numbers.

    >>> canonical_order(["shard-10", "shard-9", "b", "a"])
    ('a', 'b', 'shard-9', 'shard-10')
    """
    return tuple(sorted(members, key=_natural_key))


def _natural_key(name: str) -> tuple[tuple[str | int, ...], str]:
    # re.split with a group alternates text and digits, so parts compare like with like;
    # the name itself breaks ties such as "s01" and "s1".
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def _seed(member: str) -> np.uint64:
    seed: np.uint64 = np.uint64(xxhash.xxh3_64_intdigest(member.encode()))
    return seed


def _scores(seed: np.uint64, slots: npt.NDArray[np.intp]) -> npt.NDArray[np.uint64]:
    """Return the splitmix64 finalizer of ``seed ^ salt(slot)``: a member's slot priorities."""
    x: npt.NDArray[np.uint64] = _SLOT_SALTS[slots] ^ seed
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _by_priority(seed: np.uint64, slots: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Return ``slots`` in the order their member gives them up: lowest score first."""
    return slots[np.argsort(_scores(seed, slots), kind="stable")]


def _level(counts: npt.NDArray[np.int64], total: int) -> npt.NDArray[np.int64]:
    """Return counts no higher than ``counts``, summing to ``total``, with the lowest maximum.

    Members above the water level come down to it; the spare units go to the first of them
    by index. Negating both arguments (and the result) raises counts to the highest minimum.

    >>> _level(np.array([5, 3, 5, 1]), 11).tolist()
    [4, 3, 3, 1]
    """
    low, high = total // len(counts), int(counts.max())
    while low < high:  # the highest level whose capped sum fits in total
        mid = (low + high + 1) // 2
        if int(np.minimum(counts, mid).sum()) <= total:
            low = mid
        else:
            high = mid - 1
    result = np.minimum(counts, low)
    spare = total - int(result.sum())
    result[np.flatnonzero(counts > low)[:spare]] += 1
    return result


class _Builder:
    """A table under construction.

    Member ``i`` holds ``pool[start[i] : start[i] + count[i]]``: its slots in the order it
    gives them up. Joins only advance the givers' starts and append the newcomer's run, so
    a join costs numpy work on the slots that move rather than Python work per member.
    """

    def __init__(self, members: Sequence[str], runs: Sequence[npt.NDArray[np.intp]]) -> None:
        self.seeds = [_seed(m) for m in members]
        self.count = np.array([len(run) for run in runs], dtype=np.int64)
        self.start = np.cumsum(self.count) - self.count
        self.pool = np.concatenate([*runs, np.empty(SLOTS, dtype=np.intp)])
        self.end = int(self.count.sum())

    @classmethod
    def of(cls, table: Table, members: Sequence[str]) -> _Builder:
        """Return the builder of ``table``, whose members are ``members`` in canonical order."""
        owners = table.astype(np.intp)
        grouped = np.argsort(owners, kind="stable")
        cuts = np.cumsum(np.bincount(owners, minlength=len(members)))[:-1]
        runs = [
            _by_priority(_seed(member), slots)
            for member, slots in zip(members, np.split(grouped, cuts), strict=True)
        ]
        return cls(members, runs)

    def _append(self, run: npt.NDArray[np.intp]) -> int:
        """Store ``run`` at the end of the pool, growing it if needed; return where it starts."""
        if self.end + len(run) > len(self.pool):
            self.pool = np.concatenate([self.pool, np.empty_like(self.pool)])
        self.pool[self.end : self.end + len(run)] = run
        self.end += len(run)
        return self.end - len(run)

    def join(self, member: str) -> None:
        """Give ``member`` its share, taken from the fullest members."""
        if len(self.count):
            keep = _level(self.count, SLOTS - SLOTS // (len(self.count) + 1))
            take = self.count - keep
            taken = self.pool[_ranges(self.start, take)]
            self.start += take
            self.count = keep
        else:
            taken = np.arange(SLOTS, dtype=np.intp)
        seed = _seed(member)
        self.seeds.append(seed)
        self.start = np.append(self.start, self._append(_by_priority(seed, taken)))
        self.count = np.append(self.count, len(taken))

    def leave(self, index: int) -> None:
        """Deal the slots of the member at ``index`` to the emptiest of the others."""
        freed = self.pool[_ranges(self.start[index : index + 1], self.count[index : index + 1])]
        self.seeds.pop(index)
        self.start = np.delete(self.start, index)
        self.count = np.delete(self.count, index)
        if not len(self.count):
            return
        gains = -_level(-self.count, -SLOTS) - self.count
        dealt = np.split(freed, np.cumsum(gains)[:-1])
        for other in np.flatnonzero(gains).tolist():
            own = self.pool[self.start[other] : self.start[other] + self.count[other]]
            merged = _by_priority(self.seeds[other], np.concatenate([own, dealt[other]]))
            self.start[other] = self._append(merged)
            self.count[other] = len(merged)

    def table(self) -> Table:
        """Return the finished table."""
        table = np.empty(SLOTS, dtype=np.uint16)
        owners = np.repeat(np.arange(len(self.count), dtype=np.uint16), self.count)
        table[self.pool[_ranges(self.start, self.count)]] = owners
        table.flags.writeable = False
        return table


def _ranges(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Return the concatenation of ``range(start, start + length)`` for every pair, at once.

    >>> _ranges(np.array([10, 0, 5]), np.array([2, 0, 3])).tolist()
    [10, 11, 5, 6, 7]
    """
    ends = np.cumsum(lengths)
    offsets = np.repeat(starts - (ends - lengths), lengths)
    result: npt.NDArray[np.intp] = np.arange(int(ends[-1]) if len(ends) else 0) + offsets
    return result


@functools.lru_cache(maxsize=_CACHE_SIZE)
def canonical_table(members: tuple[str, ...]) -> Table:
    """Return the table built by joining ``members`` (in canonical order) one by one."""
    builder = _Builder((), ())
    for member in members:
        builder.join(member)
    return builder.table()


def derive(table: Table, old: tuple[str, ...], new: tuple[str, ...]) -> Table:
    """Return ``table`` (over ``old``) changed to ``new``: leavers first, then joiners.

    Both member tuples are in canonical order, and so are the returned table's indices.
    """
    builder = _Builder.of(table, old)
    kept = set(new)
    names = list(old)
    for index in reversed(range(len(old))):
        if old[index] not in kept:
            builder.leave(index)
            del names[index]
    present = set(old)
    for member in new:
        if member not in present:
            builder.join(member)
            names.append(member)
    position = {member: i for i, member in enumerate(new)}
    remap = np.array([position[m] for m in names], dtype=np.uint16)
    result = remap[builder.table()]
    result.flags.writeable = False
    return result
