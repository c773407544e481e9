"""Large-value hits: Arrow tables from 1 KB to 100 MB and a 200 MB DataFrame, five ways.

The headline baseline is an actor that ``ray.put`` each value itself and returns
``[ref]``, which the caller then gets: the zero-copy pattern raycache is built on. For
context: a naive actor holding the values in its heap and returning them by value (a copy
per hit), and Redis and memcached holding each value as an Arrow IPC stream that the
client reads back into a table, and into a DataFrame for the frame: the fast, standard
way to keep Arrow data in a byte store. The tables' p50s are also drawn against size.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import pyarrow as pa
import ray

import raycache
from benchmarks.harness.baselines import (
    BASELINES,
    MEMCACHED,
    REDIS,
    Baseline,
    Store,
    running_stores,
)
from benchmarks.harness.datasets import make_mixed_frame, make_table
from benchmarks.output.report import (
    Chart,
    Measurement,
    Row,
    Summary,
    calls_within,
    comparison,
    interleave,
    round_ratios,
    summarize,
)

Value: TypeAlias = Any  # a pa.Table or a pd.DataFrame, neither of which is typed

RAYCACHE = "raycache"
RAW = "raw actor [ref]"
NAIVE = "naive actor by value"


def ipc_contender(baseline: str) -> str:
    """Return the name of a byte store's hit path: a get, then an Arrow IPC read."""
    return f"{baseline} + Arrow IPC"


CONTENDERS = (RAYCACHE, RAW, NAIVE, *(ipc_contender(baseline.name) for baseline in BASELINES))


@dataclass(frozen=True)
class Sample:
    """A value to cache, described so that any process can build the very same one."""

    label: str
    nbytes: int
    frame: bool = False

    def build(self) -> Value:
        """Return the value: a mixed-dtype DataFrame or an int64 Arrow table."""
        return make_mixed_frame(self.nbytes, seed=0) if self.frame else make_table(self.nbytes)

    @property
    def key(self) -> str:
        """The key the value is stored under, without the spaces memcached refuses."""
        return self.label.replace(" ", "-")

    def series(self, contender: str) -> str:
        """Return the name of the series timing ``contender``'s hit on this value."""
        return f"{self.label} hit: {contender}"


TABLES = tuple(
    Sample(f"{label} table", nbytes)
    for label, nbytes in (
        ("1 KB", 10**3),
        ("100 KB", 10**5),
        ("1 MB", 10**6),
        ("10 MB", 10**7),
        ("100 MB", 10**8),
    )
)
FRAME = Sample("200 MB frame", 200 * 10**6, frame=True)
ONE_MB, HUNDRED_MB = TABLES[2], TABLES[4]
# The targets, as the most raycache's p50 may be over the contender's.
MAX_RATIOS: Mapping[tuple[Sample, str], float] = {
    (HUNDRED_MB, RAW): 1.3,
    (HUNDRED_MB, ipc_contender(REDIS)): 1 / 100,
    (HUNDRED_MB, ipc_contender(MEMCACHED)): 1 / 30,
}
REPORTED = (ONE_MB, HUNDRED_MB, FRAME)


