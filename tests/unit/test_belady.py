"""Bélády's offline policy against brute force, and every online policy against Bélády."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.simulator.belady import belady_hits, next_uses
from benchmarks.simulator.policies import hit_ratio
from benchmarks.simulator.traces import Trace, standard_traces, zipf
from raycache.core.store import POLICIES

KEYS = st.lists(st.integers(0, 4), min_size=1, max_size=10)


def trace_of(keys: list[int], size_of: dict[int, int] | None = None) -> Trace:
    sizes = [1 if size_of is None else size_of[key] for key in keys]
    return Trace("test", np.array(keys, dtype=np.int64), np.array(sizes, dtype=np.int64))


def best_hits(trace: Trace, capacity: int) -> int:
    """The most hits any schedule gets: on a miss, keep any subset that fits, newcomer or not."""
    requests = list(trace)

    @functools.cache
    def best(i: int, resident: frozenset[int]) -> int:
        if i == len(requests):
            return 0
        key, _ = requests[i]
        if key in resident:
            return 1 + best(i + 1, resident)
        size_of = dict(requests)
        options = resident | {key}
        return max(
            best(i + 1, frozenset(kept))
            for n in range(len(options) + 1)
            for kept in itertools.combinations(sorted(options), n)
            if sum(size_of[k] for k in kept) <= capacity
        )

    return best(0, frozenset())


def test_next_uses() -> None:
    keys = np.array([5, 7, 5, 5, 9, 7], dtype=np.int64)
    assert next_uses(keys).tolist() == [2, 5, 3, 6, 6, 6]


@settings(max_examples=150, deadline=None)
@given(keys=KEYS, capacity=st.integers(1, 3))
def test_belady_is_optimal_for_unit_sizes(keys: list[int], capacity: int) -> None:
    trace = trace_of(keys)
    assert belady_hits(trace, capacity) == best_hits(trace, capacity)


@settings(max_examples=150, deadline=None)
@given(
    keys=KEYS,
    sizes=st.lists(st.integers(1, 4), min_size=5, max_size=5),
    capacity=st.integers(1, 6),
)
def test_belady_never_beats_the_optimum_with_varied_sizes(
    keys: list[int], sizes: list[int], capacity: int
) -> None:
    trace = trace_of(keys, dict(enumerate(sizes)))
    assert belady_hits(trace, capacity) <= best_hits(trace, capacity)


def test_belady_bypasses_a_key_used_later_than_every_resident() -> None:
    # With room for one, a, b, a: keeping a scores the hit; admitting b would lose it.
    assert belady_hits(trace_of([0, 1, 0]), 1) == 1


@pytest.mark.parametrize("policy", sorted(POLICIES))
@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.integers(0, 6), min_size=1, max_size=60), capacity=st.integers(1, 5))
def test_no_policy_beats_belady_on_unit_sizes(policy: str, keys: list[int], capacity: int) -> None:
    trace = trace_of(keys)
    assert hit_ratio(trace, capacity, policy) * len(trace) <= belady_hits(trace, capacity)


def test_no_policy_beats_belady_on_a_zipf_trace() -> None:
    trace = zipf(1.0, n_keys=500, n_requests=5000, seed=3)
    best = belady_hits(trace, 50) / len(trace)
    assert all(hit_ratio(trace, 50, policy) <= best for policy in POLICIES)


def test_traces_are_deterministic_and_keep_one_size_per_key() -> None:
    first, second = standard_traces(quick=True), standard_traces(quick=True)
    for a, b in zip(first, second, strict=True):
        assert a.name == b.name and np.array_equal(a.keys, b.keys)
        assert np.array_equal(a.sizes, b.sizes)
        for key in np.unique(a.keys)[:50]:
            assert len(np.unique(a.sizes[a.keys == key])) == 1
