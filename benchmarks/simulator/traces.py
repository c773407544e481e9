"""Seeded request traces for the eviction-policy benchmark: sequences of (key, size).

Every generator is deterministic for a given seed, so two runs replay the same requests.
Keys are ints; a key's popularity never follows its value (ranks are shuffled onto ids),
and a key keeps one size throughout a trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Trace:
    """A named sequence of requests: ``keys[i]`` is asked for with size ``sizes[i]`` bytes."""

    name: str
    keys: IntArray
    sizes: IntArray

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.keys.tolist(), self.sizes.tolist(), strict=True)

    @property
    def unit_sizes(self) -> bool:
        """Whether every request has size 1, the case where Bélády is exactly optimal."""
        return bool((self.sizes == 1).all())

    def distinct_bytes(self) -> int:
        """Return the total size of the distinct keys requested: the footprint of the trace."""
        _, first = np.unique(self.keys, return_index=True)
        return int(self.sizes[first].sum())


def zipf_ranks(rng: np.random.Generator, n_keys: int, exponent: float, n: int) -> IntArray:
    """Draw ``n`` popularity ranks in ``[0, n_keys)``; rank r weighs ``1 / (r + 1) ** exponent``."""
    weights = 1.0 / np.arange(1, n_keys + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights)
    # Clipped because a draw of exactly the total would land one past the last rank.
    ranks: IntArray = np.minimum(
        np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), n_keys - 1
    ).astype(np.int64)
    return ranks


def unit(name: str, keys: IntArray) -> Trace:
    """Return a trace whose every request has size 1."""
    return Trace(name, keys, np.ones(len(keys), dtype=np.int64))


def zipf(exponent: float, *, n_keys: int, n_requests: int, seed: int = 0) -> Trace:
    """Independent requests with Zipf popularity over ``n_keys`` keys, unit sizes."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n_keys).astype(np.int64)
    return unit(f"zipf {exponent:g}", ids[zipf_ranks(rng, n_keys, exponent, n_requests)])


def loop_with_hot_set(
    *, n_keys: int, n_requests: int, hot_share: float = 0.02, hot_rate: float = 0.4, seed: int = 0
) -> Trace:
    """A sequential loop over most keys, interleaved with uniform reads of a small hot set.

    The loop is far longer than any cache in the benchmark, so LRU never hits it, and
    its keys push the hot set out of an LRU cache smaller than a few times the hot set.
    """
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n_keys).astype(np.int64)
    n_hot = max(1, int(n_keys * hot_share))
    hot, loop = ids[:n_hot], ids[n_hot:]
    is_hot = rng.random(n_requests) < hot_rate
    keys = np.empty(n_requests, dtype=np.int64)
    keys[is_hot] = hot[rng.integers(0, n_hot, int(is_hot.sum()))]
    keys[~is_hot] = loop[np.arange(int((~is_hot).sum())) % len(loop)]
    return unit("loop + hot set", keys)


def shifting_hot_set(
    *,
    n_keys: int,
    n_requests: int,
    hot_size: int,
    phase: int,
    hot_rate: float = 0.7,
    seed: int = 0,
) -> Trace:
    """Reads of a hot set that is replaced every ``phase`` requests, over Zipf(0.9) noise.

    Recency matters more than long-run frequency here: yesterday's hot keys are dead.
    """
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n_keys).astype(np.int64)
    keys = ids[zipf_ranks(rng, n_keys, 0.9, n_requests)]
    is_hot = rng.random(n_requests) < hot_rate
    for start in range(0, n_requests, phase):
        hot = rng.choice(ids, size=hot_size, replace=False)
        chosen = np.flatnonzero(is_hot[start : start + phase]) + start
        keys[chosen] = hot[rng.integers(0, hot_size, len(chosen))]
    return unit("shifting hot set", keys)


def varied_sizes(*, n_keys: int, n_requests: int, exponent: float = 0.9, seed: int = 0) -> Trace:
    """Zipf popularity with Pareto-distributed sizes (1 KiB up, tail index 1.2).

    Sizes are capped at 100 KiB, far below 1% of the footprint, so every entry fits
    the smallest cache; popularity and size are independent.
    """
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n_keys).astype(np.int64)
    size_of = np.minimum(1024 * (1 + rng.pareto(1.2, n_keys)), 100 * 1024).astype(np.int64)
    ranks = zipf_ranks(rng, n_keys, exponent, n_requests)
    return Trace("varied sizes", ids[ranks], size_of[ranks])


