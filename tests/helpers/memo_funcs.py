"""Memoized functions shared by tests and by the driver processes they start.

They live in an importable module so that every process computes the same fingerprint.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import ray

import raycache

COUNTER = "memo-test-counter"


@ray.remote(num_cpus=0)
class Counter:
    """Counts calls by name, so tests can see how often a function really ran."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def incr(self, name: str) -> int:
        self.counts[name] = self.counts.get(name, 0) + 1
        return self.counts[name]

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)


def counter() -> ray.actor.ActorHandle:
    """Return the shared counter, starting it if need be."""
    return Counter.options(
        name=COUNTER, namespace="raycache-tests", lifetime="detached", get_if_exists=True
    ).remote()


def ran(name: str) -> int:
    """Return how many times ``name`` ran."""
    return int(ray.get(counter().get.remote(name)))


def _count(name: str) -> None:
    ray.get(counter().incr.remote(name))


@raycache.memoize(cache="memo-tests")
@ray.remote(num_cpus=0)
def slow_square(x: int, delay: float = 0.0) -> int:
    _count("slow_square")
    time.sleep(delay)
    return x * x


@raycache.memoize(cache="memo-tests")
def plain_total(frame: pd.DataFrame, column: str = "a") -> float:
    _count("plain_total")
    return float(frame[column].sum())


@raycache.memoize(cache="memo-tests")
@ray.remote(num_cpus=0)
def big_range(n: int) -> np.ndarray:
    _count("big_range")
    return np.arange(n)
