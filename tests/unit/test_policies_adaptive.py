"""The adaptive policy adapts: its window grows when recency pays, shrinks when frequency does."""

from __future__ import annotations

import random

import pytest

from raycache.core.policies import AdaptivePolicy
from raycache.core.policies.adaptive import SHARES
from raycache.core.policies.miniature import Miniature
from raycache.core.store import Store


def window_after(keys: list[int], capacity: int) -> float:
    """Replay ``keys`` cache-aside through an adaptive store; return its final window share."""
    policy = AdaptivePolicy()
    store = Store(capacity, policy=policy)
    for key in keys:
        if store.get(key) is None:
            store.put(key, key, 1)
    store.check_invariants()
    return policy.window_share


def recency_biased(n: int, seed: int) -> list[int]:
    """New keys all the time, each re-read a few times soon after, never later."""
    rng = random.Random(seed)
    keys: list[int] = []
    recent: list[int] = []
    for i in range(n):
        if not recent or rng.random() < 0.4:
            recent = [*recent[-149:], i]
            keys.append(i)
        else:
            keys.append(rng.choice(recent))
    return keys


def frequency_biased(n: int, seed: int) -> list[int]:
    """Zipf(1) over 5,000 keys: long-run popularity predicts the next read."""
    rng = random.Random(seed)
    return rng.choices(range(5000), weights=[1 / (r + 1) for r in range(5000)], k=n)


def test_the_window_grows_on_a_recency_biased_trace_and_stays_small_on_a_frequency_one() -> None:
    # The miniatures see the regime: a large window (or plain LRU) on recency, the
    # smallest on Zipf, where admission by frequency pays.
    recency = window_after(recency_biased(60_000, seed=1), 200)
    frequency = window_after(frequency_biased(60_000, seed=1), 200)
    assert recency >= 0.5
    assert frequency < 0.2


def hits(mini: Miniature, keys: list[int]) -> int:
    """Replay ``keys`` through ``mini`` with a budget of 200 unit entries; return its hits."""
    mini.budget = 200
    for key in keys:
        mini.access(key, 1)
    return mini.hits


def test_a_miniature_lru_beats_a_small_window_on_recency_and_loses_on_zipf() -> None:
    recency, frequency = recency_biased(30_000, seed=2), frequency_biased(30_000, seed=2)
    assert hits(Miniature(1.0), recency) > hits(Miniature(0.01), recency)
    assert hits(Miniature(1.0), frequency) < hits(Miniature(0.01), frequency)


def test_a_miniature_never_holds_more_than_its_budget() -> None:
    mini = Miniature(0.2)
    mini.budget = 50
    rng = random.Random(3)
    for _ in range(5000):
        mini.access(rng.randrange(400), rng.randrange(1, 5))
        assert mini._bytes <= 50


@pytest.mark.parametrize("seed", [1, 2])
def test_the_window_share_is_one_of_the_simulated_ones(seed: int) -> None:
    assert window_after(frequency_biased(20_000, seed=seed), 100) in SHARES


def test_the_miniatures_start_once_the_cache_first_evicts() -> None:
    # Until then the share decides nothing, and simulating every request of a cache that
    # never fills would cost every get and put four miniature accesses.
    policy = AdaptivePolicy()
    store = Store(1_000, policy=policy)
    for key in range(1_000):
        store.put(key, key, 1)
        store.get(key)
    assert all(len(mini) == 0 for mini in policy._minis)
    store.put("one more", 0, 1)
    store.get(5)
    assert all(len(mini) > 0 for mini in policy._minis)
    store.check_invariants()
