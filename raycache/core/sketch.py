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
* All four counters of a key live in one table, chosen by four bit windows of one
  mixed hash, instead of in four rows hashed four times: one hash per use is what a
  pure-Python hot path can afford, and the error is the same for practical purposes.
* The table has about eight counters per key it must tell apart, growing with the
  number of keys, so a store of a million entries spends about eight bytes per entry.
* After ``10 * capacity`` additions every counter is halved (TinyLFU's "reset"), so
  popularity fades and the sketch follows a workload whose hot set moves.

Counters are whole bytes, not packed nibbles, because a ``bytearray`` lookup is the
cheapest counter Python has; halving all of them is one ``bytes.translate`` call.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final

__all__ = ["MIX", "FrequencySketch"]

# Multiply-shift mixing: hash(int) is the int itself, so consecutive keys would
# otherwise share counters. The golden-ratio constant spreads them over the high bits.
MIX: Final = 0x9E3779B97F4A7C15
_HALVE: Final = bytes(i >> 1 for i in range(256))
_MAX_COUNT: Final = 15
_BUMP: Final = bytes(min(i + 1, _MAX_COUNT) for i in range(256))
"""Each count plus one, saturating at ``_MAX_COUNT``."""
_COUNTERS_PER_KEY: Final = 8
_SAMPLE_PER_KEY: Final = 10


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
        width = _width_for(self.capacity)
        self._mask = width - 1
        self._table = bytearray(width)
        self.sample = _SAMPLE_PER_KEY * self.capacity
        """Additions between two halvings of every counter."""
        self._additions = 0

    def add(self, key: Hashable) -> None:
        """Count one use of ``key``."""
        # Inlined index arithmetic (see estimate): this runs on every read and write.
        h, mask, table = hash(key) * MIX, self._mask, self._table
        a, b, c, d = h & mask, h >> 14 & mask, h >> 28 & mask, h >> 42 & mask
        # A lookup in _BUMP is cheaper than a comparison and a branch per counter.
        table[a], table[b], table[c], table[d] = (
            _BUMP[table[a]],
            _BUMP[table[b]],
            _BUMP[table[c]],
            _BUMP[table[d]],
        )
        self._additions += 1
        if self._additions >= self.sample:
            self._table = table.translate(_HALVE)
            self._additions //= 2

    def estimate(self, key: Hashable) -> int:
        """Return the (over-)estimated number of recent uses of ``key``."""
        # Four windows of one mixed hash pick the counters. Masking by a power of two
        # keeps a counter's index stable modulo the old width when the table grows.
        h, mask, table = hash(key) * MIX, self._mask, self._table
        return min(
            table[h & mask], table[h >> 14 & mask], table[h >> 28 & mask], table[h >> 42 & mask]
        )

    def estimates(self, key: Hashable, other: Hashable) -> tuple[int, int]:
        """Return the estimates of ``key`` and ``other``: one call where admission needs two.

        >>> sketch = FrequencySketch()
        >>> sketch.add("a")
        >>> sketch.estimates("a", "b")
        (1, 0)
        """
        mask, table = self._mask, self._table
        h, g = hash(key) * MIX, hash(other) * MIX
        return (
            min(
                table[h & mask], table[h >> 14 & mask], table[h >> 28 & mask], table[h >> 42 & mask]
            ),
            min(
                table[g & mask], table[g >> 14 & mask], table[g >> 28 & mask], table[g >> 42 & mask]
            ),
        )

    def grow(self, capacity: int) -> None:
        """Resize for about ``capacity`` keys, keeping every estimate.

        Indices are reduced modulo a power-of-two width, so in a table of twice the
        width each counter's new home is one of two places that both hold its old
        value: repeating the table keeps the estimates exactly, in one C-speed copy.
        """
        self.capacity = max(self.capacity, capacity)
        self.sample = _SAMPLE_PER_KEY * self.capacity
        width = _width_for(self.capacity)
        if width > len(self._table):
            self._table *= width // len(self._table)
            self._mask = width - 1


def _width_for(capacity: int) -> int:
    """Return the table width for ``capacity`` keys: a power of two, at least 64."""
    return 1 << max(6, (_COUNTERS_PER_KEY * capacity - 1).bit_length())
