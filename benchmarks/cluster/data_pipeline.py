"""Ray Data: ``read -> map_batches(expensive) -> iterate``, cached per batch or not.

Three pipelines over the same blocks, each a stand-in for a model that takes
``DELAY`` seconds a batch. Uncached: every epoch runs the transform. Cached
(``raycache.data.cached``): epoch 1 streams and fills the cache, epoch 2 hits for every
batch. Materialized (``Dataset.materialize()``): the whole first epoch runs before any
batch can be consumed, then later epochs read the held blocks. Each is timed from the
start of iteration to its first batch and to its last; the cached and uncached first
epochs alternate order across rounds.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from typing import Any

import numpy as np
import ray

import raycache
from benchmarks.output.report import (
    Measurement,
    comparison,
    fmt_seconds,
    markdown_table,
    summarize,
    summary_table,
)

DELAY = 0.2  # seconds of "model" per batch
ROWS, BLOCKS, ROUNDS = 200_000, 16, 3
QUICK_ROWS, QUICK_BLOCKS, QUICK_ROUNDS = 50_000, 8, 2
TARGET_SPEEDUP = 5.0
TARGET_FIRST_BATCH = 1.1

PLAIN, COLD, WARM = "uncached, epoch 1", "cached, epoch 1 (cold)", "cached, epoch 2 (warm)"
MATERIALIZE, HELD = "materialize(), epoch 1", "materialize(), epoch 2"


def expensive(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    time.sleep(DELAY)
    values = batch["id"]
    return {"id": values, "feature": np.sqrt(values.astype("float64")) * 3.0}


def epoch(ds: Any) -> tuple[float, float, int]:
    """Iterate ``ds`` once; return the seconds to its first batch, to its end, and its rows."""
    started = time.perf_counter()
    first, rows = None, 0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        first = first if first is not None else time.perf_counter() - started
        rows += len(batch["id"])
    return first or 0.0, time.perf_counter() - started, rows


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time epochs of the uncached, cached and materialized pipelines; report the ratios."""
    rows, blocks, rounds = (
        (QUICK_ROWS, QUICK_BLOCKS, QUICK_ROUNDS) if quick else (ROWS, BLOCKS, ROUNDS)
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    transform = raycache.data.cached(expensive, cache=cache)

    def pipeline(fn: Any) -> Any:
        source = ray.data.range(rows, override_num_blocks=blocks)
        return source.map_batches(fn, batch_format="numpy", batch_size=None)

    first: dict[str, list[float]] = {name: [] for name in (PLAIN, COLD, WARM, MATERIALIZE, HELD)}
    total: dict[str, list[float]] = {name: [] for name in first}
    epoch(pipeline(expensive))  # untimed: Ray Data's workers start up outside every figure
    for index in range(rounds):
        cache.clear()
        order = [PLAIN, COLD] if index % 2 == 0 else [COLD, PLAIN]
        for name in [*order, WARM]:
            ttfb, seconds, seen = epoch(pipeline(expensive if name == PLAIN else transform))
            assert seen == rows, (name, seen)
            first[name].append(ttfb)
            total[name].append(seconds)
        started = time.perf_counter()
        held = pipeline(expensive).materialize()
        ttfb, seconds, _ = epoch(held)
        first[MATERIALIZE].append(time.perf_counter() - started - seconds + ttfb)
        total[MATERIALIZE].append(time.perf_counter() - started)
        ttfb, seconds, _ = epoch(held)
        first[HELD].append(ttfb)
        total[HELD].append(seconds)
        print(f"[data_pipeline] round {index + 1}/{rounds}", file=sys.stderr)
    return _measurement(first, total, rows, blocks)


def _measurement(
    first: dict[str, list[float]], total: dict[str, list[float]], rows: int, blocks: int
) -> Measurement:
    f = {name: summarize(series) for name, series in first.items()}
    t = {name: summarize(series) for name, series in total.items()}
    label = f"Ray Data, {blocks} batches x {DELAY:g} s"
    table = markdown_table(
        ("pipeline", "first batch (p50)", "epoch (p50)"),
        [(name, fmt_seconds(f[name].p50), fmt_seconds(t[name].p50)) for name in first],
    )
    speedups = [c / w for c, w in zip(total[COLD], total[WARM], strict=True)]
    return Measurement(
        rows=[
            comparison(
                f"{label}: cached epoch 2 vs epoch 1",
                t[WARM],
                t[COLD],
                "epoch 1",
                max_ratio=1 / TARGET_SPEEDUP,
                target=f">= {TARGET_SPEEDUP:g}x faster",
            ),
            comparison(
                f"{label}: cached epoch 1, first batch",
                f[COLD],
                f[PLAIN],
                "uncached",
                max_ratio=TARGET_FIRST_BATCH,
            ),
            comparison(f"{label}: cached epoch 1", t[COLD], t[PLAIN], "uncached"),
            comparison(
                f"{label}: cached epoch 1, first batch vs materialize()",
                f[COLD],
                f[MATERIALIZE],
                "materialize()",
            ),
            comparison(f"{label}: cached epoch 2 vs materialized", t[WARM], t[HELD], "held"),
        ],
        raw={
            "rows": rows,
            "blocks": blocks,
            "first_batch": first,
            "epoch": total,
            "summaries": {f"data_pipeline: {name}": s for name, s in t.items()},
            "round_p50_ratios": [],
            "warm_speedups": speedups,
            "median_warm_speedup": statistics.median(speedups),
            "sections": [f"## Ray Data: stream and cache ({rows:,} rows)\n\n{table}"],
        },
    )


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone on a private local Ray and print its table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster.data_pipeline")
    parser.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args(argv)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    cache = raycache.Cache("bench-data-pipeline", shards=2, capacity="512MiB")
    try:
        result = run(cache, quick=args.quick)
    finally:
        cache.shutdown()
        ray.shutdown()
    print(summary_table(result.rows))
    print("\n".join(result.raw["sections"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
