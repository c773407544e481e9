"""Bélády's offline policy: evict what is needed again farthest in the future.

The simulated cache may *bypass*: on a miss it admits the requested key only if room
can be made by evicting keys whose next use comes later than the key's own; otherwise
it leaves the cache alone (a key never used again is never admitted). Online policies
that refuse admission, such as TinyLFU, play by the same rules.

For unit sizes this is exactly optimal (the greatest number of hits any policy, online
or offline, can get with bypass allowed). With varied sizes the optimum is NP-hard, and
this size-oblivious rule is only a reference point: a size-aware policy may beat it on
object hit ratio. It runs in O(n log n) with next uses precomputed and a max-heap on
next use (stale heap records are skipped, not removed).
"""

from __future__ import annotations

import heapq

import numpy as np

from benchmarks.simulator.traces import IntArray, Trace


def next_uses(keys: IntArray) -> IntArray:
    """Return, for every request, the index of the next request of the same key, or ``n``."""
    n = len(keys)
    order = np.argsort(keys, kind="stable")
    following = np.full(n, n, dtype=np.int64)
    same_key = keys[order[1:]] == keys[order[:-1]]
    following[order[:-1][same_key]] = order[1:][same_key]
    return following


def belady_hits(trace: Trace, capacity: int) -> int:
    """Return how many requests of ``trace`` hit a ``capacity``-byte cache run by Bélády."""
    resident: dict[int, int] = {}  # key -> index of its next use
    size_of: dict[int, int] = {}
    farthest_first: list[tuple[int, int]] = []  # (-next use, key)
    used = hits = 0
    for (key, size), upcoming in zip(trace, next_uses(trace.keys).tolist(), strict=True):
        if key in resident:
            hits += 1
            resident[key] = upcoming
            heapq.heappush(farthest_first, (-upcoming, key))
            continue
        victims = _make_room(farthest_first, resident, size_of, capacity - used, size, upcoming)
        if victims is None:
            continue
        for victim in victims:
            del resident[victim]
            used -= size_of.pop(victim)
        resident[key], size_of[key] = upcoming, size
        used += size
        heapq.heappush(farthest_first, (-upcoming, key))
    return hits


def _make_room(
    farthest_first: list[tuple[int, int]],
    resident: dict[int, int],
    size_of: dict[int, int],
    room: int,
    size: int,
    upcoming: int,
) -> list[int] | None:
    """Pop the keys to evict for a newcomer of ``size``, or None (heap intact) to bypass."""
    popped: list[tuple[int, int]] = []
    while room < size and farthest_first:
        record = farthest_first[0]
        key = record[1]
        if resident.get(key) != -record[0]:
            heapq.heappop(farthest_first)  # stale: the key was used or evicted since
            continue
        if -record[0] <= upcoming:
            break
        popped.append(heapq.heappop(farthest_first))
        room += size_of[key]
    if room >= size:
        return [key for _, key in popped]
    for record in popped:
        heapq.heappush(farthest_first, record)
    return None


def belady_hit_ratio(trace: Trace, capacity: int) -> float:
    """Return Bélády's hit ratio (hits per request) on ``trace`` at ``capacity`` bytes."""
    return belady_hits(trace, capacity) / len(trace)