class RawRefs:
    """A raw actor that puts values in the object store itself and hands out ``[ref]``."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self._refs = {sample.key: ray.put(sample.build()) for sample in samples}

    def get(self, key: str) -> list[Any]:
        """Return ``[ref]`` so the caller receives the reference, not a copy."""
        return [self._refs[key]]


class NaiveHeap:
    """A raw actor holding values in its heap and returning them by value on every hit."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self._values = {sample.key: sample.build() for sample in samples}

    def get(self, key: str) -> Value:
        """Return the value itself; Ray copies it into the object store each call."""
        return self._values[key]


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time hits of every sample through raycache and every baseline, interleaved."""
    samples = (*TABLES, FRAME)
    values = {sample: sample.build() for sample in samples}
    expected = {sample.series(c): value for sample, value in values.items() for c in CONTENDERS}
    with hit_paths(cache, values) as fns:
        seconds = {name: _checked_seconds(name, fn, expected[name]) for name, fn in fns.items()}
        calls = calls_within(seconds, budget=0.05 if quick else 0.5, most=5 if quick else 20)
        rounds = 2 if quick else 8
        # The check above called every path, so each is warm already.
        timings = interleave(fns, rounds=rounds, calls=calls, warmup=0)
    ours, base = timings[HUNDRED_MB.series(RAYCACHE)], timings[HUNDRED_MB.series(RAW)]
    return _measurement(timings, round_ratios(ours, base, rounds))


@contextmanager
def hit_paths(
    cache: raycache.Cache, values: Mapping[Sample, Value]
) -> Iterator[dict[str, Callable[[], Value]]]:
    """Store every value with every contender; yield each hit path by series name."""
    samples = list(values)
    raw: Any = ray.remote(RawRefs).options(num_cpus=0).remote(samples)
    naive: Any = ray.remote(NaiveHeap).options(num_cpus=0).remote(samples)
    try:
        with running_stores() as stores:
            fns: dict[str, Callable[[], Value]] = {}
            for sample, value in values.items():
                cache.put(sample.key, value)
                fns[sample.series(RAYCACHE)] = functools.partial(cache.get, sample.key)
                fns[sample.series(RAW)] = functools.partial(_get_through_ref, raw, sample.key)
                fns[sample.series(NAIVE)] = functools.partial(_get_by_value, naive, sample.key)
                fns |= _stored_as_ipc(stores, sample, value)
            yield fns
    finally:
        for sample in samples:
            cache.delete(sample.key)
        ray.kill(raw)
        ray.kill(naive)


def _stored_as_ipc(
    stores: Mapping[Baseline, Store], sample: Sample, value: Value
) -> dict[str, Callable[[], Value]]:
    """Store ``value`` in every byte store as Arrow IPC; return each store's hit path."""
    encoded = to_ipc(value)
    fns: dict[str, Callable[[], Value]] = {}
    for baseline, store in stores.items():
        store.set(sample.key, encoded)
        path = functools.partial(_get_ipc, store, sample.key, frame=sample.frame)
        fns[sample.series(ipc_contender(baseline.name))] = path
    return fns


def to_ipc(value: Value) -> bytes:
    """Return ``value`` as an Arrow IPC stream."""
    table = value if isinstance(value, pa.Table) else pa.Table.from_pandas(value)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    encoded: bytes = sink.getvalue().to_pybytes()
    return encoded


def _get_ipc(store: Store, key: str, *, frame: bool) -> Value:
    table = pa.ipc.open_stream(store.get(key)).read_all()
    return table.to_pandas() if frame else table


def _get_through_ref(actor: Any, key: str) -> Value:
    return ray.get(ray.get(actor.get.remote(key))[0])


def _get_by_value(actor: Any, key: str) -> Value:
    return ray.get(actor.get.remote(key))


def _checked_seconds(name: str, fn: Callable[[], Value], expected: Value) -> float:
    """Check that ``fn`` returns ``expected``; return how long one more call takes."""
    got = fn()
    assert type(got) is type(expected) and got.equals(expected), f"{name}: wrong value"
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _measurement(timings: dict[str, list[float]], ratios: list[float]) -> Measurement:
    s = {name: summarize(series) for name, series in timings.items()}
    rows = [_row(s, sample, contender) for sample in REPORTED for contender in CONTENDERS[1:]]
    raw = {"series": timings, "summaries": s, "round_p50_ratios": ratios}
    return Measurement(rows=rows, raw=raw, charts=[_size_chart(s)])


def _row(s: Mapping[str, Summary], sample: Sample, contender: str) -> Row:
    max_ratio = MAX_RATIOS.get((sample, contender))
    # A target under 1x is a speed-up, easier to read as one.
    speedup = None if max_ratio is None or max_ratio >= 1 else f">= {1 / max_ratio:.0f}x faster"
    return comparison(
        f"{sample.label} hit vs {contender}, p50",
        s[sample.series(RAYCACHE)],
        s.get(sample.series(contender)),
        contender,
        max_ratio=max_ratio,
        target=speedup,
    )


def _size_chart(s: Mapping[str, Summary]) -> Chart:
    series = {
        contender: [
            (float(sample.nbytes), s[sample.series(contender)].p50 * 1e3)
            for sample in TABLES
            if sample.series(contender) in s
        ]
        for contender in CONTENDERS
    }
    return Chart(
        filename="hit_latency_vs_size.png",
        series={name: points for name, points in series.items() if points},
        title="Hit latency against value size (Arrow tables, p50)",
        xlabel="value size (bytes)",
        ylabel="p50 hit latency (ms)",
        logx=True,
        logy=True,
    )
