"""A mixed cache workload whose every answer is checked against its ground truth.

Each key ever holds one value, ``truth(index)``, whichever way it got there (``put``,
``put_many``, ``get_or_compute`` or a memoized call), so any value a client reads back
can be verified on the spot. The reliability tests and ``python -m benchmarks.cluster.reliability``
both drive the cache with this module.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

import raycache

KEYS = 200
LARGE_EVERY = 16
"""Every 16th key holds an array above Ray's inline limit, so it lives in the object store."""

LARGE_ELEMENTS = 20_000
BATCH = 8


def truth(index: int) -> Any:
    """Return the only value that key ``index`` may ever hold."""
    if index % LARGE_EVERY == 0:
        return np.arange(LARGE_ELEMENTS, dtype=np.int64) * index
    return f"value-{index}-" + "x" * (index % 64)


def key_of(index: int) -> tuple[str, int]:
    """Return the cache key of ``index``."""
    return ("item", index)


def is_truth(index: int, value: Any) -> bool:
    """Return whether ``value`` is what key ``index`` holds."""
    expected = truth(index)
    if isinstance(expected, np.ndarray):
        return isinstance(value, np.ndarray) and np.array_equal(value, expected)
    return bool(value == expected)


def memoized_truth(index: int) -> Any:
    """The function the workload memoizes: the truth of ``index``, under its own keys."""
    return truth(index)


@ray.remote(num_cpus=0)
def remote_truth(index: int) -> Any:
    """The task the workload memoizes; its callers ``ray.get`` the reference themselves."""
    return truth(index)


READS = ("get", "get_many", "contains")
WRITES = ("put", "put_many", "delete")
COMPUTATIONS = ("get_or_compute", "memoized_call", "memoized_remote_call")
"""The workload's operations by kind, as :attr:`Tally.slowest` names them. A computation
may run a task (a memoized ``.remote()`` counts its caller's ``ray.get`` too), so it
waits for Ray to schedule one as well as for the cache."""


@dataclass
class Tally:
    """What one or more clients saw: operations, get hits, exceptions and wrong values."""

    operations: int = 0
    lookups: int = 0
    hits: int = 0
    exceptions: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    slowest: dict[str, float] = field(default_factory=dict)
    """The longest each kind of operation took, by its name."""

    @property
    def hit_ratio(self) -> float:
        """Return the share of looked-up keys that were found."""
        return self.hits / self.lookups if self.lookups else 0.0

    def slowest_of(self, kinds: tuple[str, ...]) -> float:
        """Return the longest any operation of ``kinds`` took."""
        return max((self.slowest.get(kind, 0.0) for kind in kinds), default=0.0)

    def note(self, kind: str, seconds: float) -> None:
        """Count how long one operation of ``kind`` took."""
        self.slowest[kind] = max(self.slowest.get(kind, 0.0), seconds)

    def add(self, other: Tally) -> Tally:
        """Return the sum of this tally and ``other``."""
        return Tally(
            self.operations + other.operations,
            self.lookups + other.lookups,
            self.hits + other.hits,
            self.exceptions + other.exceptions,
            self.wrong + other.wrong,
            {
                kind: max(self.slowest.get(kind, 0.0), other.slowest.get(kind, 0.0))
                for kind in self.slowest.keys() | other.slowest.keys()
            },
        )


