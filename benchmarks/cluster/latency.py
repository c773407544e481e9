"""Small-value ``get`` and ``put`` latency: raycache against a raw Ray actor, Redis, memcached.

The raw actor, a dict behind one actor call, is the headline baseline: raycache adds
routing to it. Redis and memcached, driven by their Python clients over loopback, show
where a Ray actor round trip stands against a plain TCP key-value server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray

import raycache
from benchmarks.harness.baselines import BASELINES, Baseline, Store, running_stores
from benchmarks.output.report import (
    Measurement,
    Row,
    Summary,
    comparison,
    fmt_seconds,
    interleave,
    p50_p99_text,
    round_ratios,
    summarize,
)

VALUE_BYTES = 100
TARGET_RATIO = 1.2
KEY = "small"

OURS_GET = "small get: raycache"
BASE_GET = "small get: raw actor"
OURS_PUT = "small put: raycache"
BASE_PUT = "small put: raw actor"


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
    """Time gets and puts of a 100-byte value on raycache and every baseline, interleaved."""
    value = bytes(range(VALUE_BYTES))
    raw: Any = ray.remote(RawSmall).options(num_cpus=0).remote()
    with running_stores() as stores:
        fns: dict[str, Callable[[], object]] = {
            OURS_GET: lambda: cache.get(KEY),
            BASE_GET: lambda: ray.get(raw.get.remote(KEY)),
            OURS_PUT: lambda: cache.put(KEY, value),
            BASE_PUT: lambda: ray.get(raw.put.remote(KEY, value)),
        }
        for baseline, store in stores.items():
            fns |= _store_calls(baseline, store, value)
        # The puts store the value that the gets then must read back.
        for put in (name for name in fns if name.startswith("small put")):
            fns[put]()
        for get in (name for name in fns if name.startswith("small get")):
            assert fns[get]() == value, get
        rounds = 4 if quick else 10
        samples = interleave(fns, rounds=rounds, calls=150 if quick else 300, warmup=200)
    ray.kill(raw)
    return _measurement(samples, round_ratios(samples[OURS_GET], samples[BASE_GET], rounds))


def _store_calls(baseline: Baseline, store: Store, value: bytes) -> dict[str, Callable[[], object]]:
    labels = _labels(baseline)
    return {
        f"small get: {labels['get']}": lambda: store.get(KEY),
        f"small put: {labels['put']}": lambda: store.set(KEY, value),
    }


def _labels(baseline: Baseline) -> dict[str, str]:
    return {
        "get": f"{baseline.name} {baseline.get_verb}",
        "put": f"{baseline.name} {baseline.set_verb}",
    }


def _measurement(samples: dict[str, list[float]], ratios: list[float]) -> Measurement:
    s = {name: summarize(series) for name, series in samples.items()}
    ours, base = s[OURS_GET], s[BASE_GET]
    rows = [
        comparison(
            f"small get ({VALUE_BYTES} B value), p50",
            ours,
            base,
            "raw actor",
            max_ratio=TARGET_RATIO,
        ),
        Row(
            what="small get p90 / p99 (context; ratio of p99)",
            ours=f"{fmt_seconds(ours.p90)} / {fmt_seconds(ours.p99)}",
            base=f"{fmt_seconds(base.p90)} / {fmt_seconds(base.p99)}",
            ratio=ours.p99 / base.p99,
            target="—",
            verdict="—",
        ),
        _context("small put", s[OURS_PUT], s[BASE_PUT], "raw actor"),
    ]
    for op, ours_op in (("get", s[OURS_GET]), ("put", s[OURS_PUT])):
        for baseline in BASELINES:
            label = _labels(baseline)[op]
            rows.append(_context(f"small {op}", ours_op, s.get(f"small {op}: {label}"), label))
    raw = {"series": samples, "summaries": s, "round_p50_ratios": ratios}
    return Measurement(rows=rows, raw=raw)


def _context(what: str, ours: Summary, base: Summary | None, label: str) -> Row:
    return comparison(f"{what} vs {label}, p50 / p99", ours, base, label, show=p50_p99_text)
