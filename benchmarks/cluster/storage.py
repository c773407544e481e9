"""Reading a large DataFrame back from the durable tier, against joblib.Memory and Parquet.

``python -m benchmarks.cluster.storage [--quick]`` writes one mixed-dtype DataFrame (~200 MB;
~20 MB with ``--quick``) to a ``StorageTier`` in a temporary directory, to a
``joblib.Memory`` cache and to a Parquet file, then times reads back, p50 over a few runs
with every file in the page cache:

- the tier, as the memory-mapped Arrow table (``read(..., arrow=True)``): no copy;
- the tier, as a DataFrame (``to_pandas(split_blocks=True)``: numeric columns stay views);
- the tier, as a DataFrame from a tier that has not read the file before, which hashes
  the payload once to check it (the tier's first read of each file);
- ``joblib.Memory`` loads, plain and with ``mmap_mode="r"``, and ``pandas.read_parquet``.

Targets: at least 10x faster than joblib.Memory and than read_parquet, and at least as
fast as joblib's mmap mode.

Then the restart read, as :mod:`benchmarks.cluster.storage_restart` measures it: the first read
in a fresh process with its own Ray, with and without a storage key.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from benchmarks.cluster import storage_restart
from benchmarks.harness.datasets import make_mixed_frame
from benchmarks.output.report import (
    Measurement,
    Row,
    Summary,
    comparison,
    interleave,
    summarize,
    summary_table,
)
from raycache.core.keys import key_digest
from raycache.core.storage import StorageTier, parse_storage

FULL_BYTES = 200 * 10**6
QUICK_BYTES = 20 * 10**6
DIGEST = key_digest("benchmark frame")


def frame_of(nbytes: int) -> pd.DataFrame:
    """The function joblib.Memory caches: the benchmark's frame, by size."""
    return make_mixed_frame(nbytes)


def tier_in(root: Path) -> StorageTier:
    storage = parse_storage(root)
    assert storage is not None
    return StorageTier(storage, "bench")


def readers(root: Path, nbytes: int) -> dict[str, Callable[[], object]]:
    """Store the frame everywhere once; return a function per way of reading it back."""
    frame = frame_of(nbytes)
    tier = tier_in(root / "tier")
    assert tier.write(DIGEST, frame)
    plain = joblib.Memory(root / "joblib", verbose=0).cache(frame_of)
    mapped = joblib.Memory(root / "joblib", mmap_mode="r", verbose=0).cache(frame_of)
    plain(nbytes)
    parquet = root / "frame.parquet"
    frame.to_parquet(parquet)

    def tier_value(fresh: bool = False, arrow: bool = False) -> object:
        stored = (tier_in(root / "tier") if fresh else tier).read(DIGEST, arrow=arrow)
        assert stored is not None
        return stored.value

    return {
        "arrow": lambda: tier_value(arrow=True),
        "frame": tier_value,
        "first_read": lambda: tier_value(fresh=True),
        "joblib": lambda: plain(nbytes),
        "joblib_mmap": lambda: mapped(nbytes),
        "parquet": lambda: pd.read_parquet(parquet),
    }


def measure(nbytes: int, runs: int) -> dict[str, Summary]:
    """Return the read times of every reader, warmed once, in interleaved rounds."""
    with tempfile.TemporaryDirectory(prefix="raycache-bench-") as directory:
        samples = interleave(readers(Path(directory), nbytes), rounds=runs, calls=1, warmup=1)
        return {name: summarize(times) for name, times in samples.items()}


# Each baseline: its label, and the ratio to it (ours / theirs) the tier must keep under.
TARGETS = {
    "joblib": ("joblib.Memory", 0.1, ">= 10x faster"),
    "joblib_mmap": ("joblib mmap_mode='r'", 1.0, "at least as fast"),
    "parquet": ("read_parquet", 0.1, ">= 10x faster"),
}


def rows_of(timed: dict[str, Summary]) -> list[Row]:
    """Return the rows comparing the tier's reads with each baseline, with verdicts."""
    rows = [
        comparison(f"tier, {how} vs {label}", timed[ours], timed[base], label,
                   max_ratio=ratio, target=target)
        for ours, how in (("arrow", "Arrow (mmap)"), ("frame", "DataFrame"))
        for base, (label, ratio, target) in TARGETS.items()
    ]  # fmt: skip
    first = timed["first_read"]
    rows.append(
        comparison(
            "tier, DataFrame, first read (checksum)", first, timed["joblib"], "joblib.Memory"
        )
    )
    return rows


def report(rows: list[Row], nbytes: int) -> str:
    """Return the markdown table of the measurements, with the targets' verdicts."""
    title = f"Reading a {nbytes / 1e6:.0f} MB mixed-dtype DataFrame back (p50, page cache warm)"
    return f"### {title}\n\n{summary_table(rows)}"


def measure_all(nbytes: int, quick: bool) -> list[Row]:
    """Return the rows of the repeated reads, then those of the restart reads."""
    repeated = rows_of(measure(nbytes, runs=3 if quick else 7))
    restart = storage_restart.measure(nbytes, runs=2 if quick else 5)
    return repeated + storage_restart.rows_of(restart)


def run(cache: object, *, quick: bool) -> Measurement:
    """Measure the durable tier's reads for ``make bench``; ``cache`` is not used."""
    nbytes = QUICK_BYTES if quick else FULL_BYTES
    raw: dict[str, Any] = {"summaries": {}, "round_p50_ratios": [], "bytes": nbytes}
    return Measurement(rows=measure_all(nbytes, quick), raw=raw)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its markdown table."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster.storage", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="a ~20 MB frame, 3 runs")
    args = parser.parse_args(argv)
    nbytes = QUICK_BYTES if args.quick else FULL_BYTES
    print(report(measure_all(nbytes, args.quick), nbytes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
