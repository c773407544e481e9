"""Small-value ``get`` latency: raycache against a raw Ray actor returning the value."""

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

VALUE_BYTES = 100
TARGET_RATIO = 1.2
KEY = "small"


class RawSmall:
    """A plain actor holding small values in a dict: the raw-Ray baseline."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}

    def put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``."""
        self._values[key] = value

    def get(self, key: str) -> bytes | None:
        """Return the value under ``key``."""
        return self._values.get(key)


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time ``cache.get`` and the raw actor's ``get`` on a 100-byte value, interleaved."""
    value = bytes(range(VALUE_BYTES))
    cache.put(KEY, value)
    raw: Any = ray.remote(RawSmall).options(num_cpus=0).remote()
    ray.get(raw.put.remote(KEY, value))
    assert cache.get(KEY) == value and ray.get(raw.get.remote(KEY)) == value

    rounds = 4 if quick else 10
    samples = interleave(
        {
            "small get: raycache": lambda: cache.get(KEY),
            "small get: raw actor": lambda: ray.get(raw.get.remote(KEY)),
        },
        rounds=rounds,
        calls=150 if quick else 300,
        warmup=200,
    )
    ray.kill(raw)
    ours, base = samples["small get: raycache"], samples["small get: raw actor"]
    return _measurement(samples, round_ratios(ours, base, rounds))


def _measurement(samples: dict[str, list[float]], ratios: list[float]) -> Measurement:
    summaries = {name: summarize(series) for name, series in samples.items()}
    ours, base = summaries["small get: raycache"], summaries["small get: raw actor"]
    ratio = ours.p50 / base.p50
    row = Row(
        what=f"small get ({VALUE_BYTES} B value), p50",
        ours=fmt_seconds(ours.p50),
        base=f"{fmt_seconds(base.p50)} (raw actor)",
        ratio=ratio,
        target=f"<= {TARGET_RATIO}x",
        verdict=verdict(ratio <= TARGET_RATIO),
    )
    tail = Row(
        what="small get p90 / p99 (context; ratio of p99)",
        ours=f"{fmt_seconds(ours.p90)} / {fmt_seconds(ours.p99)}",
        base=f"{fmt_seconds(base.p90)} / {fmt_seconds(base.p99)}",
        ratio=ours.p99 / base.p99,
        target="—",
        verdict="—",
    )
    raw = {"series": samples, "summaries": summaries, "round_p50_ratios": ratios}
    return Measurement(rows=[row, tail], raw=raw)
