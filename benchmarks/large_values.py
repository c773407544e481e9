"""Large-value ``get``: a 100 MB Arrow table through raycache against raw Ray.

The baseline is an actor that ``ray.put`` the table itself and returns ``[ref]``, which
the caller then gets: the zero-copy pattern raycache is built on. For context, a naive
actor holding the table in its heap and returning it by value shows the copy-per-hit
cost, and a 1 MB table shows the same path at a smaller size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import ray

import raycache
from benchmarks.report import (
    Measurement,
    Row,
    Summary,
    fmt_seconds,
    interleave,
    round_ratios,
    summarize,
    verdict,
)

BIG_BYTES = 100 * 10**6
SMALL_BYTES = 1 * 10**6
COLUMNS = 4
TARGET_RATIO = 1.3

OURS_BIG = "100 MB get: raycache"
BASE_BIG = "100 MB get: raw actor [ref]"
NAIVE_BIG = "100 MB get: naive actor by value"
OURS_SMALL = "1 MB get: raycache"
BASE_SMALL = "1 MB get: raw actor [ref]"


def make_table(nbytes: int) -> pa.Table:
    """Return an Arrow table of ``COLUMNS`` int64 columns taking ``nbytes`` bytes."""
    rows = nbytes // (8 * COLUMNS)
    return pa.table({f"c{i}": np.arange(i, i + rows, dtype=np.int64) for i in range(COLUMNS)})


class RawRefs:
    """A raw actor that puts tables in the object store itself and hands out ``[ref]``."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self._refs = {name: ray.put(make_table(nbytes)) for name, nbytes in sizes.items()}

    def get(self, name: str) -> list[Any]:
        """Return ``[ref]`` so the caller receives the reference, not a copy."""
        return [self._refs[name]]


class NaiveHeap:
    """A raw actor holding a table in its heap and returning it by value on every hit."""

    def __init__(self, nbytes: int) -> None:
        self._table = make_table(nbytes)

    def get(self) -> pa.Table:
        """Return the table itself; Ray copies it into the object store each call."""
        return self._table


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time gets of 100 MB and 1 MB tables through raycache and raw actors, interleaved."""
    cache.put("big", make_table(BIG_BYTES))
    cache.put("one-mb", make_table(SMALL_BYTES))
    sizes = {"big": BIG_BYTES, "one-mb": SMALL_BYTES}
    refs: Any = ray.remote(RawRefs).options(num_cpus=0).remote(sizes)
    naive: Any = ray.remote(NaiveHeap).options(num_cpus=0).remote(BIG_BYTES)
    fns = {
        OURS_BIG: lambda: cache.get("big"),
        BASE_BIG: lambda: ray.get(ray.get(refs.get.remote("big"))[0]),
        NAIVE_BIG: lambda: ray.get(naive.get.remote()),
        OURS_SMALL: lambda: cache.get("one-mb"),
        BASE_SMALL: lambda: ray.get(ray.get(refs.get.remote("one-mb"))[0]),
    }
    _check(fns)
    rounds = 3 if quick else 6
    calls = {name: 3 if name == NAIVE_BIG else (8 if quick else 15) for name in fns}
    samples = interleave(fns, rounds=rounds, calls=calls, warmup=3)
    ray.kill(refs)
    ray.kill(naive)
    return _measurement(samples, round_ratios(samples[OURS_BIG], samples[BASE_BIG], rounds))


def _check(fns: dict[str, Any]) -> None:
    for name, fn in fns.items():
        expected = BIG_BYTES if name.startswith("100 MB") else SMALL_BYTES
        table = fn()
        assert isinstance(table, pa.Table), f"{name}: got {type(table).__name__}"
        assert abs(table.nbytes - expected) < 64, f"{name}: {table.nbytes} bytes"


def _measurement(samples: dict[str, list[float]], ratios: list[float]) -> Measurement:
    s = {name: summarize(series) for name, series in samples.items()}
    ratio = s[OURS_BIG].p50 / s[BASE_BIG].p50
    rows = [
        _row("100 MB Arrow get, p50", s[OURS_BIG], s[BASE_BIG], "raw actor [ref]", ratio),
        _context("100 MB get vs copy-per-hit (context)", s[OURS_BIG], s[NAIVE_BIG], "naive"),
        _context("1 MB Arrow get (context)", s[OURS_SMALL], s[BASE_SMALL], "raw actor [ref]"),
    ]
    raw = {"series": samples, "summaries": s, "round_p50_ratios": ratios}
    return Measurement(rows=rows, raw=raw)


def _row(what: str, ours: Summary, base: Summary, label: str, ratio: float) -> Row:
    return Row(
        what=what,
        ours=fmt_seconds(ours.p50),
        base=f"{fmt_seconds(base.p50)} ({label})",
        ratio=ratio,
        target=f"<= {TARGET_RATIO:.1f}x",
        verdict=verdict(ratio <= TARGET_RATIO),
    )


def _context(what: str, ours: Summary, base: Summary, label: str) -> Row:
    return Row(
        what=what,
        ours=fmt_seconds(ours.p50),
        base=f"{fmt_seconds(base.p50)} ({label})",
        ratio=ours.p50 / base.p50,
        target="—",
        verdict="—",
    )
