"""The reliability table: ``python -m benchmarks.cluster.reliability [--operations N]``.

Starts a three-node cluster on this machine, runs the checked workload of the reliability
tests under each fault in turn (shards killed, the router killed, resizes under load,
worker nodes lost, worker nodes preempted with a drain, a leaseholder's driver killed
mid-computation) against one cache, then clears the cache and compares the object store
with its usage before the cache existed. Every client checks every value it reads,
memoized ``.remote()`` callers included, whose own ``ray.get`` must never raise; the
table reports the slowest single read, write and computation, and beside them the
slowest plain Ray task run meanwhile, the floor a computation's wait stands on. A second
table measures one drain alone: what it kept, and how fast it moved.
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
    node_drains,
    node_losses,
    resizes,
    router_kills,
    shard_kills,
)
from tests.helpers.evacuation import Evacuation, measure_evacuation
from tests.helpers.memory import object_store_bytes, settled_object_store_bytes
from tests.helpers.workload import COMPUTATIONS, READS, WRITES

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


Usage = tuple[int, int, int]
"""The object store's bytes: before the cache existed, before ``clear()``, and after it."""


def run(cluster: Cluster, operations: int) -> tuple[list[Outcome], Evacuation, Usage]:
    """Run every scenario on one cache; return the outcomes, the drain's, and the usage."""
    baseline = object_store_bytes()
    cache = raycache.Cache("reliability", capacity="200MiB")
    try:
        outcomes = [
            shard_kills(cache, operations=operations),
            router_kills(cache, operations=operations),
            resizes(cache, operations=operations),
            node_losses(cache, cluster, operations=operations, **NODE),
            node_drains(cache, cluster, operations=operations, **NODE),
            driver_killed(cache),
        ]
        evacuation = measure_evacuation(cache, cluster, **NODE)
        before_clear = object_store_bytes()
        cache.clear()
        usage = (baseline, before_clear, settled_object_store_bytes(baseline))
        return outcomes, evacuation, usage
    finally:
        cache.shutdown()


def render(outcomes: list[Outcome], evacuation: Evacuation, usage: Usage) -> str:
    """Return the table of outcomes, the drain's table and the object store line."""
    headers = (
        "scenario",
        "faults injected",
        "operations",
        "exceptions surfaced",
        "wrong values",
        "hit ratio under faults",
        "hit ratio after",
        "slowest read",
        "slowest write",
        "slowest computation",
        "plain Ray task, slowest",
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
            _ms(o.tally.slowest_of(READS)),
            _ms(o.tally.slowest_of(WRITES)),
            _ms(o.tally.slowest_of(COMPUTATIONS)),
            "—" if o.plain_task_slowest is None else _ms(o.plain_task_slowest),
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
            "",
            render_evacuation(evacuation),
        ]
    )


def render_evacuation(e: Evacuation) -> str:
    """Return one drain's table: entries kept, bytes moved, time per GB, slowest read."""
    headers = (
        "drained node",
        "small entries kept",
        "large entries kept",
        "bytes moved",
        "move took",
        "per GB",
        "slowest read",
        "wrong values",
    )
    row = (
        "preempted, 30 s notice",
        f"{e.small_kept:,} of {e.small:,}",
        f"{e.large_kept} of {e.large} (2 MiB)",
        f"{e.bytes_moved / 2**20:,.0f} MiB",
        f"{e.seconds:.1f} s",
        f"{e.seconds_per_gb:.1f} s",
        _ms(e.slowest_read),
        str(e.wrong),
    )
    return markdown_table(headers, [row])


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios on a fresh local cluster and print the table."""
    args = parse_args(argv)
    started = time.perf_counter()
    cluster = start_cluster()
    try:
        outcomes, evacuation, usage = run(cluster, args.operations)
    finally:
        ray.shutdown()
        cluster.shutdown()
    table = render(outcomes, evacuation, usage)
    table += f"\n\n({time.perf_counter() - started:.0f} s on a 3-node local cluster)"
    print(table)
    command = f"python -m benchmarks.cluster.reliability --operations {args.operations}"
    print(f"recorded in {record('Reliability under faults', command, table)}")
    failed = any(o.tally.exceptions or o.tally.wrong for o in outcomes) or evacuation.wrong > 0
    return 1 if failed or usage[2] > usage[0] else 0


if __name__ == "__main__":
    raise SystemExit(main())
