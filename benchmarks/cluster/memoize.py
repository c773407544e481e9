"""A memoized Ray task's hit against a trivial Ray task's round trip."""

from __future__ import annotations

from typing import Any

import ray

import raycache
from benchmarks.output.report import (
    Measurement,
    comparison,
    interleave,
    round_ratios,
    summarize,
)

TARGET_RATIO = 0.75

OURS = "memoized task: hit"
BASE = "trivial task: round trip"


def _trivial(x: int) -> int:
    return x + 1


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time ``ray.get(f.remote(1))`` for a memoized hit and for a plain trivial task."""
    task: Any = ray.remote(num_cpus=0)(_trivial)
    memoized: Any = raycache.memoize(cache=cache)(task)
    assert ray.get(memoized.remote(1)) == ray.get(task.remote(1)) == 2
    rounds = 4 if quick else 10
    samples = interleave(
        {OURS: lambda: ray.get(memoized.remote(1)), BASE: lambda: ray.get(task.remote(1))},
        rounds=rounds,
        calls=50 if quick else 150,
        warmup=30,
    )
    summaries = {name: summarize(series) for name, series in samples.items()}
    row = comparison(
        "memoized task hit, p50",
        summaries[OURS],
        summaries[BASE],
        "trivial task",
        max_ratio=TARGET_RATIO,
    )
    raw = {
        "series": samples,
        "summaries": summaries,
        "round_p50_ratios": round_ratios(samples[OURS], samples[BASE], rounds),
    }
    return Measurement(rows=[row], raw=raw)