class Client:
    """One client of the workload: random operations on one cache, each answer checked."""

    def __init__(self, cache: raycache.Cache, seed: int) -> None:
        self._cache = cache
        self._rng = random.Random(seed)
        self._memoized = raycache.memoize(cache=cache)(memoized_truth)
        self._memoized_remote = raycache.memoize(cache=cache)(remote_truth)
        self._operations: list[tuple[int, Callable[[Tally], None]]] = [
            (35, self._get),
            (15, self._put),
            (10, self._get_many),
            (5, self._put_many),
            (15, self._get_or_compute),
            (15, self._memoized_call),
            (10, self._memoized_remote_call),
            (3, self._contains),
            (2, self._delete),
        ]

    def run(self, operations: int, *, rate: float | None = None) -> Tally:
        """Run ``operations`` random operations, at most ``rate`` per second if given."""
        tally = Tally()
        weights = [weight for weight, _ in self._operations]
        chosen = self._rng.choices([op for _, op in self._operations], weights, k=operations)
        started = time.monotonic()
        for done, operation in enumerate(chosen):
            if rate is not None:
                time.sleep(max(0.0, started + done / rate - time.monotonic()))
            began = time.monotonic()
            try:
                operation(tally)
            except Exception as error:  # the contract under test: nothing reaches the user
                tally.exceptions.append(f"{operation.__name__}: {error!r}")
            tally.note(operation.__name__.lstrip("_"), time.monotonic() - began)
            tally.operations += 1
        return tally

    def _index(self) -> int:
        return self._rng.randrange(KEYS)

    def _check(self, tally: Tally, what: str, index: int, value: Any) -> None:
        if not is_truth(index, value):
            tally.wrong.append(f"{what}({index}) = {value!r:.80}")

    def _get(self, tally: Tally) -> None:
        index = self._index()
        value = self._cache.get(key_of(index))
        tally.lookups += 1
        if value is not None:
            tally.hits += 1
            self._check(tally, "get", index, value)

    def _put(self, tally: Tally) -> None:
        index = self._index()
        self._cache.put(key_of(index), truth(index))

    def _get_many(self, tally: Tally) -> None:
        indices = {self._index() for _ in range(BATCH)}
        found = self._cache.get_many([key_of(index) for index in indices])
        tally.lookups += len(indices)
        tally.hits += len(found)
        for (_, index), value in found.items():
            self._check(tally, "get_many", index, value)

    def _put_many(self, tally: Tally) -> None:
        indices = {self._index() for _ in range(BATCH)}
        self._cache.put_many({key_of(index): truth(index) for index in indices})

    def _get_or_compute(self, tally: Tally) -> None:
        index = self._index()
        self._check(
            tally, "get_or_compute", index, self._cache.get_or_compute(key_of(index), truth, index)
        )

    def _memoized_call(self, tally: Tally) -> None:
        index = self._index()
        self._check(tally, "memoized", index, self._memoized(index))

    def _memoized_remote_call(self, tally: Tally) -> None:
        # The user's own ray.get of a memoized reference: it too must never raise.
        index = self._index()
        self._check(
            tally, "memoized .remote()", index, ray.get(self._memoized_remote.remote(index))
        )

    def _contains(self, tally: Tally) -> None:
        bool(key_of(self._index()) in self._cache)

    def _delete(self, tally: Tally) -> None:
        self._cache.delete(key_of(self._index()))


@ray.remote(num_cpus=0)
class RemoteClient:
    """A client in its own worker process, as a task or another job would be."""

    def run(self, cache: raycache.Cache, seed: int, operations: int, rate: float | None) -> Tally:
        """Run ``operations`` operations on ``cache``; return what this client saw."""
        return Client(cache, seed).run(operations, rate=rate)


def run_clients(
    cache: raycache.Cache,
    clients: int,
    operations: int,
    seed: int = 0,
    *,
    rate: float | None = None,
) -> Tally:
    """Run ``operations`` in all, split among ``clients`` processes at once; sum their tallies.

    ``rate`` caps the operations per second of all clients together.

    The clients run on this driver's node, as the drivers they stand for would: losing
    another node must not take them with it.
    """
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actors = [RemoteClient.options(scheduling_strategy=here).remote() for _ in range(clients)]  # type: ignore[attr-defined]
    share = operations // clients
    each = None if rate is None else rate / clients
    calls = [actor.run.remote(cache, seed + i, share, each) for i, actor in enumerate(actors)]
    tallies: list[Tally] = ray.get(calls)
    for actor in actors:
        ray.kill(actor)
    total = Tally()
    for tally in tallies:
        total = total.add(tally)
    return total


def while_running(
    work: Callable[[], Tally], periodic: Callable[[], bool], every: float
) -> tuple[Tally, int]:
    """Run ``work``, calling ``periodic`` every ``every`` seconds meanwhile.

    ``periodic`` injects a fault or takes a sample, and returns whether it did. Return
    the work's tally and how many times it did. ``periodic`` runs on this thread,
    because some faults (adding a node) must run on the main thread.
    """
    count = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="workload") as pool:
        running = pool.submit(work)
        while not wait([running], timeout=every).done:
            count += periodic()
        return running.result(), count


class PlainTasks:
    """The floor a computation's wait is measured against: a plain Ray task, uncached.

    While entered, a thread runs :func:`remote_truth` as an ordinary task (spread over
    the nodes, as the shards' computations are) every ``every`` seconds, and notes the
    slowest round trip, so that a fault's cost to Ray itself (a node starting up on a
    shared machine, cold worker processes) is seen beside the cache's.
    """

    def __init__(self, every: float = 0.1) -> None:
        self.slowest = 0.0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plain-tasks", daemon=True)

    def __enter__(self) -> PlainTasks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        index = 1
        while not self._stop.wait(self._every):
            began = time.monotonic()
            ray.get(remote_truth.options(scheduling_strategy="SPREAD").remote(index))
            self.slowest = max(self.slowest, time.monotonic() - began)
            index += 1
