"""``raycache demo``: a DataFrame pipeline of memoized Ray tasks, cold, warm, then changed.

It generates taxi-like trips in Arrow partitions from a fixed seed, then runs four
memoized stages: clean each partition, aggregate each by zone and hour with pandas,
merge the partial aggregates, and rank the top zones. The pipeline runs cold, then warm
(every stage a cache hit), then once more after one partition's data changed, when
only the stages that depend on it recompute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import ray
from tqdm import tqdm

from raycache.cache import Cache
from raycache.memoize import memoize

DEMO_CACHE = "demo"
STAGES = ("clean", "aggregate", "merge", "top_k")


def make_partition(index: int, rows: int, seed: int = 7) -> pa.Table:
    """Return ``rows`` synthetic taxi trips for partition ``index``; fixed by the seed."""
    rng = np.random.default_rng([seed, index])
    distance = rng.gamma(2.0, 1.6, size=rows).astype(np.float32)
    fare = (3.0 + 2.5 * distance + rng.normal(0, 1.5, size=rows)).astype(np.float32)
    return pa.table(
        {
            "zone": rng.integers(1, 266, size=rows, dtype=np.int16),
            "hour": rng.integers(0, 24, size=rows, dtype=np.int8),
            "passengers": rng.integers(1, 7, size=rows, dtype=np.int8),
            "distance": distance,
            "fare": fare,
        }
    )


def clean(trips: pa.Table) -> pa.Table:
    """Drop impossible trips and add the fare per mile."""
    valid = pc.and_(pc.greater(trips["fare"], 0), pc.greater(trips["distance"], 0.1))
    kept = trips.filter(valid)
    return kept.append_column("per_mile", pc.divide(kept["fare"], kept["distance"]))


def aggregate(trips: pa.Table) -> pd.DataFrame:
    """Sum trips, revenue, distance and passengers per zone and hour."""
    frame = trips.to_pandas().astype({"fare": "float64", "distance": "float64"})
    return frame.groupby(["zone", "hour"]).agg(
        trips=("fare", "size"),
        revenue=("fare", "sum"),
        distance=("distance", "sum"),
        passengers=("passengers", "sum"),
    )


def merge(*parts: pd.DataFrame) -> pd.DataFrame:
    """Add up the partial aggregates of every partition, per zone."""
    totals = pd.concat(parts).groupby(level="zone").sum()
    totals["mean_fare"] = totals["revenue"] / totals["trips"]
    return totals


def top_k(totals: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """Return the ``k`` zones with the most revenue."""
    return totals.nlargest(k, "revenue")[["trips", "revenue", "mean_fare"]].round(2)


@dataclass(frozen=True)
class Stages:
    """The pipeline's four tasks, memoized or plain, so that both can run and be timed."""

    clean: Any
    aggregate: Any
    merge: Any
    top_k: Any

    @classmethod
    def plain(cls) -> Stages:
        """Return the stages as plain Ray tasks: the pipeline without raycache."""
        return cls(*(ray.remote(num_cpus=1)(fn) for fn in STAGE_FUNCTIONS))

    @classmethod
    def memoized(cls, cache: Cache | str = DEMO_CACHE) -> Stages:
        """Return the stages as Ray tasks memoized in ``cache``."""
        return cls(*(memoize(cache=cache)(ray.remote(num_cpus=1)(fn)) for fn in STAGE_FUNCTIONS))

    def executions(self) -> dict[str, int]:
        """Return how many times each memoized stage ran its function, by stage name."""
        return {name: getattr(self, name).cache_info().misses for name in STAGES}


STAGE_FUNCTIONS = (clean, aggregate, merge, top_k)


@dataclass
class Run:
    """One pass of the pipeline: seconds per stage, and its answer."""

    seconds: dict[str, float]
    answer: pd.DataFrame

    @property
    def total(self) -> float:
        """Seconds for the whole pass."""
        return sum(self.seconds.values())


