"""The demo's DataFrame pipeline: warm against cold, and cold against plain Ray.

Each round runs the pipeline three ways: as plain Ray tasks and as memoized tasks on an
empty cache (cold), in alternating order, then as memoized tasks again (warm, every
stage a hit). Plain and cold are each timed on the second of two runs in a row. The warm
speedup is cold / warm; the cold overhead is cold / plain, the price of keying, looking
up and storing every stage's result the first time.
"""

from __future__ import annotations

import sys

import raycache
from benchmarks.output.report import Measurement, comparison, summarize
from raycache.demo import STAGES, Dataset, PipelinePass, Stages, run_pipeline

ROWS = 12_000_000
PARTITIONS = 12
QUICK_ROWS = 3_000_000
QUICK_PARTITIONS = 6
CACHE_CAPACITY = "3GiB"
TARGET_SPEEDUP = 20.0
TARGET_OVERHEAD = 1.05

PLAIN, COLD, WARM = "pipeline: plain Ray", "pipeline: raycache cold", "pipeline: raycache warm"


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time the pipeline plain, cold and warm over several rounds; report both ratios."""
    rows, count = (QUICK_ROWS, QUICK_PARTITIONS) if quick else (ROWS, PARTITIONS)
    data = Dataset.of(rows, count)
    # A cache of its own, sized for every stage's results, so that none is evicted.
    own = raycache.Cache(f"{cache.name}-pipeline", shards=2, capacity=CACHE_CAPACITY)
    plain, memoized = Stages.plain(), Stages.memoized(own)
    rounds = 3 if quick else 5
    samples: dict[str, list[float]] = {PLAIN: [], COLD: [], WARM: []}
    try:
        for index in range(rounds):
            for name, result in _round(data, plain, memoized, index).items():
                samples[name].append(result.total)
            print(f"[pipeline] round {index + 1}/{rounds}", file=sys.stderr)
    finally:
        own.shutdown()
    return _measurement(samples, rows)


def _round(data: Dataset, plain: Stages, memoized: Stages, index: int) -> dict[str, PipelinePass]:
    """PipelinePass plain and cold in alternating order, then warm; check all three agree."""
    runs: dict[str, PipelinePass] = {}
    for name in (PLAIN, COLD) if index % 2 == 0 else (COLD, PLAIN):
        stages = memoized if name == COLD else plain
        runs[name] = _settled_run(data, stages, cold=name == COLD)
    runs[WARM] = run_pipeline(data, "warm", memoized, progress=False)
    answer = runs[PLAIN].answer
    assert runs[COLD].answer.equals(answer) and runs[WARM].answer.equals(answer)
    return runs


def _settled_run(data: Dataset, stages: Stages, *, cold: bool) -> PipelinePass:
    # Ray keeps a separate pool of workers for the tasks that the cache's detached actors
    # submit, and stops idle workers beyond one per CPU: the first run after switching
    # between plain and memoized tasks starts workers. An untimed run first keeps that
    # start-up cost, paid once per switch, out of both figures alike.
    for _ in range(2):
        if cold:
            _clear(stages)
        run = run_pipeline(data, "run", stages, progress=False)
    return run


def _clear(stages: Stages) -> None:
    for name in STAGES:
        getattr(stages, name).clear()


def _measurement(samples: dict[str, list[float]], rows: int) -> Measurement:
    s = {name: summarize(series) for name, series in samples.items()}
    speedups = [c / w for c, w in zip(samples[COLD], samples[WARM], strict=True)]
    overheads = [c / p for c, p in zip(samples[COLD], samples[PLAIN], strict=True)]
    label = f"demo pipeline ({rows / 1e6:.0f} M trips)"
    return Measurement(
        rows=[
            comparison(
                f"{label}, warm vs cold",
                s[WARM],
                s[COLD],
                "cold",
                max_ratio=1 / TARGET_SPEEDUP,
                target=f">= {TARGET_SPEEDUP:.0f}x faster",
            ),
            comparison(
                f"{label}, cold vs plain Ray",
                s[COLD],
                s[PLAIN],
                "plain Ray",
                max_ratio=TARGET_OVERHEAD,
            ),
        ],
        raw={
            "series": samples,
            "summaries": s,
            "round_p50_ratios": overheads,
            "warm_speedups": speedups,
        },
    )
