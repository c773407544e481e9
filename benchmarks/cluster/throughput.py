"""Batch throughput: ``get_many`` of 1,000 and 10,000 small keys, and ``put_many`` of 10,000.

The baselines: one call to a raw actor holding the values in a dict, Redis MGET and MSET,
and memcached's multi-key get and set, each one round trip (memcached pipelines its sets).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import ray

import raycache
from benchmarks.harness.baselines import BASELINES, REDIS, Baseline, Store, running_stores
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

SIZES = (1000, 10_000)
"""Keys per batch; the first is the headline."""
PUT_KEYS = 10_000
VALUE_BYTES = 100
TARGET_KEYS_PER_S = 300_000
MAX_RATIOS = {REDIS: 1.0}  # raycache keys/s at least Redis MGET's: a time ratio of at most 1


class RawMany:
    """A raw actor that returns many small values from its dict in one call."""

    def __init__(self, values: dict[str, bytes]) -> None:
        self._values = values

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Return the value of every key, in order."""
        values = self._values
        return [values.get(key) for key in keys]


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time batches of every size on raycache and every baseline, interleaved per size."""
    samples: dict[str, list[float]] = {}
    rounds = 4 if quick else 10
    with running_stores() as stores:
        for keys in SIZES:
            samples |= _time_gets(cache, stores, keys, rounds=rounds, quick=quick)
        samples |= _time_puts(cache, stores, rounds=rounds, quick=quick)
    first = SIZES[0]
    ratios = round_ratios(samples[_ours(first)], samples[_raw(first)], rounds)
    return _measurement(samples, ratios)


def _values(keys: int) -> dict[str, bytes]:
    return {f"many-{i:05d}": i.to_bytes(4, "big") * (VALUE_BYTES // 4) for i in range(keys)}


def _time_gets(
    cache: raycache.Cache, stores: dict[Baseline, Store], keys: int, *, rounds: int, quick: bool
) -> dict[str, list[float]]:
    values = _values(keys)
    names = list(values)
    cache.put_many(values)
    raw: Any = ray.remote(RawMany).options(num_cpus=0).remote(values)
    assert cache.get_many(names) == values
    fns: dict[str, Callable[[], object]] = {
        _ours(keys): lambda: cache.get_many(names),
        _raw(keys): lambda: ray.get(raw.get_many.remote(names)),
    }
    for baseline, store in stores.items():
        store.set_many(values)
        fns[_series(baseline, keys)] = functools.partial(store.get_many, names)
    for name in fns.keys() - {_ours(keys)}:
        assert fns[name]() == list(values.values()), name
    calls = max(3, (25 if quick else 50) * SIZES[0] // keys)
    samples = interleave(fns, rounds=rounds, calls=calls, warmup=max(2, calls // 2))
    ray.kill(raw)
    return samples


def _time_puts(
    cache: raycache.Cache, stores: dict[Baseline, Store], *, rounds: int, quick: bool
) -> dict[str, list[float]]:
    values = _values(PUT_KEYS)
    fns: dict[str, Callable[[], object]] = {
        _ours(PUT_KEYS, "put_many"): lambda: cache.put_many(values)
    }
    for baseline, store in stores.items():
        fns[_series(baseline, PUT_KEYS, "put_many")] = functools.partial(store.set_many, values)
    calls = 3 if quick else 5
    return interleave(fns, rounds=rounds, calls=calls, warmup=2)


def _ours(keys: int, op: str = "get_many") -> str:
    return f"{op}({keys}): raycache"


def _raw(keys: int) -> str:
    return f"get_many({keys}): raw actor"


def _series(baseline: Baseline, keys: int, op: str = "get_many") -> str:
    return f"{op}({keys}): {_label(baseline, op)}"


def _label(baseline: Baseline, op: str = "get_many") -> str:
    verb = baseline.get_many_verb if op == "get_many" else baseline.set_many_verb
    return f"{baseline.name} {verb}"


def _rate(keys: int) -> Callable[[Summary], str]:
    def text(summary: Summary) -> str:
        return f"{fmt_seconds(summary.p50)} = {keys / summary.p50 / 1000:.0f}k keys/s"

    return text


def _measurement(samples: dict[str, list[float]], ratios: list[float]) -> Measurement:
    s = {name: summarize(series) for name, series in samples.items()}
    first = SIZES[0]
    rate = _rate(first)
    rows = [
        Row(
            what=f"get_many of {first:,} keys, p50",
            ours=rate(s[_ours(first)]),
            base=f"{rate(s[_raw(first)])} (raw actor)",
            ratio=s[_ours(first)].p50 / s[_raw(first)].p50,
            target=f">= {TARGET_KEYS_PER_S // 1000}k keys/s",
            verdict=verdict(first / s[_ours(first)].p50 >= TARGET_KEYS_PER_S),
        )
    ]
    for keys in SIZES:
        for baseline in BASELINES:
            rows.append(_versus(s, baseline, keys, "get_many"))
    rows.extend(_versus(s, baseline, PUT_KEYS, "put_many") for baseline in BASELINES)
    keys_per_s = {name: int(name.split("(")[1].split(")")[0]) / v.p50 for name, v in s.items()}
    raw = {
        "series": samples,
        "summaries": s,
        "keys_per_s_p50": keys_per_s,
        "round_p50_ratios": ratios,
    }
    return Measurement(rows=rows, raw=raw)


def _versus(s: dict[str, Summary], baseline: Baseline, keys: int, op: str) -> Row:
    label = _label(baseline, op)
    return comparison(
        f"{op} of {keys:,} keys vs {label}, p50",
        s[_ours(keys, op)],
        s.get(_series(baseline, keys, op)),
        label,
        max_ratio=MAX_RATIOS.get(baseline.name),
        target=f">= {baseline.name} keys/s",
        show=_rate(keys),
    )
