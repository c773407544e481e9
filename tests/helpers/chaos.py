"""Reliability scenarios: the workload under injected faults, with what every client saw.

The tests assert on these outcomes; ``python -m benchmarks.cluster.reliability`` prints them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray.cluster_utils import Cluster

import raycache
from tests.helpers.cli import last_report
from tests.helpers.faults import (
    NodeDrainer,
    NodeSwapper,
    Resizer,
    RouterKiller,
    ShardKiller,
    wait_until_serving,
)
from tests.helpers.workload import (
    PlainTasks,
    Tally,
    key_of,
    run_clients,
    truth,
    while_running,
)

RECOVERY_OPERATIONS = 2_000
PACE = 250.0
"""Operations per second of all clients while faults are injected: paced, so that a run
lasts long enough for its faults however fast the machine is."""

REPOSITORY = Path(__file__).resolve().parents[2]
GATE = "reliability-gate"
GATE_NAMESPACE = "raycache-tests"
BALLAST_ELEMENTS = 50_000
DRIVER_LEASE_S = 2.0  # a killed driver's lease passes on this soon
"""A computation's argument above the inline limit, so its caller's driver owns it."""


@dataclass
class Outcome:
    """What one scenario did and what its clients saw."""

    scenario: str
    faults: int
    tally: Tally
    hit_ratio_under_faults: float | None = None
    hit_ratio_after: float | None = None
    plain_task_slowest: float | None = None
    """The slowest round trip of a plain Ray task meanwhile (see :class:`PlainTasks`)."""


def under_faults(
    scenario: str,
    cache: raycache.Cache,
    fault: Callable[[], bool],
    *,
    every: float,
    operations: int = 10_000,
    clients: int = 4,
    seed: int = 0,
) -> Outcome:
    """Run the paced workload while injecting ``fault``, then again once every shard is back.

    The hit ratio after is that of the last half of the run after: the first half
    refills what the faults lost, which depends on how many the machine's pace let in.
    """
    with PlainTasks() as plain:
        tally, faults = while_running(
            lambda: run_clients(cache, clients, operations, seed, rate=PACE), fault, every
        )
    wait_until_serving(cache)
    refill = run_clients(cache, clients, RECOVERY_OPERATIONS // 2, seed + clients)
    rest = RECOVERY_OPERATIONS - RECOVERY_OPERATIONS // 2
    after = run_clients(cache, clients, rest, seed + 2 * clients)
    total = tally.add(refill).add(after)
    return Outcome(scenario, faults, total, tally.hit_ratio, after.hit_ratio, plain.slowest)


def shard_kills(cache: raycache.Cache, *, every: float = 5.0, operations: int = 10_000) -> Outcome:
    """Run the workload while killing a random shard every ``every`` seconds."""
    return under_faults(
        f"shard killed every {every:g} s",
        cache,
        ShardKiller(cache),
        every=every,
        operations=operations,
    )


def router_kills(cache: raycache.Cache, *, every: float = 5.0, operations: int = 10_000) -> Outcome:
    """Run the workload while killing the cache's router every ``every`` seconds."""
    return under_faults(
        f"router killed every {every:g} s",
        cache,
        RouterKiller(cache),
        every=every,
        operations=operations,
    )


def resizes(cache: raycache.Cache, *, every: float = 5.0, operations: int = 10_000) -> Outcome:
    """Run the workload while growing the cache by one shard and shrinking it back."""
    return under_faults(
        f"resized every {every:g} s (n → n+1 → n)",
        cache,
        Resizer(cache),
        every=every,
        operations=operations,
    )


def node_losses(
    cache: raycache.Cache,
    cluster: Cluster,
    *,
    every: float = 10.0,
    operations: int = 10_000,
    **node_args: Any,
) -> Outcome:
    """Run the workload while a worker node holding a shard is lost every ``every`` seconds.

    Each lost node is replaced by a fresh one started with ``node_args``.
    """
    swapper = NodeSwapper(cluster, cache, **node_args)
    scenario = f"worker node lost every {every:g} s"
    return under_faults(scenario, cache, swapper, every=every, operations=operations)


