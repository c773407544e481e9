"""W-TinyLFU whose window share miniature simulations choose: the default policy.

A small window suits a workload where frequency predicts reuse (Zipf); a large one
suits one where recency does (bursts, a hot set that moves), and a window of the
whole cache is LRU. Rather than guess, or climb on the noisy hit ratio of the real
cache (Caffeine's way), the policy runs a few tiny shadow caches, one per candidate
window share, on a hashed sample of the keys (see
:mod:`~raycache.core.policies.miniature`), and every epoch adopts the share of the
one that hit most. All of them see the same requests, so the comparison is fair
however the workload moves, and a wrong regime is left within one epoch.

The miniatures start once the cache first evicts. Until then the window share decides
nothing, and a cache that never fills (a few thousand small entries in a large budget)
would pay for simulating every request: four miniatures while every key is sampled.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import TYPE_CHECKING, Final

from raycache.core.policies.miniature import Miniature
from raycache.core.policies.tinylfu import TinyLFUPolicy
from raycache.core.sketch import MIX

if TYPE_CHECKING:
    from raycache.core.entry import Entry

__all__ = ["SHARES", "AdaptivePolicy"]

SHARES: Final = (0.01, 0.2, 0.5, 1.0)
"""The window shares simulated; 1.0 is LRU (no admission filter)."""
MINI_ENTRIES: Final = 512
"""The sample is the largest that leaves each miniature about this many entries."""
LARGEST_RATE: Final = 128
"""One key in this many at most is sampled: beyond it the saving is not worth the noise."""
EPOCH_FLOOR: Final = 250
"""The fewest sampled requests between two choices: fewer are too noisy."""
EPOCH_PER_ENTRY: Final = 1
"""Sampled requests per miniature entry between two choices: an epoch outlasts a turnover."""
MEMORY: Final = 0.5
"""The weight of past epochs' hits in the next choice: it damps flapping between regimes."""


class AdaptivePolicy(TinyLFUPolicy):
    """W-TinyLFU whose window share is that of the best of a few miniature caches.

    The window does not shrink or grow at once: a smaller window pushes its oldest
    entries on to probation at the next write, and a larger one fills from new
    entries while evictions come from the main region.
    """

    name = "adaptive"

    def __init__(self) -> None:
        super().__init__(window_share=SHARES[0])
        self._minis = [Miniature(share) for share in SHARES]
        self._scores = [0.0] * len(SHARES)
        self._mask = 0  # a key is sampled when its mixed hash is 0 under the mask
        self._seen = 0  # sampled requests this epoch
        self._resample_at: float = 2 * MINI_ENTRIES  # entries held when the sample shrinks
        self._full = False  # whether the cache has evicted yet: only then is a share chosen

    def insert(self, entry: Entry) -> None:
        """Track a new entry: a miss, which the miniatures see if its key is sampled."""
        key = entry.key
        if self._full and not hash(key) * MIX >> 32 & self._mask:
            self._observe(key, entry.size)
        TinyLFUPolicy.insert(self, entry)

    def touch(self, entry: Entry) -> None:
        """Count a hit, which the miniatures see if its key is sampled."""
        key = entry.key
        if self._full and not hash(key) * MIX >> 32 & self._mask:
            self._observe(key, entry.size)
        TinyLFUPolicy.touch(self, entry)

    def victim(self) -> Entry:
        """Return the entry to evict, as W-TinyLFU does; the miniatures start now if not yet."""
        self._full = True
        return TinyLFUPolicy.victim(self)

    def _observe(self, key: Hashable, size: int) -> None:
        """Feed one sampled request to every miniature; choose a share at the epoch's end."""
        if self._count >= self._resample_at:
            self._resample()
        budget = max(1, self._bytes // (self._mask + 1))
        for mini in self._minis:
            mini.budget = budget
            mini.access(key, size)
        self._seen += 1
        if self._seen >= max(EPOCH_FLOOR, EPOCH_PER_ENTRY * len(self._minis[0])):
            self._choose()

    def _choose(self) -> None:
        """Adopt the window share of the miniature with the most hits, lately."""
        scores = self._scores
        for i, mini in enumerate(self._minis):
            scores[i] = MEMORY * scores[i] + mini.hits
            mini.hits = 0
        best = max(range(len(scores)), key=lambda i: (scores[i], SHARES[i] == self._window_share))
        self._window_share = SHARES[best]
        self._seen = 0

    def _resample(self) -> None:
        """Halve the sample (or more) as the cache grows, so the miniatures stay small."""
        # Checked as the cache fills, not once an epoch: while every key is sampled,
        # a filling cache of a million entries would otherwise be simulated in full.
        rate = self._mask + 1
        while rate < LARGEST_RATE and self._count >= 2 * rate * MINI_ENTRIES:
            rate *= 2
        self._resample_at = 2 * rate * MINI_ENTRIES if rate < LARGEST_RATE else math.inf
        self._mask = mask = rate - 1
        for mini in self._minis:
            mini.drop_unless(lambda key: not hash(key) * MIX >> 32 & mask)
