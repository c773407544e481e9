"""``get_many`` throughput: 1,000 small keys through raycache against one raw actor call."""

from __future__ import annotations

from typing import Any

import ray

import raycache
from benchmarks.report import (
    Measurement,
    Row,
    fmt_seconds,
    interleave,
    round_ratios,
    summarize,
    verdict,
)

KEYS = 1000
VALUE_BYTES = 100
TARGET_KEYS_PER_S = 300_000

OURS = "get_many(1000): raycache"
BASE = "get_many(1000): raw actor"


class RawMany:
    """A raw actor that returns many small values from its dict in one call."""

    def __init__(self, values: dict[str, bytes]) -> None:
        self._values = values

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Return the value of every key, in order."""
        values = self._values
        return [values.get(key) for key in keys]


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time ``cache.get_many`` of 1,000 keys and the raw actor's one call, interleaved."""
    values = {f"many-{i:04d}": i.to_bytes(4, "big") * (VALUE_BYTES // 4) for i in range(KEYS)}
    keys = list(values)
    cache.put_many(values)
    raw: Any = ray.remote(RawMany).options(num_cpus=0).remote(values)
    assert cache.get_many(keys) == values
    assert ray.get(raw.get_many.remote(keys)) == list(values.values())

    rounds = 4 if quick else 10
    samples = interleave(
        {OURS: lambda: cache.get_many(keys), BASE: lambda: ray.get(raw.get_many.remote(keys))},
        rounds=rounds,
        calls=25 if quick else 50,
        warmup=20,
    )
    ray.kill(raw)
    return _measurement(samples, round_ratios(samples[OURS], samples[BASE], rounds))


def _measurement(samples: dict[str, list[float]], ratios: list[float]) -> Measurement:
    s = {name: summarize(series) for name, series in samples.items()}
    ours_rate, base_rate = KEYS / s[OURS].p50, KEYS / s[BASE].p50
    row = Row(
        what=f"get_many of {KEYS:,} keys, p50",
        ours=f"{fmt_seconds(s[OURS].p50)} = {ours_rate / 1000:.0f}k keys/s",
        base=f"{fmt_seconds(s[BASE].p50)} = {base_rate / 1000:.0f}k keys/s (raw actor)",
        ratio=s[OURS].p50 / s[BASE].p50,
        target=f">= {TARGET_KEYS_PER_S // 1000}k keys/s",
        verdict=verdict(ours_rate >= TARGET_KEYS_PER_S),
    )
    raw = {
        "series": samples,
        "summaries": s,
        "keys_per_s_p50": {"raycache": ours_rate, "raw": base_rate},
        "round_p50_ratios": ratios,
    }
    return Measurement(rows=[row], raw=raw)