def node_drains(
    cache: raycache.Cache,
    cluster: Cluster,
    *,
    deadline_s: int = 15,
    operations: int = 10_000,
    **node_args: Any,
) -> Outcome:
    """Run the workload while worker nodes holding a shard are preempted, one at a time.

    Each is drained with a deadline of ``deadline_s``, removed at the deadline, and
    replaced by a fresh node started with ``node_args``.
    """
    drainer = NodeDrainer(cluster, cache, deadline_s, **node_args)
    scenario = f"worker node preempted ({deadline_s} s notice)"
    return under_faults(scenario, cache, drainer, every=5.0, operations=operations)


@ray.remote(num_cpus=0)
class Gate:
    """Holds a computation until the scenario has set up what it needs around it."""

    def __init__(self) -> None:
        self._open = False

    def open(self) -> None:
        """Let every waiting computation finish."""
        self._open = True

    def is_open(self) -> bool:
        """Return whether the gate is open."""
        return self._open


def gated_truth(index: int, ballast: np.ndarray) -> Any:
    """Return ``truth(index)`` once the gate opens; ``ballast`` only makes the call large."""
    gate = ray.get_actor(GATE, namespace=GATE_NAMESPACE)
    while not ray.get(gate.is_open.remote()):
        time.sleep(0.05)
    return truth(index)


def read_through_gate(cache: raycache.Cache, index: int) -> dict[str, Any]:
    """Load key ``index`` with :func:`gated_truth`; report the value's check or the error."""
    ballast = np.zeros(BALLAST_ELEMENTS)
    try:
        value = cache.get_or_compute(key_of(index), gated_truth, index, ballast)
    except Exception as error:  # what the scenario looks for: nothing may reach a caller
        return {"exception": repr(error)}
    return {"correct": bool(np.array_equal(value, truth(index)))}


def driver_killed(cache: raycache.Cache, index: int = 7) -> Outcome:
    """Kill a driver whose load of a key is in flight while two others wait on that key.

    Driver A holds the key's lease and computes in its own process; B and C wait on it;
    A is killed, so its lease expires and one of B and C takes it over; then the
    computation is let through. B and C must get the value, and among the living
    callers it is computed once: two leases in all, A's and the one taken over.
    """
    gate = Gate.options(name=GATE, namespace=GATE_NAMESPACE).remote()  # type: ignore[attr-defined]
    cache.delete(key_of(index))
    leases = _shard_counter(cache, "leases")
    merged = _shard_counter(cache, "merged")
    first = _start_driver(cache, index)
    _wait_for(lambda: _shard_counter(cache, "leases") > leases, "the computation to start")
    waiters = [_start_driver(cache, index) for _ in range(2)]
    _wait_for(lambda: _shard_counter(cache, "merged") >= merged + 2, "both waiters to join")
    first.kill()
    first.communicate()
    ray.get(gate.open.remote())
    reports = [_report_of(waiter) for waiter in waiters]
    ray.kill(gate)
    tally = Tally(operations=len(reports))
    for report in reports:
        if "exception" in report:
            tally.exceptions.append(report["exception"])
        elif not report["correct"]:
            tally.wrong.append(f"get_or_compute({index})")
    if _shard_counter(cache, "leases") != leases + 2:
        tally.wrong.append("the key was computed more than once among living callers")
    return Outcome("leaseholder's driver killed mid-computation", 1, tally)


def _start_driver(cache: raycache.Cache, index: int) -> subprocess.Popen[str]:
    address = ray.get_runtime_context().gcs_address
    args = [sys.executable, "-m", "tests.helpers.driver", address, cache.name, str(index)]
    env = dict(os.environ, RAYCACHE_LEASE_SECONDS=str(DRIVER_LEASE_S))
    return subprocess.Popen(
        args, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _report_of(driver: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = driver.communicate(timeout=120)
    if driver.returncode != 0:
        return {"exception": f"driver exited with {driver.returncode}: {err[-2000:]}"}
    return last_report(out)


def _shard_counter(cache: raycache.Cache, counter: str) -> int:
    return sum(int(row[counter]) for row in cache.stats()["shards"])


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.1)
