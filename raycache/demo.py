"""``raycache demo``: a DataFrame pipeline of memoized Ray tasks, cold, warm, then changed.

It runs five memoized stages over taxi-like trips in Arrow partitions: load each
partition (generated from a fixed seed, with timestamps as text, as raw trip records
come), clean it (parse the timestamps, derive durations and speeds, drop impossible
trips), aggregate it by zone and hour with pandas, merge the partial aggregates, and
rank the top zones. The pipeline runs cold, then warm (every stage a cache hit), then
after a restart (the cache, and the Ray the demo started, shut down and started again,
so every stage is served from the cache's files), then once more after one partition's
data changed, when only the stages that depend on it recompute.

Results persist in ``.raycache-demo/`` under the working directory, so a second run of
the demo, in a new process on a new Ray, is warm from its first pass.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import ray
from tqdm import tqdm

from raycache.client.cache import Cache
from raycache.client.memoize import memoize

DEMO_CACHE = "demo"
DEMO_STORAGE = ".raycache-demo"
"""Where the demo's cache keeps its files: relative to the working directory."""
STAGES = ("load", "clean", "aggregate", "merge", "top_k")
MONTH_START = np.datetime64("2024-01-01T00:00:00", "s")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PAYMENTS = ("card", "cash", "no charge", "dispute")


