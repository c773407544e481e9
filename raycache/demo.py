"""``raycache demo``: the cache at work on an embedded local Ray, in under a minute.

It builds a synthetic table of taxi-like trips, memoizes an expensive pandas aggregation
with :meth:`Cache.get_or_compute` (cold, then warm), caches the table itself and reads it
back zero-copy, and prints the cache's counters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import ray

from raycache.cache import Cache

T = TypeVar("T")

DEMO_CACHE = "demo"


def make_trips(rows: int, seed: int = 7) -> pa.Table:
    """Return ``rows`` synthetic taxi trips as an Arrow table, the same for the same seed."""
    rng = np.random.default_rng(seed)
    zones = rng.integers(1, 266, size=rows, dtype=np.int16)
    distance = rng.gamma(2.0, 1.6, size=rows).astype(np.float32)
    fare = (3.0 + 2.5 * distance + rng.normal(0, 1.0, size=rows)).astype(np.float32)
    hours = rng.integers(0, 24, size=rows, dtype=np.int8)
    return pa.table({"zone": zones, "hour": hours, "distance": distance, "fare": fare})


def busiest_zones(trips: pa.Table, k: int = 5) -> pd.DataFrame:
    """Return the ``k`` zones with the most revenue, with trip counts and mean fares."""
    frame = trips.to_pandas()
    frame = frame[(frame["fare"] > 0) & (frame["distance"] > 0.1)].astype({"fare": "float64"})
    totals = frame.groupby(["zone", "hour"]).agg(trips=("fare", "size"), revenue=("fare", "sum"))
    by_zone = totals.groupby(level="zone").sum()
    by_zone["mean_fare"] = by_zone["revenue"] / by_zone["trips"]
    return by_zone.nlargest(k, "revenue")


def run_demo(rows: int = 2_000_000) -> None:
    """Run the demonstration and print what it measured."""
    if not ray.is_initialized():
        ray.init(logging_level=logging.ERROR, include_dashboard=False)
    cache = Cache(DEMO_CACHE, capacity="1GiB")
    cache.clear()
    trips = make_trips(rows)
    print(f"raycache demo: {rows:,} trips, {trips.nbytes / 2**20:.0f} MiB, cache {cache!r}\n")

    cold, top = _timed(lambda: cache.get_or_compute(("busiest", rows), busiest_zones, trips))
    warm, again = _timed(lambda: cache.get_or_compute(("busiest", rows), busiest_zones, trips))
    assert again.equals(top)
    print(top.round(2).to_string(), "\n")
    print(
        f"aggregation   cold {cold * 1e3:8.1f} ms   warm {warm * 1e3:8.2f} ms   "
        f"speedup {cold / warm:,.0f}x"
    )

    cache.put("trips", trips)
    read, table = _timed(lambda: cache.get("trips"))
    assert table.equals(trips)
    print(f"table hit     {read * 1e3:8.2f} ms for {trips.nbytes / 2**20:.0f} MiB (zero-copy)\n")

    stats = cache.stats()
    print(
        f"hits {stats['hits']}  misses {stats['misses']}  hit ratio {stats['hit_ratio']:.2f}  "
        f"entries {stats['entries']}  bytes {stats['bytes']:,}  evictions {stats['evictions']}"
    )
    cache.shutdown()


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result
