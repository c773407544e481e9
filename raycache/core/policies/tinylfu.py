"""W-TinyLFU: an LRU window, a segmented-LRU main region, and admission by frequency.

Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy",
ACM Transactions on Storage 13(4), 2017, as Caffeine implements it.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Final

from raycache.core.policies.base import Policy, Queue, empty
from raycache.core.sketch import FrequencySketch

if TYPE_CHECKING:
    from raycache.core.entry import Entry

__all__ = ["TinyLFUPolicy"]

# Caffeine's defence against hash flooding: an attacker who keeps one warm key's count
# just above a victim's could otherwise pin the cache. A candidate at least this warm
# is admitted once in JITTER contests it loses, which breaks that pin at little cost.
WARM: Final = 6
JITTER: Final = 128
# Entries demoted from protected to probation per call at most, once the store evicts:
# more than one per promotion, so the segments converge, and few, so no call stalls.
DEMOTIONS: Final = 4


class TinyLFUPolicy(Policy):
    """W-TinyLFU: an LRU window in front of a segmented-LRU main region with admission.

    New entries enter a small LRU window (``window_share`` of the bytes, at least one
    average entry). Entries pushed out of the window join the probation segment of
    the main region; a hit there promotes an entry to the protected segment (at most
    ``protected_share`` of the main bytes; overflow is demoted back to probation).
    When the store must evict, the newest probation entry (the candidate) is compared
    with the oldest (the victim) on a :class:`~raycache.core.sketch.FrequencySketch`
    estimate of recent use; the less frequent one goes, the candidate on a tie, except
    that a warm candidate wins one lost contest in ``JITTER`` at random. So a one-off
    scan passes through probation without displacing entries used again and again,
    and an entry too big for the window competes for admission at once. Counts
    outlive the entries: a key refused today is admitted once it is popular.

    There is no doorkeeper (a Bloom filter that keeps first-time keys out of the
    sketch): it would save a few bytes per entry, but cost a second hashed lookup on
    every access, and time is the scarcer resource in a Python store.
    """

    name = "tinylfu"
    admits_all = False

    def __init__(
        self, window_share: float = 0.01, protected_share: float = 0.8, *, seed: int = 0
    ) -> None:
        if not (0.0 <= window_share < 1.0 and 0.0 < protected_share < 1.0):
            raise ValueError("window_share and protected_share must be between 0 and 1")
        self._window_share = window_share
        self._protected_share = protected_share
        self._window = Queue()
        self._probation = Queue()
        self._protected = Queue()
        self._sketch = FrequencySketch()
        self._random = random.Random(seed)
        # Totals over the three queues, kept here so the hot path need not add them up.
        self._bytes = self._count = 0
        # Caffeine bounds the protected segment by the maximum size, so a cache below it
        # never demotes. The store's budget is not known here, so demotions start with
        # the first eviction: until then they would shuffle the segments for nothing.
        self._evicting = False

    @property
    def window_share(self) -> float:
        """The share of the tracked bytes the LRU window may hold."""
        return self._window_share

    def insert(self, entry: Entry) -> None:
        """Put a new entry in the window, pushing the window's oldest on to probation."""
        # The hot path of every put: queue operations are inlined, attributes read once.
        size = entry.size
        total = self._bytes = self._bytes + size
        count = self._count = self._count + 1
        window = self._window
        last = window._prev
        entry._prev, entry._next, entry._queue = last, window, window  # type: ignore[assignment]
        last._next = window._prev = entry
        window.bytes += size
        window.count += 1
        sketch = self._sketch
        sketch.add(entry.key)
        if count > sketch.capacity:
            sketch.grow(2 * count)
        # A cheap necessary condition for the exact test in _overflow_window.
        share = self._window_share
        if window.bytes > share * total or window.count > share * count:
            self._overflow_window()

    def replace(self, old: Entry, new: Entry) -> None:
        """Let ``new`` take ``old``'s place, and count the write as a hit."""
        old._queue.replace(old, new)
        self._bytes += new.size - old.size
        self.touch(new)
        if new.size != old.size:  # else the segments hold the bytes they held
            self._overflow_protected()
            self._overflow_window()

    def touch(self, entry: Entry) -> None:
        """Count a use of ``entry``; a hit in probation promotes it to protected."""
        self._sketch.add(entry.key)
        queue = entry._queue
        if queue is self._probation:
            queue.unlink(entry)
            protected = self._protected
            protected.append(entry)
            if self._evicting and protected.bytes > self._protected_share * (
                protected.bytes + queue.bytes
            ):
                self._overflow_protected()
        else:
            queue.move_to_end(entry)

    def remove(self, entry: Entry) -> None:
        """Stop tracking ``entry``; its sketch count stays, so a comeback is recognised."""
        # queue.unlink, inlined: every eviction comes through here.
        prev, nxt, queue, size = entry._prev, entry._next, entry._queue, entry.size
        prev._next, nxt._prev = nxt, prev
        queue.bytes -= size
        queue.count -= 1
        self._bytes -= size
        self._count -= 1

    def victim(self) -> Entry:
        """Return the loser of candidate (newest in probation) against the oldest main entry."""
        self._evicting = True
        probation, protected = self._probation, self._protected
        if probation.count > 1:
            candidate, incumbent = probation._prev, probation._next
        elif probation.count and protected.count:
            candidate, incumbent = probation._next, protected._next
        else:
            for queue in (probation, protected, self._window):
                if queue.count:
                    return queue._next
            raise empty()
        wanted, held = self._sketch.estimates(candidate.key, incumbent.key)
        if wanted > held or (wanted >= WARM and self._random.randrange(JITTER) == 0):
            return incumbent
        return candidate

    def _overflow_window(self) -> None:
        # At least one average entry, so tiny caches keep a window, but counted in
        # entries too, so that zero-byte entries cannot pile up in it.
        window, probation = self._window, self._probation
        total, count = self._bytes, max(self._count, 1)
        budget = max(self._window_share * total, total / count)
        most = max(1, int(self._window_share * count))
        while window.bytes > budget or window.count > most:
            # window.unlink and probation.append, inlined: this runs on most puts.
            entry, last = window._next, probation._prev
            window._next = first = entry._next
            first._prev = window  # type: ignore[assignment]
            entry._prev, entry._next, entry._queue = last, probation, probation  # type: ignore[assignment]
            last._next = probation._prev = entry
            size = entry.size
            window.bytes -= size
            window.count -= 1
            probation.bytes += size
            probation.count += 1

    def _overflow_protected(self) -> None:
        if not self._evicting:
            return
        protected, probation = self._protected, self._probation
        budget = self._protected_share * (protected.bytes + probation.bytes)
        for _ in range(DEMOTIONS):
            if protected.bytes <= budget:
                return
            entry = protected._next
            protected.unlink(entry)
            probation.append(entry)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Hashable]:
        return (entry.key for entry in chain(self._window, self._probation, self._protected))
