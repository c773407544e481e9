"""A Ray Serve deployment that caches an expensive per-request computation.

Each request asks for one user's features. Computing them takes ``COMPUTE_SECONDS`` of
CPU (a stand-in for a model's forward pass in the replica), during which the replica's
event loop serves nothing else, as with any CPU-bound handler. The cached deployment keeps
them in a ``raycache.AsyncCache``, shared by every replica and every later deployment:
``get_or_compute`` awaits the cache without blocking the replica's event loop, and runs
the computation once per user however many requests ask for it at the same time.

A bounded load test sends ``REQUESTS`` requests, ``CONCURRENCY`` at a time, through
``DeploymentHandle`` calls (loopback, no HTTP port to collide with), three ways: to a
deployment without the cache, to the cached one with every entry cold (each user asked
for the first time), then with every entry warm. It prints p50/p99 latency and
requests/s of each. ``RAYCACHE_EXAMPLE_REQUESTS`` sets a larger load.
"""

import asyncio
import logging
import os
import time

import numpy as np
import ray
from ray import serve

import raycache

CACHE = "serve-features"
COMPUTE_SECONDS = 0.02
REQUESTS = int(os.environ.get("RAYCACHE_EXAMPLE_REQUESTS", "300"))
CONCURRENCY = 32
QUIET = {"log_level": "WARNING", "enable_access_log": False}


def compute_features(user: int) -> list[float]:
    rng = np.random.default_rng(user)
    weights = rng.standard_normal((64, 64))
    deadline = time.perf_counter() + COMPUTE_SECONDS
    while time.perf_counter() < deadline:  # the model's CPU time, holding the loop
        weights = np.tanh(weights @ weights.T / 64)
    return weights[0, :16].round(4).tolist()


@serve.deployment(max_ongoing_requests=CONCURRENCY, logging_config=QUIET)
class Features:
    def __init__(self, cached: bool) -> None:
        # AsyncCache connects on a thread of its own: __init__ does not block the loop.
        self.cache = raycache.AsyncCache(CACHE) if cached else None

    async def __call__(self, user: int) -> list[float]:
        if self.cache is None:
            return compute_features(user)
        return await self.cache.get_or_compute(("features", user), compute_features, user)


async def load_test(handle: serve.handle.DeploymentHandle, users: list[int]) -> dict[str, float]:
    """Send one request per user, ``CONCURRENCY`` in flight; return latency and throughput."""
    slots = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = []

    async def one(user: int) -> None:
        async with slots:
            started = time.perf_counter()
            await handle.remote(user)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(user) for user in users))
    elapsed = time.perf_counter() - started
    return {
        "p50": float(np.percentile(latencies, 50)),
        "p99": float(np.percentile(latencies, 99)),
        "rps": len(users) / elapsed,
    }


async def main_async() -> None:
    plain = serve.run(Features.bind(cached=False), name="plain", route_prefix=None)
    cached = serve.run(Features.bind(cached=True), name="cached", route_prefix=None)
    users = list(range(REQUESTS))
    # One untimed request each, so replica start-up and the cache's connection are not timed.
    await plain.remote(REQUESTS)
    await cached.remote(REQUESTS)
    results = {
        "no cache": await load_test(plain, users),
        "cache, cold entries": await load_test(cached, users),
        "cache, warm entries": await load_test(cached, users),
    }
    assert await cached.remote(7) == await plain.remote(7)
    print(f"{REQUESTS} requests, {CONCURRENCY} in flight, {COMPUTE_SECONDS * 1e3:.0f} ms compute")
    print(f"  {'':22} {'p50':>9} {'p99':>9} {'req/s':>8}")
    for name, r in results.items():
        print(f"  {name:22} {r['p50'] * 1e3:7.1f}ms {r['p99'] * 1e3:7.1f}ms {r['rps']:8.0f}")
    speedup = results["no cache"]["p50"] / results["cache, warm entries"]["p50"]
    print(f"  warm p50 vs no cache: {speedup:.1f}x faster")


def main() -> None:
    ray.init(include_dashboard=False, logging_level="ERROR")
    logging.getLogger("ray.serve").setLevel(logging.ERROR)
    serve.start(
        proxy_location="Disabled", logging_config=QUIET
    )  # handles only: no HTTP port on this machine
    try:
        asyncio.run(main_async())
    finally:
        serve.shutdown()
        raycache.Cache.attach(CACHE).shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
