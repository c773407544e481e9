"""Loaders run in the caller, with single-flight through the shard's leases, on a real Ray."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

import raycache


def test_a_loader_may_hold_an_unpicklable_connection(cache: raycache.Cache) -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("create table users (id integer, name text)")
    connection.execute("insert into users values (7, 'ada')")
    queries = []

    def query(user: int) -> str:
        queries.append(user)
        return str(connection.execute("select name from users where id = ?", (user,)).fetchone()[0])

    assert cache.get_or_compute(("user", 7), query, 7) == "ada"
    assert cache.get_or_compute(("user", 7), query, 7) == "ada"
    assert queries == [7]
    assert cache.get(("user", 7)) == "ada"


def test_a_memoized_plain_function_runs_in_the_caller(cache: raycache.Cache) -> None:
    @raycache.memoize(cache=cache)
    def where(x: int) -> int:
        return os.getpid()

    assert where(1) == os.getpid()
    assert where(1) == os.getpid()  # and then from the cache
    assert where.cache_info().hits == 1 and where.cache_info().misses == 1


def test_run_on_cluster_stays_available(cache: raycache.Cache) -> None:
    @raycache.memoize(cache=cache, run_on="cluster")
    def where(x: int) -> int:
        return os.getpid()

    assert where(1) != os.getpid()
    with pytest.raises(ValueError, match="run_on"):
        raycache.memoize(run_on="gpu")


def test_concurrent_callers_share_one_load(cache: raycache.Cache) -> None:
    calls = []
    lock = threading.Lock()

    def slow(x: int) -> int:
        with lock:
            calls.append(x)
        time.sleep(0.5)
        return x * 10

    results: list[int] = []

    def caller() -> None:
        results.append(cache.get_or_compute("shared-load", slow, 4))

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [40] * 4
    assert calls == [4]


def test_a_large_loaded_value_reaches_waiters_and_the_store(cache: raycache.Cache) -> None:
    loads = []

    def column(n: int) -> np.ndarray[Any, Any]:
        loads.append(n)
        time.sleep(0.3)
        return np.full(200_000, float(n))  # shipped by reference: above the inline size

    results: list[float] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(cache.get_or_compute("big", column, 2).sum())
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [400_000.0] * 3 and loads == [2]
    np.testing.assert_array_equal(cache.get("big"), np.full(200_000, 2.0))


def test_an_exception_reaches_every_waiter_and_nothing_is_cached(cache: raycache.Cache) -> None:
    started = threading.Event()

    def failing() -> int:
        started.set()
        time.sleep(0.5)
        raise KeyError("no such row")

    errors: list[BaseException] = []

    def caller() -> None:
        try:
            cache.get_or_compute("fails", failing)
        except KeyError as error:
            errors.append(error)

    first = threading.Thread(target=caller)
    first.start()
    started.wait(10)
    others = [threading.Thread(target=caller) for _ in range(2)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(timeout=60)
    assert len(errors) == 3 and all("no such row" in str(error) for error in errors)
    assert "fails" not in cache
    assert cache.get_or_compute("fails", lambda: 5) == 5


HOLDER = """
import os, sys, time, ray, raycache
ray.init(address={address!r}, logging_level="ERROR")
cache = raycache.Cache.attach({name!r})
def dies():
    print("holding", flush=True)
    time.sleep(1)
    os._exit(3)  # the leaseholder's process dies mid-compute
cache.get_or_compute("orphaned", dies)
"""


def test_a_dead_leaseholders_lease_passes_on(cache: raycache.Cache) -> None:
    address = ray.get_runtime_context().gcs_address
    env = dict(os.environ, RAYCACHE_LEASE_SECONDS="2")
    code = textwrap.dedent(HOLDER.format(address=address, name=cache.name))
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    started = time.monotonic()
    assert cache.get_or_compute("orphaned", lambda: "taken over") == "taken over"
    assert time.monotonic() - started < 15
    assert holder.wait(timeout=60) == 3
    assert cache.get("orphaned") == "taken over"


DRIVER = """
import os, time, ray, raycache
ray.init(address={address!r}, logging_level="ERROR")

@raycache.memoize(cache={name!r})
def record(path):
    with open(path, "a") as log:
        log.write(f"{{os.getpid()}}\\n")
    time.sleep(1.0)
    return "done"

print(os.getpid(), record({path!r}), flush=True)
"""


def test_two_drivers_call_one_memoized_function_once(cache: raycache.Cache, tmp_path: Path) -> None:
    address = ray.get_runtime_context().gcs_address
    log = tmp_path / "pids.txt"
    code = textwrap.dedent(DRIVER.format(address=address, name=cache.name, path=str(log)))
    drivers = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [driver.communicate(timeout=120)[0].split() for driver in drivers]
    assert all(driver.returncode == 0 for driver in drivers)
    assert [output[1] for output in outputs] == ["done", "done"]
    ran_in = log.read_text().split()
    assert len(ran_in) == 1, "the function ran once"
    assert ran_in[0] in {output[0] for output in outputs}, "in one of the callers' processes"
