"""The libCacheSim harness replays what raycache replays: both LRUs agree on one trace."""

from __future__ import annotations

import pytest

from benchmarks.simulator import libcachesim_replay
from benchmarks.simulator.policies import capacity_for, compare, hit_ratio
from benchmarks.simulator.traces import Trace, epochs_with_one_hit_wonders, varied_sizes, zipf

pytest.importorskip("libcachesim")

TOLERANCE = 0.005
FRACTIONS = (0.01, 0.05, 0.2)
TRACES = [
    zipf(1.0, n_keys=2_000, n_requests=20_000, seed=11),
    varied_sizes(n_keys=5_000, n_requests=20_000, seed=12),
    epochs_with_one_hit_wonders(n_requests=20_000, seed=13),
]


@pytest.mark.parametrize("trace", TRACES, ids=lambda trace: trace.name)
def test_raycache_lru_matches_libcachesim_lru(trace: Trace) -> None:
    capacities = [capacity_for(trace, fraction) for fraction in FRACTIONS]
    by_lcs = libcachesim_replay.hit_ratios(trace, capacities)
    lcs_lru = libcachesim_replay.column("LRU")
    for capacity, lcs in zip(capacities, by_lcs, strict=True):
        assert hit_ratio(trace, capacity, "lru") == pytest.approx(lcs[lcs_lru], abs=TOLERANCE)


def test_every_libcachesim_policy_reports_a_hit_ratio() -> None:
    trace = TRACES[0]
    (ratios,) = libcachesim_replay.hit_ratios(trace, [capacity_for(trace, 0.05)])
    assert list(ratios) == libcachesim_replay.columns()
    assert all(0 < ratio < 1 for ratio in ratios.values())


def test_wtinylfu_window_holds_an_object_in_a_tiny_cache() -> None:
    trace = zipf(1.0, n_keys=2_000, n_requests=10_000, seed=11)
    (ratios,) = libcachesim_replay.hit_ratios(trace, [20])
    assert ratios[libcachesim_replay.column("WTinyLFU")] > 0


def test_compare_finds_lru_no_better_than_lru() -> None:
    cells = compare("lru", quick=True)
    assert cells and all(cell.hit_ratio == cell.lru for cell in cells)
    assert all(cell.gap >= -TOLERANCE for cell in cells)
