"""A hot key read through a near cache, against plain reads of the same key."""

from __future__ import annotations

import raycache
from benchmarks.output.report import (
    Measurement,
    Row,
    fmt_seconds,
    interleave,
    round_ratios,
    summarize,
)

NEAR_TTL = 1.0
OURS = "hot key: near cache"
BASE = "hot key: plain get"


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time reads of one hot key with and without a near cache; count shard round trips."""
    cache.put("hot-key", b"h" * 100)
    near = raycache.Cache.attach(cache.name, near_cache_ttl=NEAR_TTL)
    before = cache.stats()["hits"]
    reads = 1000
    for _ in range(reads):
        near.get("hot-key")
    shard_reads = cache.stats()["hits"] - before
    rounds = 4 if quick else 10
    samples = interleave(
        {OURS: lambda: near.get("hot-key"), BASE: lambda: cache.get("hot-key")},
        rounds=rounds,
        calls=50 if quick else 200,
        warmup=20,
    )
    summaries = {name: summarize(series) for name, series in samples.items()}
    row = Row(
        what=f"hot key get p50, near cache ({NEAR_TTL:g} s bound)",
        ours=f"{fmt_seconds(summaries[OURS].p50)}; {shard_reads} of {reads} reads hit the shard",
        base=f"{fmt_seconds(summaries[BASE].p50)} (plain get, every read)",
        ratio=summaries[OURS].p50 / summaries[BASE].p50,
        target="—",
        verdict="—",
    )
    raw = {
        "series": samples,
        "summaries": summaries,
        "shard_reads_per_1000": shard_reads,
        "round_p50_ratios": round_ratios(samples[OURS], samples[BASE], rounds),
    }
    return Measurement(rows=[row], raw=raw)
