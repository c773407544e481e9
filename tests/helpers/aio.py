"""Asyncio in tests without a plugin: coroutine tests, and a probe of event-loop lag."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

PROBE_INTERVAL_S = 0.005
"""How long the lag probe sleeps each time; what it oversleeps by is the loop's lag."""


def asyncio_test(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run a coroutine test function in a fresh event loop; pytest's fixtures still apply."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


@contextlib.asynccontextmanager
async def loop_lag(interval: float = PROBE_INTERVAL_S) -> AsyncIterator[list[float]]:
    """While the block runs, a task sleeps ``interval`` again and again; yield its oversleeps.

    A coroutine that blocks the loop's thread (on ``ray.get``, say) delays every other
    task's wake-up by as long as it blocks: the probe's worst oversleep is that delay.
    """
    lags: list[float] = []

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            lags.append(loop.time() - started - interval)

    task = asyncio.create_task(probe())
    await asyncio.sleep(0)  # let the probe take its first nap
    try:
        yield lags
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
