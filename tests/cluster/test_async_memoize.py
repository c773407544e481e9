"""``@raycache.memoize`` on ``async def`` functions, against a real local Ray."""

from __future__ import annotations

import asyncio
import inspect
import os
from typing import Any

import pytest

import raycache
from tests.helpers.aio import asyncio_test


def recorded(
    cache: raycache.Cache, *, factor: int = 2, seconds: float = 0.01, error: str = ""
) -> tuple[Any, list[int]]:
    """A memoized ``async def`` that records its calls: ``x * factor``, or ``KeyError(error)``."""
    calls: list[int] = []

    @raycache.memoize(cache=cache)
    async def record(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(seconds)
        if error:
            raise KeyError(error)
        return x * factor

    return record, calls


@asyncio_test
async def test_awaiting_gives_the_value_and_caches_it(cache: raycache.Cache) -> None:
    double, calls = recorded(cache)
    pending = double(3)
    assert inspect.isawaitable(pending)
    assert await pending == 6
    value = await double(3)
    assert value == 6 and not inspect.isawaitable(value)  # the result, not a coroutine
    assert calls == [3]
    info = double.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)
    assert double.invalidate(3) is True
    assert await double(3) == 6 and calls == [3, 3]
    assert double.clear() == 1
    assert double.cache_info().currsize == 0


@asyncio_test
async def test_concurrent_awaits_run_the_function_once(cache: raycache.Cache) -> None:
    slow, calls = recorded(cache, factor=10, seconds=0.5)
    assert await asyncio.gather(*(slow(4) for _ in range(4))) == [40] * 4
    assert calls == [4]
    info = slow.cache_info()
    assert (info.misses, info.merged) == (1, 3)


@asyncio_test
async def test_an_error_reaches_every_waiter_and_is_not_cached(cache: raycache.Cache) -> None:
    failing, calls = recorded(cache, seconds=0.3, error="no such row")
    outcomes = await asyncio.gather(*(failing(1) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, KeyError) and "no such row" in str(o) for o in outcomes)
    assert calls == [1]
    with pytest.raises(KeyError):
        await failing(1)
    assert calls == [1, 1]  # nothing was cached: it ran again


@asyncio_test
async def test_it_runs_in_the_callers_event_loop(cache: raycache.Cache) -> None:
    @raycache.memoize(cache=cache)
    async def where(x: int) -> tuple[int, int]:
        return os.getpid(), id(asyncio.get_running_loop())

    here = (os.getpid(), id(asyncio.get_running_loop()))
    assert await where(1) == here
    assert await where(1) == here


@asyncio_test
async def test_run_on_cluster_awaits_it_in_a_task(cache: raycache.Cache) -> None:
    @raycache.memoize(cache=cache, run_on="cluster")
    async def where(x: int) -> int:
        await asyncio.sleep(0)
        return os.getpid()

    elsewhere = await where(1)
    assert elsewhere != os.getpid()
    assert await where(1) == elsewhere


def test_a_cache_by_name_is_found_without_blocking_the_loop(cache_name: str) -> None:
    @raycache.memoize(cache=cache_name)
    async def square(x: int) -> int:
        return x * x

    assert asyncio.run(square(7)) == 49
    assert asyncio.run(square(7)) == 49
    assert square.cache_info().hits == 1
    raycache.Cache.attach(cache_name).shutdown()