def zipf_with_scans(
    *,
    n_keys: int,
    n_requests: int,
    scan_share: float = 0.3,
    scan_length: int = 500,
    seed: int = 0,
) -> Trace:
    """Zipf(1.0) reads of a hot set, cut by scans: runs of ``scan_length`` one-time keys.

    A pipeline cache sees this when a backfill or an ad-hoc job streams past data once;
    about ``scan_share`` of the requests belong to scans, and no scanned key comes back.
    """
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n_keys).astype(np.int64)
    n_scans = max(1, int(n_requests * scan_share) // scan_length)
    in_scan = np.zeros(n_requests, dtype=bool)
    for start in rng.choice(n_requests - scan_length, size=n_scans, replace=False):
        in_scan[start : start + scan_length] = True
    keys = ids[zipf_ranks(rng, n_keys, 1.0, n_requests)]
    keys[in_scan] = n_keys + np.arange(int(in_scan.sum()))
    return unit("zipf + scans", keys)


def shifting_zipf(
    *, n_keys: int, n_requests: int, phase: int, exponent: float = 1.0, seed: int = 0
) -> Trace:
    """Zipf popularity whose ranking is dealt afresh onto the keys every ``phase`` requests.

    Like a pipeline moving from one dataset or model version to the next: the keys that
    were hot go cold at once, and a new set, until then lukewarm or unseen, takes over.
    """
    rng = np.random.default_rng(seed)
    ranks = zipf_ranks(rng, n_keys, exponent, n_requests)
    keys = np.empty(n_requests, dtype=np.int64)
    for start in range(0, n_requests, phase):
        ids = rng.permutation(n_keys).astype(np.int64)
        keys[start : start + phase] = ids[ranks[start : start + phase]]
    return unit("shifting zipf", keys)


def epochs_with_one_hit_wonders(
    *, n_requests: int, n_epochs: int = 5, one_hit_share: float = 0.5, seed: int = 0
) -> Trace:
    """Training epochs: one dataset read whole, reshuffled, every epoch, amid one-hit keys.

    Each epoch reads every dataset key once in a new random order; ``one_hit_share`` of
    the requests are keys asked for once and never again (lookups, probes, new data).
    A key's next read is about an epoch away, so only a cache that keeps dataset keys
    while one-hit keys stream past gets hits.
    """
    rng = np.random.default_rng(seed)
    per_epoch = int(n_requests * (1 - one_hit_share)) // n_epochs
    dataset = np.concatenate([rng.permutation(per_epoch) for _ in range(n_epochs)])
    is_one_hit = np.ones(n_requests, dtype=bool)
    is_one_hit[np.sort(rng.choice(n_requests, size=len(dataset), replace=False))] = False
    keys = np.empty(n_requests, dtype=np.int64)
    keys[~is_one_hit] = dataset
    keys[is_one_hit] = per_epoch + np.arange(int(is_one_hit.sum()))
    return unit("epochs + one-hit keys", keys)


def standard_traces(*, quick: bool) -> list[Trace]:
    """Return the benchmark's traces, shorter with ``quick``."""
    n_requests = 40_000 if quick else 200_000
    n_keys = 10_000 if quick else 50_000
    return [
        *(zipf(s, n_keys=n_keys, n_requests=n_requests, seed=1) for s in (0.8, 1.0, 1.2)),
        loop_with_hot_set(n_keys=n_keys // 2, n_requests=n_requests, seed=2),
        shifting_hot_set(
            n_keys=n_keys,
            n_requests=n_requests,
            hot_size=n_keys // 100,
            phase=n_requests // 10,
            seed=3,
        ),
        varied_sizes(n_keys=n_keys // 2, n_requests=n_requests, seed=4),
        zipf_with_scans(n_keys=n_keys, n_requests=n_requests, seed=5),
        shifting_zipf(n_keys=n_keys, n_requests=n_requests, phase=n_requests // 8, seed=6),
        epochs_with_one_hit_wonders(n_requests=n_requests, seed=7),
    ]