def run_pipeline(
    partitions: Sequence[pa.Table], label: str, stages: Stages, *, progress: bool = True
) -> Run:
    """Run the four stages over ``partitions``, timing each, with a progress bar."""
    seconds: dict[str, float] = {}
    total = 2 * len(partitions) + 2
    with tqdm(total=total, desc=f"{label:>7}", unit="task", disable=not progress) as bar:
        cleaned = _stage(
            seconds, "clean", bar, lambda: [stages.clean.remote(p) for p in partitions]
        )
        parts = _stage(
            seconds, "aggregate", bar, lambda: [stages.aggregate.remote(c) for c in cleaned]
        )
        (totals,) = _stage(seconds, "merge", bar, lambda: [stages.merge.remote(*parts)])
        (best,) = _stage(seconds, "top_k", bar, lambda: [stages.top_k.remote(totals)])
    return Run(seconds, ray.get(best))


def _stage(
    seconds: dict[str, float],
    name: str,
    bar: Any,
    start: Callable[[], list[ray.ObjectRef[Any]]],
) -> list[ray.ObjectRef[Any]]:
    # The clock covers starting the tasks too: a memoized call looks its key up there.
    started = time.perf_counter()
    refs = start()
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        bar.update(len(done))
    seconds[name] = time.perf_counter() - started
    return refs


def run_demo(rows: int = 12_000_000, partitions: int = 12, chart: str | None = "demo.png") -> None:
    """Run the pipeline cold, warm and after a change; print timings, stats and a chart."""
    if not ray.is_initialized():
        ray.init(logging_level=logging.ERROR, include_dashboard=False)
    cache = Cache(DEMO_CACHE, capacity="2GiB")
    cache.clear()
    per_partition = max(1, rows // partitions)
    data = [make_partition(i, per_partition) for i in range(partitions)]
    size = sum(t.nbytes for t in data) / 2**20
    print(f"raycache demo: {per_partition * partitions:,} trips in {partitions} partitions")
    print(f"({size:.0f} MiB), cache {cache!r}\n")

    stages = Stages.memoized(cache)
    cold = run_pipeline(data, "cold", stages)
    warm = run_pipeline(data, "warm", stages)
    assert warm.answer.equals(cold.answer)
    data[0] = make_partition(0, per_partition, seed=8)  # one partition's data changes
    before = stages.executions()
    changed = run_pipeline(data, "changed", stages)
    after = stages.executions()
    recomputed = {stage: after[stage] - before[stage] for stage in STAGES}

    print("\ntop zones by revenue:\n" + cold.answer.to_string() + "\n")
    _print_timings(cold, warm, changed)
    print(
        "after changing partition 0, recomputed: "
        + ", ".join(f"{stage} {recomputed[stage]}" for stage in STAGES)
        + f" (of {partitions}, {partitions}, 1, 1)\n"
    )
    _print_stats(cache.stats())
    if chart:
        _plot(cold, warm, chart)
    cache.shutdown()


def _print_timings(cold: Run, warm: Run, changed: Run) -> None:
    print(f"{'stage':>10} {'cold':>10} {'warm':>10} {'speedup':>9} {'changed':>10}")
    for stage in STAGES:
        c, w, x = cold.seconds[stage], warm.seconds[stage], changed.seconds[stage]
        print(f"{stage:>10} {c * 1e3:8.0f}ms {w * 1e3:8.1f}ms {c / w:8.0f}x {x * 1e3:8.0f}ms")
    total = cold.total / warm.total
    print(f"{'total':>10} {cold.total * 1e3:8.0f}ms {warm.total * 1e3:8.1f}ms {total:8.0f}x\n")


def _print_stats(stats: dict[str, Any]) -> None:
    print(
        f"cache: hits {stats['hits']}  misses {stats['misses']}  "
        f"hit ratio {stats['hit_ratio']:.2f}  entries {stats['entries']}  "
        f"bytes {stats['bytes']:,}  evictions {stats['evictions']}"
    )


def _plot(cold: Run, warm: Run, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        print("(install matplotlib for the chart)")
        return
    figure, axes = pyplot.subplots(figsize=(7, 3.5))
    positions = np.arange(len(STAGES))
    axes.bar(positions - 0.2, [cold.seconds[s] for s in STAGES], 0.4, label="cold")
    axes.bar(positions + 0.2, [warm.seconds[s] for s in STAGES], 0.4, label="warm")
    axes.set_xticks(positions, STAGES)
    axes.set_yscale("log")
    axes.set_ylabel("seconds (log)")
    axes.set_title("raycache demo: each stage, cold against warm")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"chart written to {path}")
