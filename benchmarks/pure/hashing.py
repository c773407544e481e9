"""Content hashing: ``hash_value`` on a 200 MB DataFrame, in GB/s, against baselines.

Frames: ``mixed`` (int64, float64, float32, bool and datetime64 columns plus one short
str column, the pandas 3 default, Arrow-backed), ``categorical`` (the same with a
categorical column instead) and ``numeric`` (numeric columns only). Baselines:
``joblib.hash`` if joblib is installed (it is not a raycache dependency), and
``pd.util.hash_pandas_object`` with its uint64 output hashed by xxh3. ``xxh3 ceiling``
is xxh3-128 over the numeric columns' buffers alone, the most any hasher could reach.

Run alone with ``python -m benchmarks.pure.hashing [--quick]``; no Ray is needed.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xxhash

from benchmarks.output.report import Measurement, Row, fmt_seconds, verdict
from raycache.core.hashing import hash_value

FRAME_BYTES = 200 * 10**6
TARGET_GBPS = 5.0
NUMERIC_ROW_BYTES = 8 + 8 + 4 + 1 + 8  # int64, float64, float32, bool, datetime64


def make_frame(kind: str, nbytes: int = FRAME_BYTES) -> pd.DataFrame:
    """Return a frame of about ``nbytes`` bytes: ``numeric``, ``mixed`` or ``categorical``."""
    extra = {"numeric": 0, "mixed": 8 + 3, "categorical": 1}[kind]  # offsets + 3 chars
    rows = nbytes // (NUMERIC_ROW_BYTES + extra)
    rng = np.random.default_rng(0)
    columns: dict[str, Any] = {
        "id": np.arange(rows, dtype=np.int64),
        "price": rng.random(rows),
        "ratio": rng.random(rows, dtype=np.float32),
        "flag": rng.random(rows) < 0.5,
        "at": np.datetime64("2024-01-01", "ns") + np.arange(rows).astype("m8[s]"),
    }
    labels = np.array(["nyc", "sfo", "lhr", "cdg", "hnd", "sin", "syd", "gru"])
    if kind == "mixed":
        columns["city"] = labels[rng.integers(0, len(labels), rows)]
    elif kind == "categorical":
        columns["city"] = pd.Categorical.from_codes(rng.integers(0, len(labels), rows), labels)
    return pd.DataFrame(columns)


def frame_bytes(frame: pd.DataFrame) -> int:
    """Return the bytes of a frame's values and index."""
    return int(frame.memory_usage(index=True, deep=True).sum())


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Return the fastest of ``repeats`` timed calls (after one untimed warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def xxh3_ceiling(frame: pd.DataFrame) -> bytes:
    """Hash the numeric columns' buffers with xxh3 and nothing else."""
    state = xxhash.xxh3_128()
    for _, column in frame.items():
        if isinstance(column.dtype, np.dtype):
            state.update(column.to_numpy().view(np.uint8).data)
    return state.digest()


def hash_pandas_object(frame: pd.DataFrame) -> bytes:
    """The pandas baseline: per-row uint64 hashes, then xxh3 of those."""
    return xxhash.xxh3_128_digest(pd.util.hash_pandas_object(frame).to_numpy().data)


def run(quick: bool) -> dict[str, Any]:
    """Time hash_value and the baselines on each frame; return GB/s and notes."""
    repeats = 2 if quick else 5
    baseline_repeats = 1 if quick else 2
    try:
        import joblib  # type: ignore[import-not-found]
    except ImportError:
        joblib = None
    results: dict[str, Any] = {"target_gbps": TARGET_GBPS, "frames": {}, "notes": []}
    if joblib is None:
        results["notes"].append("joblib is not installed: joblib.hash skipped")
    for kind in ("mixed", "categorical", "numeric"):
        frame = make_frame(kind)
        size = frame_bytes(frame)
        fns: dict[str, tuple[Callable[[], object], int]] = {
            "hash_value": (functools.partial(hash_value, frame), repeats),
            "xxh3 ceiling (numeric buffers)": (functools.partial(xxh3_ceiling, frame), repeats),
            "hash_pandas_object + xxh3": (
                functools.partial(hash_pandas_object, frame),
                baseline_repeats,
            ),
        }
        if joblib is not None:
            fns["joblib.hash"] = (functools.partial(joblib.hash, frame), baseline_repeats)
        row: dict[str, Any] = {"bytes": size}
        for name, (fn, n) in fns.items():
            seconds = best_seconds(fn, n)
            row[name] = {"seconds": round(seconds, 4), "gbps": round(size / seconds / 1e9, 2)}
        results["frames"][kind] = row
        del frame
    return results


def measure(cache: object, *, quick: bool) -> Measurement:
    """Run :func:`run` and report its headline rows for ``make bench``."""
    results = run(quick)
    mixed = results["frames"]["mixed"]
    ours = mixed["hash_value"]
    rows = [
        Row(
            what=f"argument hashing, {mixed['bytes'] / 1e6:.0f} MB mixed DataFrame",
            ours=f"{ours['gbps']:.2f} GB/s",
            base="-",
            ratio=ours["gbps"] / TARGET_GBPS,
            target=f">= {TARGET_GBPS:g} GB/s",
            verdict=verdict(ours["gbps"] >= TARGET_GBPS),
            higher_is_better=True,
        )
    ]
    joblib_figures = mixed.get("joblib.hash")
    if joblib_figures is not None:
        ratio = ours["seconds"] / joblib_figures["seconds"]
        rows.append(
            Row(
                what="argument hashing vs joblib.hash (time)",
                ours=fmt_seconds(ours["seconds"]),
                base=f"{fmt_seconds(joblib_figures['seconds'])} ({joblib_figures['gbps']} GB/s)",
                ratio=ratio,
                target="<= 0.1x (10x faster)",
                verdict=verdict(ratio <= 0.1),
            )
        )
    return Measurement(rows=rows, raw={"summaries": {}, "round_p50_ratios": [], **results})


def main() -> None:
    """Print the results as a small table and as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pure.hashing", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    results = run(quick=parser.parse_args().quick)
    for kind, row in results["frames"].items():
        print(f"{kind} frame, {row['bytes'] / 1e6:.0f} MB")
        for name, figures in row.items():
            if isinstance(figures, dict):
                print(f"  {name:32s} {figures['gbps']:6.2f} GB/s  ({figures['seconds']:.3f} s)")
    for note in results["notes"]:
        print(f"note: {note}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