@dataclass(frozen=True)
class Dataset:
    """The synthetic trips to load: rows per partition and one seed per partition."""

    rows: int
    seeds: tuple[int, ...]

    @classmethod
    def of(cls, rows: int, partitions: int, seed: int = 7) -> Dataset:
        """Return ``rows`` trips in all, split evenly over ``partitions`` partitions."""
        return cls(max(1, rows // partitions), (seed,) * partitions)

    def changed(self, index: int, seed: int) -> Dataset:
        """Return this dataset with partition ``index`` drawn from another seed."""
        seeds = list(self.seeds)
        seeds[index] = seed
        return replace(self, seeds=tuple(seeds))

    @property
    def total_rows(self) -> int:
        """Trips in all partitions together."""
        return self.rows * len(self.seeds)


def load(index: int, rows: int, seed: int) -> pa.Table:
    """Return partition ``index`` of the raw trips: the same for the same arguments."""
    rng = np.random.default_rng([seed, index])
    pickup = MONTH_START + rng.integers(0, 31 * 86_400, rows).astype("m8[s]")
    distance = rng.gamma(2.0, 1.6, size=rows).astype(np.float32)
    fare = (3.0 + 2.5 * distance + rng.normal(0, 1.5, size=rows)).astype(np.float32)
    return pa.table(
        {
            "pickup_at": pc.strftime(pa.array(pickup), TIME_FORMAT),
            "seconds": rng.gamma(2.2, 420.0, rows).astype(np.int32),
            "zone": rng.integers(1, 266, size=rows, dtype=np.int16),
            "passengers": rng.integers(0, 7, size=rows, dtype=np.int8),
            "distance": distance,
            "fare": fare,
            "tip": (fare * rng.choice([0.0, 0.1, 0.15, 0.2], rows)).astype(np.float32),
            "payment": rng.choice(PAYMENTS, rows, p=[0.7, 0.27, 0.02, 0.01]),
        }
    )


def clean(trips: pa.Table) -> pa.Table:
    """Parse pickup times, derive hour and speed, and drop impossible or unpaid trips."""
    pickup = pc.strptime(trips["pickup_at"], format=TIME_FORMAT, unit="s")
    hours = pc.divide(pc.cast(trips["seconds"], pa.float32()), 3600.0)
    mph = pc.divide(trips["distance"], hours)
    derived = trips.set_column(0, "pickup_at", pickup).append_column("mph", mph)
    derived = derived.append_column("hour", pc.hour(pickup))
    valid = pc.and_(
        pc.and_(pc.greater(derived["fare"], 0), pc.greater(derived["distance"], 0.1)),
        pc.and_(pc.greater(derived["passengers"], 0), pc.less(mph, 80)),
    )
    paid = pc.is_in(derived["payment"], value_set=pa.array(["card", "cash"]))
    return derived.filter(pc.and_(valid, paid))


def aggregate(trips: pa.Table) -> pd.DataFrame:
    """Sum trips, revenue, tips, miles and hours per zone and hour of the day."""
    frame = trips.to_pandas().astype({"fare": "float64", "tip": "float64"})
    frame["hours"] = frame["seconds"] / 3600.0
    return frame.groupby(["zone", "hour"]).agg(
        trips=("fare", "size"),
        revenue=("fare", "sum"),
        tips=("tip", "sum"),
        miles=("distance", "sum"),
        hours=("hours", "sum"),
    )


def merge(*parts: pd.DataFrame) -> pd.DataFrame:
    """Add up the partial aggregates of every partition, per zone."""
    totals = pd.concat(parts).groupby(level="zone").sum()
    totals["mean_fare"] = totals["revenue"] / totals["trips"]
    totals["tip_rate"] = totals["tips"] / totals["revenue"]
    totals["mph"] = totals["miles"] / totals["hours"]
    return totals


def top_k(totals: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """Return the ``k`` zones with the most revenue."""
    columns = ["trips", "revenue", "mean_fare", "tip_rate", "mph"]
    return totals.nlargest(k, "revenue")[columns].round(3)


@dataclass(frozen=True)
class Stages:
    """The pipeline's five tasks, memoized or plain, so that both can run and be timed."""

    load: Any
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


STAGE_FUNCTIONS = (load, clean, aggregate, merge, top_k)


@dataclass
class PipelinePass:
    """One pass of the pipeline: seconds per stage, and its answer."""

    seconds: dict[str, float]
    answer: pd.DataFrame

    @property
    def total(self) -> float:
        """Seconds for the whole pass."""
        return sum(self.seconds.values())


def run_pipeline(
    data: Dataset, label: str, stages: Stages, *, progress: bool = True
) -> PipelinePass:
    """PipelinePass the five stages over ``data``, timing each, with a progress bar."""
    seconds: dict[str, float] = {}
    count = len(data.seeds)
    with tqdm(total=3 * count + 2, desc=f"{label:>7}", unit="task", disable=not progress) as bar:

        def stage(name: str, start: Callable[[], list[ray.ObjectRef[Any]]]) -> list[Any]:
            return _stage(seconds, name, bar, start)

        tables = stage(
            "load",
            lambda: [stages.load.remote(i, data.rows, seed) for i, seed in enumerate(data.seeds)],
        )
        cleaned = stage("clean", lambda: [stages.clean.remote(t) for t in tables])
        parts = stage("aggregate", lambda: [stages.aggregate.remote(c) for c in cleaned])
        (totals,) = stage("merge", lambda: [stages.merge.remote(*parts)])
        (best,) = stage("top_k", lambda: [stages.top_k.remote(totals)])
    return PipelinePass(seconds, ray.get(best))


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


def run_demo(
    rows: int = 12_000_000,
    partitions: int = 12,
    chart: str | None = "demo.png",
    storage: str | None = DEMO_STORAGE,
    report: str | None = None,
) -> None:
    """PipelinePass the pipeline cold, warm, restarted and after a change; print timings and stats.

    Without ``storage`` the cache lives in memory only, and there is no restart. With
    ``report``, each pass's seconds per stage and the answer are also written there as
    JSON, for benchmarks that compare whole runs of the demo.
    """
    embedded = not ray.is_initialized()
    if embedded:
        _start_ray()
    cache = Cache(DEMO_CACHE, capacity="2GiB", storage=storage)
    if storage is None:
        cache.clear()  # a cache left running on an attached cluster: start cold all the same
    data = Dataset.of(rows, partitions)
    print(f"raycache demo: {data.total_rows:,} trips in {partitions} partitions")
    print(f"cache {cache!r}, storage {storage or 'none'}\n")

    stages = Stages.memoized(cache)
    cold = run_pipeline(data, "cold", stages)
    warm = run_pipeline(data, "warm", stages)
    assert warm.answer.equals(cold.answer)
    restart = None
    if storage is not None:
        cache = _restarted(cache, storage, embedded=embedded)
        stages = Stages.memoized(cache)
        restart = run_pipeline(data, "restart", stages)
        assert restart.answer.equals(cold.answer)
    before = stages.executions()
    changed = run_pipeline(data.changed(0, seed=8), "changed", stages)  # new data in one
    after = stages.executions()
    recomputed = {stage: after[stage] - before[stage] for stage in STAGES}

    print("\ntop zones by revenue:\n" + cold.answer.to_string() + "\n")
    _print_timings(cold, warm, restart, changed)
    print(
        "after changing partition 0, recomputed: "
        + ", ".join(f"{stage} {recomputed[stage]}" for stage in STAGES)
        + f" (of {partitions}, {partitions}, {partitions}, 1, 1)\n"
    )
    _print_stats(cache.stats())
    if report:
        _write_report(report, {"cold": cold, "warm": warm, "restart": restart, "changed": changed})
    if chart:
        _plot(cold, warm, chart)
    cache.shutdown()


def _start_ray() -> None:
    ray.init(logging_level=logging.ERROR, include_dashboard=False)


def _restarted(cache: Cache, storage: str, *, embedded: bool) -> Cache:
    """Shut the cache down (and the Ray the demo started), then start it again, empty."""
    cache.shutdown()
    if embedded:
        ray.shutdown()
        _start_ray()
    return Cache(DEMO_CACHE, capacity="2GiB", storage=storage)


def _print_timings(
    cold: PipelinePass, warm: PipelinePass, restart: PipelinePass | None, changed: PipelinePass
) -> None:
    later = {"restart": restart, "changed": changed}
    shown = {label: run for label, run in later.items() if run is not None}
    print(f"{'stage':>10} {'cold':>10} {'warm':>10} {'speedup':>9}", *(f"{x:>10}" for x in shown))
    for stage in (*STAGES, "total"):
        c, w = _seconds(cold, stage), _seconds(warm, stage)
        cells = (f"{_seconds(run, stage) * 1e3:8.1f}ms" for run in shown.values())
        print(f"{stage:>10} {c * 1e3:8.0f}ms {w * 1e3:8.1f}ms {c / w:8.0f}x", *cells)
    print()


def _seconds(run: PipelinePass, stage: str) -> float:
    return run.total if stage == "total" else run.seconds[stage]


def _write_report(path: str, runs: dict[str, PipelinePass | None]) -> None:
    passes = {label: run.seconds for label, run in runs.items() if run is not None}
    answer = runs["cold"].answer.to_csv() if runs["cold"] is not None else ""
    with open(path, "w") as file:
        json.dump({"seconds": passes, "answer": answer}, file, indent=1)


def _print_stats(stats: dict[str, Any]) -> None:
    print(
        f"cache: hits {stats['hits']}  misses {stats['misses']}  "
        f"hit ratio {stats['hit_ratio']:.2f}  entries {stats['entries']}  "
        f"bytes {stats['bytes']:,}  evictions {stats['evictions']}\n"
        f"storage: hits {stats['storage_hits']}  entries {stats['storage_entries']}  "
        f"bytes {stats['storage_bytes']:,}  write errors {stats['storage_write_errors']}"
    )


def _plot(cold: PipelinePass, warm: PipelinePass, path: str) -> None:
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
