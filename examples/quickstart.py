"""raycache in about thirty lines: the Cache contract on an embedded local Ray."""

import time

import numpy as np
import pyarrow as pa
import ray

import raycache


def slow_square(x: int) -> int:
    time.sleep(0.5)
    return x * x


def main() -> None:
    ray.init(include_dashboard=False)
    cache = raycache.Cache("quickstart", capacity="256MiB", policy="lru", ttl=3600)

    cache.put("greeting", "hello", tags=["demo"])  # small values live in the shard
    assert cache.get("greeting") == "hello" and "greeting" in cache
    assert cache.get("absent", default="fallback") == "fallback"

    table = pa.table({"x": np.arange(5_000_000)})  # large values stay in the object store
    cache.put("table", table)
    assert cache.get("table").equals(table)  # read back zero-copy

    cache.put_many({f"user:{i}": {"id": i} for i in range(100)})
    print(len(cache.get_many([f"user:{i}" for i in range(150)])), "of 150 users cached")

    started = time.perf_counter()
    cache.get_or_compute(("square", 12), slow_square, 12)  # computed once, cluster-wide
    cache.get_or_compute(("square", 12), slow_square, 12)  # a hit
    print(f"two get_or_compute calls took {time.perf_counter() - started:.2f} s")

    print(cache.invalidate_tag("demo"), "entry invalidated by tag")
    stats = cache.stats()
    print(
        f"hit ratio {stats['hit_ratio']:.2f}, {stats['entries']} entries, {stats['bytes']:,} bytes"
    )
    cache.shutdown()


if __name__ == "__main__":
    main()
