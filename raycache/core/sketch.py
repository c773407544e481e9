"""A small, aging count-min sketch: how often was a key used lately, in a few bits per key.

TinyLFU (Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission
Policy", ACM Transactions on Storage 13(4), 2017) admits a new entry only if it was
used more often lately than the entry it would displace. It needs approximate counts
for far more keys than the cache holds, so it keeps them in a count-min sketch
(Cormode & Muthukrishnan, "An Improved Data Stream Summary: The Count-Min Sketch and
its Applications", Journal of Algorithms 55(1), 2005): each key bumps a few counters
chosen by hashing, and its estimate is the smallest of them, which can only overcount.

The layout follows Caffeine's ``FrequencySketch`` rather than the textbook one:

* Counters are small (they saturate at 15). TinyLFU only compares counts and halves
  them every sample, so a count rarely needs more than four bits.
* All four counters of a key live in one table, chosen by double hashing of one
  64-bit hash, instead of in four rows hashed four times: one hash per use is what a
  pure-Python hot path can afford, and the error is the same for practical purposes.
* The table has about eight counters per key it must tell apart, growing with the
  number of keys, so a store of a million entries spends about eight bytes per entry.
* After ``10 * capacity`` additions every counter is halved (TinyLFU's "reset"), so
  popularity fades and the sketch follows a workload whose hot set moves.

Counters are whole bytes, not packed nibbles, because a ``bytearray`` lookup is the
cheapest counter Python has; halving all of them is one ``bytes.translate`` call.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Final

__all__ = ["FrequencySketch"]

_MASK64: Final = (1 << 64) - 1
# Multiply-shift mixing: hash(int) is the int itself, so consecutive keys would
# otherwise share counters. The golden-ratio constant spreads them over the high bits.
_MIX: Final = 0x9E3779B97F4A7C15
_HALVE: Final = bytes(i >> 1 for i in range(256))
_MAX_COUNT: Final = 15
_COUNTERS_PER_KEY: Final = 8


class FrequencySketch:
    """Approximate counts of recent uses, for ``capacity`` keys or so; counts top out at 15.

    >>> sketch = FrequencySketch(capacity=100)
    >>> for _ in range(3):
    ...     sketch.add("popular")
    >>> sketch.estimate("popular"), sketch.estimate("never seen")
    (3, 0)
    """

    __slots__ = ("_additions", "_mask", "_table", "capacity", "sample")

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = max(1, capacity)
        """How many distinct keys the sketch is sized to tell apart."""
        width = 1 << max(6, (_COUNTERS_PER_KEY * self.capacity - 1).bit_length())
        self._mask = width - 1
        self._table = bytearray(width)
        self.sample = 10 * self.capacity
        """Additions between two halvings of every counter."""
        self._additions = 0

    def add(self, key: Hashable) -> None:
        """Count one use of ``key``."""
        table = self._table
        a, b, c, d = self._indices(key)
        # Unrolled: this runs on every read and write of the cache.
        if table[a] < _MAX_COUNT:
            table[a] += 1
        if table[b] < _MAX_COUNT:
            table[b] += 1
        if table[c] < _MAX_COUNT:
            table[c] += 1
        if table[d] < _MAX_COUNT:
            table[d] += 1
        self._additions += 1
        if self._additions >= self.sample:
            self._table = table.translate(_HALVE)
            self._additions //= 2

    def estimate(self, key: Hashable) -> int:
        """Return the (over-)estimated number of recent uses of ``key``."""
        table = self._table
        a, b, c, d = self._indices(key)
        return min(table[a], table[b], table[c], table[d])

    def grown(self, keys: Iterable[Hashable], capacity: int) -> FrequencySketch:
        """Return a sketch sized for ``capacity`` keys that keeps the estimates of ``keys``."""
        new = FrequencySketch(capacity)
        table = new._table
        for key in keys:
            count = self.estimate(key)
            for i in new._indices(key):
                table[i] = max(table[i], count)
        return new

    def _indices(self, key: Hashable) -> tuple[int, int, int, int]:
        # Double hashing (start + i * step) from one mixed hash; the step is odd, so the
        # four counters differ whenever the table has more than four of them.
        h = (hash(key) * _MIX) & _MASK64
        step, mask = h | 1, self._mask
        a = ((h >> 40) + step) & mask
        b = (a + step) & mask
        c = (b + step) & mask
        return a, b, c, (c + step) & mask
