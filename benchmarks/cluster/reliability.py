"""The reliability table: ``python -m benchmarks.cluster.reliability [--operations N]``.

Starts a three-node cluster on this machine, runs the checked workload of the reliability
tests under each fault in turn (shards killed, the router killed, resizes under load,
worker nodes lost, a leaseholder's driver killed mid-computation) against one cache, then
clears the cache and compares the object store with its usage before the cache existed.
Every client checks every value it reads, memoized ``.remote()`` callers included, whose
own ``ray.get`` must never raise; the table reports the slowest single call.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import ray
from ray.cluster_utils import Cluster

import raycache
from benchmarks.output.report import markdown_table
from benchmarks.output.results import record
from tests.helpers.chaos import (
    Outcome,
    driver_killed,
    node_losses,
    resizes,
    router_kills,
    shard_kills,
)
from tests.helpers.memory import object_store_bytes, settled_object_store_bytes

NODE: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 300 * 2**20}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster.reliability", description=__doc__
    )
    parser.add_argument("--operations", type=int, default=10_000, help="per fault scenario")
    return parser.parse_args(argv)


def start_cluster() -> Cluster:
    """Start a head and two worker nodes, and connect to them."""
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 2})
    for _ in range(2):
        cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level=logging.ERROR)
    return cluster


def run(cluster: Cluster, operations: int) -> tuple[list[Outcome], tuple[int, int, int]]:
    """Run every scenario on one cache; return the outcomes and the object store's usage.

    The usage is in bytes: before the cache existed, before ``clear()``, and after it.
    """
    baseline = object_store_bytes()
    cache = raycache.Cache("reliability", capacity="200MiB")
    try:
        outcomes = [
            shard_kills(cache, operations=operations),
            router_kills(cache, operations=operations),
            resizes(cache, operations=operations),
            node_losses(cache, cluster, operations=operations, **NODE),
            driver_killed(cache),
        ]
        before_clear = object_store_bytes()
        cache.clear()
        return outcomes, (baseline, before_clear, settled_object_store_bytes(baseline))
    finally:
        cache.shutdown()


def render(outcomes: list[Outcome], usage: tuple[int, int, int]) -> str:
    """Return the table of outcomes and the object store line."""
    headers = (
        "scenario",
        "faults injected",
        "operations",
        "exceptions surfaced",
        "wrong values",
        "hit ratio under faults",
        "hit ratio after",
        "slowest call",
    )
    rows = [
        (
            o.scenario,
            str(o.faults),
            f"{o.tally.operations:,}",
            str(len(o.tally.exceptions)),
            str(len(o.tally.wrong)),
            _ratio(o.hit_ratio_under_faults),
            _ratio(o.hit_ratio_after),
            f"{o.tally.worst_seconds * 1000:,.0f} ms",
        )
        for o in outcomes
    ]
    total = sum(o.tally.operations for o in outcomes)
    failures = sum(len(o.tally.exceptions) + len(o.tally.wrong) for o in outcomes)
    baseline, before_clear, after_clear = usage
    return "\n".join(
        [
            markdown_table(headers, rows),
            "",
            f"{total:,} operations, {failures} exceptions or wrong values",
            f"object store: {baseline:,} bytes before the cache, {before_clear:,} before "
            f"clear(), {after_clear:,} after",
        ]
    )


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios on a fresh local cluster and print the table."""
    args = parse_args(argv)
    started = time.perf_counter()
    cluster = start_cluster()
    try:
        outcomes, usage = run(cluster, args.operations)
    finally:
        ray.shutdown()
        cluster.shutdown()
    table = render(outcomes, usage)
    table += f"\n\n({time.perf_counter() - started:.0f} s on a 3-node local cluster)"
    print(table)
    command = f"python -m benchmarks.cluster.reliability --operations {args.operations}"
    print(f"recorded in {record('Reliability under faults', command, table)}")
    failed = any(o.tally.exceptions or o.tally.wrong for o in outcomes)
    return 1 if failed or usage[2] > usage[0] else 0


if __name__ == "__main__":
    raise SystemExit(main())
