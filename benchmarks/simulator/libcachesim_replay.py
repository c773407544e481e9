"""Replay a trace through libCacheSim's published eviction policies.

libCacheSim (``pip install libcachesim``, in the ``bench`` extra) is the cache
simulator behind the S3-FIFO and SIEVE papers; its C implementations are the
reference the raycache policies are measured against. A trace is written once to a
temporary file in libCacheSim's ``oracleGeneral`` binary format and replayed by its
C reader, so a replay costs milliseconds. libCacheSim counts hits as the raycache
benchmark does: every request counts, first ones included; a miss inserts the key
(unless the policy declines it); sizes are bytes and the capacity is a byte budget.

One deviation from libCacheSim's defaults: W-TinyLFU's admission window is 1% of the
cache, and a window smaller than one object admits nothing (a 0.0 hit ratio on small
unit-size caches), so the window is raised to hold at least one object of the trace's
mean size, as Caffeine's window always holds one entry. LIRS is left as published: its
HIR queue is 1% of the cache, so on the varied-size trace at small caches it refuses the
larger objects (libCacheSim warns "object size too large" on stderr) and trails LRU.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.simulator.traces import Trace

PREFIX = "lcs "
POLICY_NAMES = ("LRU", "ARC", "LIRS", "S3FIFO", "Sieve", "WTinyLFU")
"""The libCacheSim classes replayed, by their libCacheSim names."""
WTINYLFU_WINDOW = 0.01
HASHPOWER = 20
"""log2 of libCacheSim's hash-table buckets: ample for the benchmark's key counts."""

# libCacheSim's oracleGeneral record: time, object id, size, next access (-1: unknown).
ORACLE_GENERAL = np.dtype([("time", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])


def available() -> bool:
    """Return whether libCacheSim is installed."""
    return importlib.util.find_spec("libcachesim") is not None


def column(name: str) -> str:
    """Return the report column of the libCacheSim policy ``name``, such as ``"lcs S3FIFO"``."""
    return PREFIX + name


def columns() -> list[str]:
    """Return the report columns of every libCacheSim policy, or none if it is missing."""
    return [column(name) for name in POLICY_NAMES] if available() else []


def write_oracle_general(trace: Trace, path: Path) -> None:
    """Write ``trace`` to ``path`` as libCacheSim's oracleGeneral binary trace."""
    records = np.zeros(len(trace), dtype=ORACLE_GENERAL)
    records["time"] = np.arange(len(trace))
    records["id"] = trace.keys + 1  # libCacheSim may treat id 0 as "no object"
    records["size"] = trace.sizes
    records["next"] = -1
    records.tofile(path)


@contextmanager
def reader_for(trace: Trace) -> Iterator[Any]:
    """Yield a libCacheSim reader over ``trace``, backed by a temporary oracleGeneral file."""
    import libcachesim

    with tempfile.TemporaryDirectory(prefix="raycache-lcs-") as folder:
        path = Path(folder) / "trace.oracleGeneral.bin"
        write_oracle_general(trace, path)
        yield libcachesim.TraceReader(str(path), libcachesim.TraceType.ORACLE_GENERAL_TRACE)


def make_cache(name: str, capacity: int, mean_size: float) -> Any:
    """Return libCacheSim's policy ``name`` with ``capacity`` bytes."""
    import libcachesim

    cls: Callable[..., Any] = getattr(libcachesim, name)
    if name == "WTinyLFU":
        window = min(0.5, max(WTINYLFU_WINDOW, mean_size / capacity))
        return cls(capacity, hashpower=HASHPOWER, window_size=window)
    return cls(capacity, hashpower=HASHPOWER)


def mean_key_size(trace: Trace) -> float:
    """Return the mean size of the trace's distinct keys."""
    return trace.distinct_bytes() / len(np.unique(trace.keys))


def hit_ratios(trace: Trace, capacities: list[int]) -> list[dict[str, float]]:
    """Return, per capacity in bytes, the hit ratio of every libCacheSim policy on ``trace``.

    Empty dicts if libCacheSim is not installed.
    """
    if not available():
        return [{} for _ in capacities]
    mean_size = mean_key_size(trace)
    with reader_for(trace) as reader:
        return [
            {
                column(name): 1 - make_cache(name, capacity, mean_size).process_trace(reader)[0]
                for name in POLICY_NAMES
            }
            for capacity in capacities
        ]
