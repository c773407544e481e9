"""The demo's pipeline as a script: memoized Ray tasks over Arrow partitions of taxi trips.

Each stage is an ordinary ``@ray.remote`` task with ``@raycache.memoize`` on top. The
second run of the pipeline is all cache hits; after one partition changes, only the
stages downstream of it run again. Run it with ``python examples/pipeline_aggregations.py
--rows 10000000`` for a bigger dataset.
"""

import argparse
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import ray

import raycache

CACHE = "pipeline-example"


def make_partition(index: int, rows: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng([seed, index])
    distance = rng.gamma(2.0, 1.6, size=rows)
    return pa.table(
        {
            "zone": rng.integers(1, 266, size=rows),
            "passengers": rng.integers(1, 7, size=rows),
            "distance": distance,
            "fare": 3.0 + 2.5 * distance + rng.normal(0, 1.5, size=rows),
        }
    )


@raycache.memoize(cache=CACHE)
@ray.remote
def clean(trips: pa.Table) -> pa.Table:
    valid = pc.and_(pc.greater(trips["fare"], 0), pc.greater(trips["distance"], 0.1))
    return trips.filter(valid)


@raycache.memoize(cache=CACHE)
@ray.remote
def aggregate(trips: pa.Table) -> pd.DataFrame:
    return (
        trips.to_pandas()
        .groupby("zone")
        .agg(trips=("fare", "size"), revenue=("fare", "sum"), passengers=("passengers", "sum"))
    )


@raycache.memoize(cache=CACHE)
@ray.remote
def merge(*parts: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(parts).groupby(level="zone").sum()


@raycache.memoize(cache=CACHE)
@ray.remote
def top_k(totals: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    return totals.nlargest(k, "revenue")


def pipeline(partitions: list[pa.Table]) -> pd.DataFrame:
    # Passing ObjectRefs from stage to stage keeps the data in the object store; raycache
    # keys each downstream call by the lineage of its references, without reading them.
    cleaned = [clean.remote(p) for p in partitions]
    parts = [aggregate.remote(c) for c in cleaned]
    return ray.get(top_k.remote(merge.remote(*parts)))


def timed(label: str, partitions: list[pa.Table]) -> pd.DataFrame:
    started = time.perf_counter()
    answer = pipeline(partitions)
    print(f"{label:>8}: {time.perf_counter() - started:7.3f} s")
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="trips in all")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    ray.init(include_dashboard=False)
    cache = raycache.Cache(CACHE, capacity="1GiB")
    cache.clear()
    rows = args.rows // args.partitions
    partitions = [make_partition(i, rows) for i in range(args.partitions)]

    cold = timed("cold", partitions)
    warm = timed("warm", partitions)
    assert warm.equals(cold)

    partitions[0] = make_partition(0, rows, seed=8)
    timed("changed", partitions)
    runs = {stage.__name__: stage.cache_info().misses for stage in (clean, aggregate, merge)}
    print("times each stage ran in all three passes:", runs)
    print(cold)
    cache.shutdown()


if __name__ == "__main__":
    main()
