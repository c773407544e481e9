"""Results that outlive the cluster: a memoized pipeline, run twice, warm the second time.

The cache keeps its entries in storage as well as in memory. Run with no arguments, this
script runs the same pipeline in two processes, one after the other, each on a new Ray
of its own, against one storage directory: the first computes every stage, the second
finds every result in storage and computes nothing. Give a directory or a URL
(``s3://bucket/prefix``) to keep the results between your own runs instead::

    python examples/persistent_pipeline.py ./pipeline-results
"""

import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import ray

import raycache

CACHE = "persistent-pipeline"
DAYS = 4


@raycache.memoize(cache=CACHE)
@ray.remote
def features(day: int) -> pd.DataFrame:
    """One day's features: slow to compute, so worth keeping."""
    time.sleep(1.0)
    rng = np.random.default_rng(day)
    return pd.DataFrame(
        {"store": rng.integers(0, 50, 100_000), "sales": rng.gamma(2.0, 30.0, 100_000)}
    )


@raycache.memoize(cache=CACHE)
@ray.remote
def summary(*days: pd.DataFrame) -> pd.Series:
    """Sales per store over every day."""
    time.sleep(0.5)
    return pd.concat(days).groupby("store")["sales"].sum()


def run(storage: str) -> None:
    """Run the pipeline once, on a Ray of this process's own, and report where it came from."""
    ray.init(address="local", include_dashboard=False, logging_level="ERROR")
    # The memoized stages find this cache by name; `storage=` makes its entries durable
    # (RAYCACHE_STORAGE in the environment would do the same for every cache).
    cache = raycache.Cache(CACHE, storage=storage)
    started = time.perf_counter()
    sales = ray.get(summary.remote(*[features.remote(day) for day in range(DAYS)]))
    seconds = time.perf_counter() - started
    from_storage = cache.stats()["storage_hits"]
    print(f"{seconds:5.2f} s, top store {sales.idxmax()}, {from_storage} results from storage")
    cache.shutdown()  # waits for the background writes to storage first
    ray.shutdown()


def main() -> None:
    """Run the pipeline in two processes, one after the other, against one storage."""
    with tempfile.TemporaryDirectory(prefix="raycache-") as scratch:
        storage = sys.argv[1] if len(sys.argv) > 1 else scratch
        for label in ("first run: computes everything", "second run: a new Ray, warm from storage"):
            print(label, flush=True)
            subprocess.run([sys.executable, __file__, "--run", storage], check=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        run(sys.argv[2])
    else:
        main()
