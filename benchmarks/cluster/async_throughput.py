"""Many gets in flight from one process: ``AsyncCache`` against a loop of ``Cache.get`` and raw Ray.

``python -m benchmarks.cluster.async_throughput [--quick]``. Each sample is one burst of 256
concurrent small gets from one event loop, timed until the last answer; the report gives
gets per second at the p50 burst. The baselines: the blocking ``Cache.get`` called 256
times in a row (what a coroutine can do with it), and a trivial async actor holding the
same values in a dict, called 256 times concurrently (``await actor.get.remote(key)``).
``AsyncCache`` runs with its batching (one ``get_many`` per shard per tick of the loop)
and without it. Last, an event-loop lag probe (a task sleeping 5 ms in a loop) records the
worst stall while each client runs its bursts.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import ray

import raycache
from benchmarks.output.report import (
    Measurement,
    Row,
    Summary,
    comparison,
    distribution_table,
    fmt_seconds,
    interleave,
    markdown_table,
    round_ratios,
    summarize,
    summary_table,
    verdict,
)
from tests.helpers.aio import loop_lag

CONCURRENCY = 256
VALUE_BYTES = 100
MAX_LAG_S = 0.05
SYNC_SPEEDUP = 5.0  # AsyncCache gets/s at least 5x a loop of Cache.get
RAW_SHARE = 0.8  # and at least 0.8x a raw async actor's

BATCHED = "256 concurrent gets: AsyncCache"
UNBATCHED = "256 concurrent gets: AsyncCache, unbatched"
SYNC = "256 gets: Cache.get in a loop"
RAW = "256 concurrent gets: raw async actor"


class RawAsync:
    """A trivial async actor that returns small values from its dict."""

    def __init__(self, values: dict[str, bytes]) -> None:
        self._values = values

    async def get(self, key: str) -> bytes | None:
        """Return the value under ``key``."""
        return self._values.get(key)


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time bursts of 256 gets through each client, interleaved, and probe the loop's lag."""
    values = {f"async-{i:03d}": bytes([i % 256]) * VALUE_BYTES for i in range(CONCURRENCY)}
    keys = list(values)
    cache.put_many(values)
    raw: Any = ray.remote(RawAsync).options(num_cpus=0, max_concurrency=1000).remote(values)
    loop = asyncio.new_event_loop()
    acache = loop.run_until_complete(raycache.AsyncCache.attach(cache.name))
    unbatched = loop.run_until_complete(raycache.AsyncCache.attach(cache.name))
    unbatched.batching = False

    async def gets_of(get: Callable[[str], Awaitable[Any]]) -> list[Any]:
        return await asyncio.gather(*(get(key) for key in keys))

    async def sync_gets() -> list[Any]:
        return [cache.get(key) for key in keys]  # blocks the loop for every get

    bursts: dict[str, Callable[[], Awaitable[list[Any]]]] = {
        BATCHED: lambda: gets_of(acache.get),
        UNBATCHED: lambda: gets_of(unbatched.get),
        SYNC: sync_gets,
        RAW: lambda: gets_of(lambda key: raw.get.remote(key)),
    }
    try:
        for name, burst in bursts.items():
            assert loop.run_until_complete(burst()) == list(values.values()), name
        fns = {name: _blocking(loop, burst) for name, burst in bursts.items()}
        rounds = 4 if quick else 10
        samples = interleave(fns, rounds=rounds, calls=5 if quick else 15, warmup=3)
        lags = {name: loop.run_until_complete(_worst_lag(burst)) for name, burst in bursts.items()}
    finally:
        loop.close()
        ray.kill(raw)
    return _measurement(samples, lags, round_ratios(samples[BATCHED], samples[RAW], rounds))


def _blocking(
    loop: asyncio.AbstractEventLoop, burst: Callable[[], Awaitable[list[Any]]]
) -> Callable[[], object]:
    return lambda: loop.run_until_complete(burst())


async def _worst_lag(burst: Callable[[], Awaitable[list[Any]]], bursts: int = 5) -> float:
    async with loop_lag() as lags:
        for _ in range(bursts):
            await burst()
        await asyncio.sleep(0.02)  # the probe's last nap ends, and is counted
    return max(lags, default=0.0)


def _rate(summary: Summary) -> str:
    return f"{fmt_seconds(summary.p50)} = {CONCURRENCY / summary.p50:,.0f} gets/s"


def _measurement(
    samples: dict[str, list[float]], lags: dict[str, float], ratios: list[float]
) -> Measurement:
    s = {name: summarize(series) for name, series in samples.items()}
    pairs = [  # (what, ours, baseline, its label, the share of its gets/s ours must reach)
        ("AsyncCache vs Cache.get in a loop", BATCHED, SYNC, "Cache.get loop", SYNC_SPEEDUP),
        ("AsyncCache vs raw async actor", BATCHED, RAW, "raw async actor", RAW_SHARE),
        ("AsyncCache unbatched vs raw async actor", UNBATCHED, RAW, "raw async actor", None),
    ]
    rows = [
        comparison(
            f"256 concurrent gets: {what}, p50 burst",
            s[ours],
            s[base],
            label,
            max_ratio=None if share is None else 1 / share,
            target=None if share is None else f">= {share:g}x gets/s",
            show=_rate,
        )
        for what, ours, base, label, share in pairs
    ]
    rows.append(
        Row(
            what="worst event-loop stall during bursts: AsyncCache / Cache.get in a coroutine",
            ours=fmt_seconds(lags[BATCHED]),
            base=f"{fmt_seconds(lags[SYNC])} (Cache.get)",
            ratio=lags[BATCHED] / lags[SYNC] if lags[SYNC] else None,
            target=f"<= {fmt_seconds(MAX_LAG_S)}",
            verdict=verdict(lags[BATCHED] <= MAX_LAG_S),
        )
    )
    raw = {
        "series": samples,
        "summaries": s,
        "gets_per_s_p50": {name: CONCURRENCY / summary.p50 for name, summary in s.items()},
        "worst_loop_lag_s": lags,
        "round_p50_ratios": ratios,
    }
    return Measurement(rows=rows, raw=raw)


def main(argv: list[str] | None = None) -> int:
    """Run on a fresh local Ray, on a cache of its own, and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster.async_throughput")
    parser.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    cache = raycache.Cache(f"bench-async-{uuid.uuid4().hex[:8]}", shards=2, capacity="256MiB")
    try:
        result = run(cache, quick=args.quick)
    finally:
        cache.shutdown()
        ray.shutdown()
    print(summary_table(result.rows))
    print()
    print(distribution_table(result.raw["summaries"]))
    stalls = [(name, fmt_seconds(lag)) for name, lag in result.raw["worst_loop_lag_s"].items()]
    print()
    print(markdown_table(("client", "worst event-loop stall"), stalls))
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
