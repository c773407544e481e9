"""Caching an expensive Ray Data transformation, per batch and as a whole.

``raycache.data.cached(featurize)`` goes to ``map_batches`` in place of ``featurize``. A
batch's content (values, index, columns, dtypes) and the transform's code are its key,
so a second run over the same data hits for every batch, wherever Ray Data schedules it,
and a changed transform misses. The whole result is also kept under one key,
cache-aside, for readers that want all of it.
"""

import logging
import time

import pandas as pd
import ray

import raycache
import raycache.data

CACHE = "ray-data-demo"
ROWS = 400
BLOCKS = 4
BATCH_DELAY = 0.5  # seconds per batch: stands in for a model or a heavy feature job


def featurize(batch: pd.DataFrame) -> pd.DataFrame:
    time.sleep(BATCH_DELAY)
    # Ray Data may hand over Arrow-backed columns; plain int64 supports every arithmetic op.
    batch = batch.astype("int64")
    return batch.assign(squared=batch["value"] ** 2, bucket=batch["value"] % 7)


def run_pipeline() -> pd.DataFrame:
    items = [{"id": i, "value": (i * 37) % 101} for i in range(ROWS)]
    ds = ray.data.from_items(items, override_num_blocks=BLOCKS)
    # batch_size=None: one batch per block, so the same blocks give the same keys.
    cached = raycache.data.cached(featurize, cache=CACHE, ttl=3600)
    ds = ds.map_batches(cached, batch_format="pandas", batch_size=None)
    # Ray Data does not promise output order by default: sort to compare runs.
    return ds.to_pandas().sort_values("id").reset_index(drop=True)


def timed(run: object) -> tuple[pd.DataFrame, float]:
    started = time.perf_counter()
    result = run()  # type: ignore[operator]
    return result, time.perf_counter() - started


def expected() -> pd.DataFrame:
    values = pd.Series([(i * 37) % 101 for i in range(ROWS)], dtype="int64")
    return pd.DataFrame(
        {"id": range(ROWS), "value": values, "squared": values**2, "bucket": values % 7}
    )


def main() -> None:
    ray.init(include_dashboard=False)
    # Keep the report short: no progress bars, no per-execution log lines.
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    cache = raycache.Cache(CACHE, capacity="64MiB")

    first, first_s = timed(run_pipeline)
    second, second_s = timed(run_pipeline)
    pd.testing.assert_frame_equal(first, expected(), check_dtype=False)
    pd.testing.assert_frame_equal(second, first)
    entries = cache.stats()["entries"]
    print(f"{ROWS} rows in {BLOCKS} blocks, {entries} batches cached")
    print(f"  first run:  {first_s:.2f} s (every batch computed)")
    print(f"  second run: {second_s:.2f} s (every batch a hit), identical output")
    assert entries == BLOCKS, entries

    # The whole materialized result under one key: later readers skip Ray Data entirely.
    cache.put(("features", "v1"), second, tags=["features"])
    whole, whole_s = timed(lambda: cache.get(("features", "v1")))
    pd.testing.assert_frame_equal(whole, first)
    print(f"  whole result from the cache: {whole_s:.3f} s")
    assert second_s < first_s, "the memoized run should be faster"
    cache.shutdown()


if __name__ == "__main__":
    main()
