"""The demo with its durable tier: what writing costs a cold run, and what a second run saves.

Each round runs ``raycache demo`` three times, each in a process of its own that starts a
Ray of its own, as a user runs it:

- without storage (``--no-storage``);
- with storage into an empty directory: its cold pass also writes every result;
- again on that directory: its first pass is served from the files the run before left.

The first two alternate in order from round to round. The figures are whole first passes
(the demo's "cold" column): storage on against off, the price of the writes (target at
most 5% more), and the second run against the first (target at least 10x faster). The
second run's answer must equal the first's, and both the answer without storage.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import raycache
from benchmarks.output.report import (
    Measurement,
    comparison,
    distribution_table,
    summarize,
    summary_table,
)

ROWS, PARTITIONS, ROUNDS = 12_000_000, 12, 3
QUICK_ROWS, QUICK_PARTITIONS, QUICK_ROUNDS = 3_000_000, 6, 1
TARGET_OVERHEAD = 1.05
TARGET_SPEEDUP = 10.0

OFF, ON, SECOND = "demo cold: no storage", "demo cold: storage", "demo second run: first pass"


def run(cache: raycache.Cache | None, *, quick: bool) -> Measurement:
    """Run the demo with and without storage, twice over each directory; compare first passes.

    ``cache`` is not used: each demo starts a Ray and a cache of its own.
    """
    del cache
    rows, partitions, rounds = (
        (QUICK_ROWS, QUICK_PARTITIONS, QUICK_ROUNDS) if quick else (ROWS, PARTITIONS, ROUNDS)
    )
    samples: dict[str, list[float]] = {OFF: [], ON: [], SECOND: []}
    with tempfile.TemporaryDirectory(prefix="raycache-durable-demo-") as folder:
        for index in range(rounds):
            storage = os.path.join(folder, f"round-{index}")
            answers = _round(Path(folder), storage, rows, partitions, index, samples)
            if len(set(answers)) != 1:
                raise AssertionError("the demo's answer differs between runs")
            print(f"[durable_demo] round {index + 1}/{rounds}", file=sys.stderr)
    return _measurement(samples, rows)


def _round(
    folder: Path,
    storage: str,
    rows: int,
    partitions: int,
    index: int,
    samples: dict[str, list[float]],
) -> list[str]:
    order = [(OFF, None), (ON, storage)]
    answers = []
    for name, where in order if index % 2 == 0 else order[::-1]:
        report = _demo(folder, rows, partitions, where)
        samples[name].append(sum(report["seconds"]["cold"].values()))
        answers.append(report["answer"])
    second = _demo(folder, rows, partitions, storage)
    samples[SECOND].append(sum(second["seconds"]["cold"].values()))
    return [*answers, second["answer"]]


def _demo(folder: Path, rows: int, partitions: int, storage: str | None) -> dict[str, Any]:
    """Run ``raycache demo`` in a new process; return its report."""
    report = folder / "report.json"
    where = ["--no-storage"] if storage is None else ["--storage", storage]
    command = [sys.executable, "-m", "raycache.cli", "demo", "--chart", "", *where]
    sizes = ["--rows", str(rows), "--partitions", str(partitions), "--report", str(report)]
    subprocess.run([*command, *sizes], check=True, cwd=folder, stdout=subprocess.DEVNULL)
    loaded: dict[str, Any] = json.loads(report.read_text())
    return loaded


def _measurement(samples: dict[str, list[float]], rows: int) -> Measurement:
    s = {name: summarize(series) for name, series in samples.items()}
    label = f"demo ({rows / 1e6:.0f} M trips), first pass"
    return Measurement(
        rows=[
            comparison(
                f"{label}, storage on vs off",
                s[ON],
                s[OFF],
                "no storage",
                max_ratio=TARGET_OVERHEAD,
            ),
            comparison(
                f"{label}, second run vs first",
                s[SECOND],
                s[ON],
                "first run, cold",
                max_ratio=1 / TARGET_SPEEDUP,
                target=f">= {TARGET_SPEEDUP:.0f}x faster",
            ),
        ],
        raw={
            "series": samples,
            "summaries": s,
            "round_p50_ratios": [
                on / off for on, off in zip(samples[ON], samples[OFF], strict=True)
            ],
        },
    )


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone and print its tables."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster.durable_demo", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="3 M trips, one round")
    result = run(None, quick=parser.parse_args(argv).quick)
    print(summary_table(result.rows))
    print()
    print(distribution_table(result.raw["summaries"]))
    ratios = ", ".join(f"{ratio:.3f}" for ratio in result.raw["round_p50_ratios"])
    print(f"\nstorage on / off, round by round: {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
