"""Entry point of ``make bench``: ``python -m benchmarks [--quick] [--out DIR]``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import ray

import raycache
from benchmarks.cluster import (
    async_throughput,
    data_pipeline,
    durable_demo,
    large_values,
    latency,
    memoize,
    near_cache,
    pipeline,
    storage,
    throughput,
)
from benchmarks.harness.servers import binary_version
from benchmarks.output import guard
from benchmarks.output.report import Measurement, distribution_table, markdown_table, summary_table
from benchmarks.output.results import memory_gb, publish
from benchmarks.pure import (
    hashing,
    ring_scale,
    store_scale,
)
from benchmarks.simulator import (
    policies,
)

MODULES: dict[str, Callable[..., Measurement]] = {
    "latency": latency.run,
    "large_values": large_values.run,
    "throughput": throughput.run,
    "async_throughput": async_throughput.run,
    "memoize": memoize.run,
    "near_cache": near_cache.run,
    "hashing": hashing.measure,
    "pipeline": pipeline.run,
    "data_pipeline": data_pipeline.run,
    "policies": policies.run,
    "ring_scale": ring_scale.run,
    "store_scale": store_scale.run,
    "storage": storage.run,
    "durable_demo": durable_demo.run,
}
CACHE_CAPACITY = "1GiB"
OBJECT_STORE_BYTES = 8 * 1024**3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"), help="output dir")
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail when a ratio is worse than benchmarks/baseline.json by more than the margin",
    )
    parser.add_argument(
        "--save-baseline",
        action="store_true",
        help="write this run's ratios to benchmarks/baseline.json, to commit",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark on a local Ray, print the report and write it to ``--out``."""
    args = parse_args(argv)
    started = time.perf_counter()
    # address="local" starts a private instance even if another Ray runs on this machine.
    ray.init(
        address="local",
        num_cpus=2,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        logging_level="ERROR",
    )
    try:
        results = run_all(quick=args.quick)
        report = render(results)
        print(report)
        write(args.out, report, results, quick=args.quick, seconds=time.perf_counter() - started)
        for path in publish(args.out, report, results, environment(), quick=args.quick):
            print(f"wrote {path}", file=sys.stderr)
        if args.save_baseline:
            rows = [row for result in results.values() for row in result.rows]
            print(f"wrote {guard.save(rows, quick=args.quick)}", file=sys.stderr)
        return check(results, quick=args.quick) if args.check else 0
    finally:
        ray.shutdown()


def check(results: dict[str, Measurement], *, quick: bool) -> int:
    """Compare the ratios with the committed baseline; return 1 if one regressed twice.

    The modules of rows that regressed run once more, and only rows that regress again
    fail the check.
    """
    baseline = guard.load()
    if not baseline:
        print("no benchmarks/baseline.json: nothing to check against", file=sys.stderr)
        return 1
    suspects = {
        module: guard.regressions(result.rows, baseline) for module, result in results.items()
    }
    again = run_all(quick=quick, only=[module for module, found in suspects.items() if found])
    failed = [
        regression
        for result in again.values()
        for regression in guard.regressions(result.rows, baseline)
        if any(regression.what == first.what for found in suspects.values() for first in found)
    ]
    for regression in failed:
        print(f"REGRESSION {regression}", file=sys.stderr)
    checked = sum(1 for r in results.values() for row in r.rows if row.what in baseline)
    print(f"speed check: {checked} ratios against the baseline, {len(failed)} regressed",
          file=sys.stderr)  # fmt: skip
    return 1 if failed else 0


def run_all(*, quick: bool, only: list[str] | None = None) -> dict[str, Measurement]:
    """Run every module (or those ``only`` names) against one fresh cache, then shut it down."""
    if only == []:
        return {}
    name = f"bench-{uuid.uuid4().hex[:12]}"
    cache = raycache.Cache(name, shards=2, capacity=CACHE_CAPACITY)
    results = {}
    try:
        for module, run in MODULES.items():
            if only is not None and module not in only:
                continue
            began = time.perf_counter()
            results[module] = run(cache, quick=quick)
            print(f"[{module}] {time.perf_counter() - began:.1f} s", file=sys.stderr)
    finally:
        cache.shutdown()
    return results


def render(results: dict[str, Measurement]) -> str:
    """Return the markdown report: the headline table, every series' percentiles, extras."""
    rows = [row for result in results.values() for row in result.rows]
    series = {k: v for result in results.values() for k, v in result.raw["summaries"].items()}
    return "\n\n".join(
        [
            "## raycache vs baselines (p50 unless stated; ratio = raycache / baseline)",
            summary_table(rows),
            "## Distributions",
            distribution_table(series),
            "## Noise: p50 ratio of each interleaved round (headline pair)",
            spread_table(results),
            # A module may add whole sections of its own, such as a table too wide for a row.
            *(section for result in results.values() for section in result.raw.get("sections", ())),
        ]
    )


def spread_table(results: dict[str, Measurement]) -> str:
    """Return the median, min and max of each module's per-round p50 ratios."""
    cells = []
    for module, result in results.items():
        ratios = result.raw["round_p50_ratios"]
        if not ratios:
            continue
        spread = f"{min(ratios):.2f}x to {max(ratios):.2f}x"
        cells.append((module, str(len(ratios)), f"{statistics.median(ratios):.2f}x", spread))
    return markdown_table(("module", "rounds", "median", "range"), cells)


def write(
    out: Path, report: str, results: dict[str, Measurement], *, quick: bool, seconds: float
) -> None:
    """Write ``bench.md`` and ``bench.json`` (every figure, in seconds) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.md").write_text(report + "\n", encoding="utf-8")
    document = {
        "environment": environment(),
        "quick": quick,
        "wall_seconds": round(seconds, 1),
        "results": {module: result.raw for module, result in results.items()},
    }
    with (out / "bench.json").open("w", encoding="utf-8") as stream:
        json.dump(document, stream, indent=1, default=_jsonable)
        stream.write("\n")
    print(f"\nwrote {out / 'bench.md'} and {out / 'bench.json'}", file=sys.stderr)


def environment() -> dict[str, Any]:
    """Return the versions and machine facts a reader needs to compare runs."""
    return {
        "raycache": raycache.__version__,
        "ray": ray.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count(),
        "memory_gb": memory_gb(),
        "redis_server": binary_version("redis-server") or "not installed",
        "memcached": binary_version("memcached") or "not installed",
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _jsonable(value: object) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


if __name__ == "__main__":
    sys.exit(main())
