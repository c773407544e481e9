"""``get_many`` throughput: 1,000 small keys through raycache and through the baselines.

The baselines: one call to a raw actor holding the values in a dict, Redis MGET, and
memcached's multi-key get, each one round trip.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import ray

import raycache
from benchmarks.harness.baselines import BASELINES, REDIS, Baseline, running_stores
from benchmarks.output.report import (
    Measurement,
    Row,
    Summary,
    comparison,
    fmt_seconds,
    interleave,
    round_ratios,
    summarize,
    verdict,
)

KEYS = 1000
VALUE_BYTES = 100
TARGET_KEYS_PER_S = 300_000
MAX_RATIOS = {REDIS: 1.0}  # raycache keys/s at least Redis MGET's: a time ratio of at most 1

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
    """Time ``get_many`` of 1,000 keys on raycache and every baseline, interleaved."""
    values = {f"many-{i:04d}": i.to_bytes(4, "big") * (VALUE_BYTES // 4) for i in range(KEYS)}
    keys = list(values)
    cache.put_many(values)
    raw: Any = ray.remote(RawMany).options(num_cpus=0).remote(values)
    assert cache.get_many(keys) == values
    with running_stores() as stores:
        fns: dict[str, Callable[[], object]] = {
            OURS: lambda: cache.get_many(keys),
            BASE: lambda: ray.get(raw.get_many.remote(keys)),
        }
        for baseline, store in stores.items():
            store.set_many(values)
            fns[_series(baseline)] = functools.partial(store.get_many, keys)
        for name in fns.keys() - {OURS}:
            assert fns[name]() == list(values.values()), name
        rounds = 4 if quick else 10
        samples = interleave(fns, rounds=rounds, calls=25 if quick else 50, warmup=20)
    ray.kill(raw)
    return _measurement(samples, round_ratios(samples[OURS], samples[BASE], rounds))


def _series(baseline: Baseline) -> str:
    return f"get_many({KEYS}): {_label(baseline)}"


def _label(baseline: Baseline) -> str:
    return f"{baseline.name} {baseline.get_many_verb}"


def _rate(summary: Summary) -> str:
    return f"{fmt_seconds(summary.p50)} = {KEYS / summary.p50 / 1000:.0f}k keys/s"


def _measurement(samples: dict[str, list[float]], ratios: list[float]) -> Measurement:
    s = {name: summarize(series) for name, series in samples.items()}
    ours_rate = KEYS / s[OURS].p50
    rows = [
        Row(
            what=f"get_many of {KEYS:,} keys, p50",
            ours=_rate(s[OURS]),
            base=f"{_rate(s[BASE])} (raw actor)",
            ratio=s[OURS].p50 / s[BASE].p50,
            target=f">= {TARGET_KEYS_PER_S // 1000}k keys/s",
            verdict=verdict(ours_rate >= TARGET_KEYS_PER_S),
        )
    ]
    for baseline in BASELINES:
        rows.append(
            comparison(
                f"get_many of {KEYS:,} keys vs {_label(baseline)}, p50",
                s[OURS],
                s.get(_series(baseline)),
                _label(baseline),
                max_ratio=MAX_RATIOS.get(baseline.name),
                target=f">= {baseline.name} keys/s",
                show=_rate,
            )
        )
    keys_per_s = {name: KEYS / summary.p50 for name, summary in s.items()}
    raw = {
        "series": samples,
        "summaries": s,
        "keys_per_s_p50": keys_per_s,
        "round_p50_ratios": ratios,
    }
    return Measurement(rows=rows, raw=raw)
