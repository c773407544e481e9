"""Tests of raycache.core.sketch through its public API: counting, saturation, aging, growth."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from raycache.core.sketch import FrequencySketch


def test_counts_saturate_at_fifteen_and_age_by_halving() -> None:
    sketch = FrequencySketch(capacity=16)
    for _ in range(20):
        sketch.add("k")
    assert sketch.estimate("k") == 15  # 4-bit counters
    assert sketch.estimate("other") <= 1
    assert sketch.sample == 10 * 16
    for i in range(sketch.sample - 20):
        sketch.add(i)
    assert sketch.estimate("k") == 7


def test_growing_keeps_every_estimate() -> None:
    sketch = FrequencySketch(capacity=16)
    for i in range(100):
        for _ in range(i % 9):
            sketch.add(i)
    before = [sketch.estimate(i) for i in range(200)]
    sketch.grow(1000)
    assert [sketch.estimate(i) for i in range(200)] == before
    assert sketch.capacity == 1000 and sketch.sample == 10_000
    sketch.grow(10)  # never shrinks
    assert sketch.capacity == 1000


@settings(max_examples=50, deadline=None)
@given(counts=st.dictionaries(st.integers() | st.binary(max_size=16), st.integers(0, 15)))
def test_estimates_never_undercount(counts: dict[object, int]) -> None:
    # A capacity whose aging sample outlasts the additions: halving may undercount.
    sketch = FrequencySketch(capacity=max(16, len(counts), sum(counts.values())))
    for key, count in counts.items():
        for _ in range(count):
            sketch.add(key)
    assert all(sketch.estimate(key) >= count for key, count in counts.items())


def test_consecutive_int_keys_rarely_collide() -> None:
    # hash(int) is the int itself, so without mixing neighbours would share counters.
    sketch = FrequencySketch(capacity=1000)
    for key in range(1000):
        sketch.add(key)
    estimates = [sketch.estimate(key) for key in range(1000, 2000)]
    assert sum(e > 0 for e in estimates) < 50


def test_popular_keys_stand_out_from_noise() -> None:
    sketch = FrequencySketch(capacity=500)
    rng = random.Random(3)
    for _ in range(2000):
        sketch.add(rng.randrange(10_000))
    for _ in range(10):
        sketch.add("hot")
    assert sketch.estimate("hot") >= 10
    assert sum(sketch.estimate(rng.randrange(10_000)) for _ in range(100)) / 100 < 2
