"""The adaptive policy adapts: its window grows when recency pays, shrinks when frequency does."""

from __future__ import annotations

import random

import pytest

from raycache.core.policies import AdaptivePolicy
from raycache.core.policies.adaptive import HillClimber
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
    # From 1% the window climbs most of the way on recency; on frequency the climber
    # wanders low (its samples are noisy), well below the recency case.
    recency = window_after(recency_biased(60_000, seed=1), 200)
    frequency = window_after(frequency_biased(60_000, seed=1), 200)
    assert recency > 0.8
    assert frequency < 0.4


def test_the_climber_turns_back_when_the_hit_ratio_drops() -> None:
    climber = HillClimber(share=0.5)
    down = climber.adjust(hits=10, misses=90)
    further = climber.adjust(hits=50, misses=50)
    assert further < down < 0.5
    assert climber.adjust(hits=10, misses=90) > further


@pytest.mark.parametrize("rate", [(0, 1), (1, 0)])
def test_the_window_stays_within_bounds(rate: tuple[int, int]) -> None:
    climber = HillClimber(share=0.5)
    for _ in range(200):
        share = climber.adjust(*rate)
        assert 0.0 <= share < 1.0
