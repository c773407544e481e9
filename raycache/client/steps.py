"""The steps of a client operation, and the two ways to take them: blocking, or awaited.

Every client operation (a get, a fan-out, a lease) is written once, as a generator of
*steps*: it yields a :class:`Wait` for Ray objects, or an :class:`Invoke` of the caller's
function, and receives the outcome back (or has the error raised at the yield). The
operation decides; the driver only waits. :func:`run` takes the steps with ``ray.get``,
blocking its thread, for :class:`~raycache.Cache`; :func:`run_async` awaits them, never
blocking the event loop, for :class:`~raycache.AsyncCache`. So both handles share every
decision, retry and fault rule, and differ only in how they wait.

>>> def double(x):
...     y = yield Invoke(lambda v: v * 2, (x,), {})
...     return y
>>> run(double(21))
42
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ray
from ray.exceptions import GetTimeoutError

T = TypeVar("T")


@dataclass(frozen=True)
class Wait:
    """Wait for ``refs`` (ObjectRefs, or futures); the outcome is the list of their values.

    Past ``timeout`` seconds, :class:`~ray.exceptions.GetTimeoutError` is raised at the
    yield, as ``ray.get`` raises it.
    """

    refs: Sequence[Any]
    timeout: float | None = None


@dataclass(frozen=True)
class Invoke:
    """Invoke the caller's function here; the outcome is its value.

    A coroutine function's result is awaited by :func:`run_async`; :func:`run` refuses one,
    rather than return (and cache) a coroutine object.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


Step = Wait | Invoke
Steps = Generator[Step, Any, T]
"""An operation: it yields steps and returns its result."""


def run(steps: Steps[T]) -> T:
    """Take ``steps`` in this thread, blocking on each :class:`Wait`; return the result."""
    drive = _drive(steps, _blocking)
    try:
        drive.send(None)  # a blocking step never suspends, so one send runs it all
    except StopIteration as done:
        result: T = done.value
        return result
    raise RuntimeError("a blocking step suspended")  # pragma: no cover


async def run_async(steps: Steps[T]) -> T:
    """Take ``steps`` in the running event loop, awaiting each step; return the result."""
    return await _drive(steps, _awaited)


async def _drive(steps: Steps[T], take: Callable[[Step], Any]) -> T:
    """Feed each step's outcome, or its error, back into ``steps`` until they return."""
    try:
        step = next(steps)
        while True:
            try:
                outcome = await take(step)
            except BaseException as error:
                step = steps.throw(error)
            else:
                step = steps.send(outcome)
    except StopIteration as done:
        result: T = done.value
        return result


async def _blocking(step: Step) -> Any:
    if isinstance(step, Invoke):
        value = step.fn(*step.args, **step.kwargs)
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()  # not run: close it, so that it does not warn of that
            raise TypeError(
                f"{getattr(step.fn, '__qualname__', step.fn)!r} returned an awaitable; "
                "use raycache.AsyncCache, or @raycache.memoize, for async functions"
            )
        return value
    if all(isinstance(ref, concurrent.futures.Future) for ref in step.refs):
        return [future.result(step.timeout) for future in step.refs]
    return ray.get(list(step.refs), timeout=step.timeout)


async def _awaited(step: Step) -> Any:
    if isinstance(step, Invoke):
        value = step.fn(*step.args, **step.kwargs)
        return await value if inspect.isawaitable(value) else value
    futures = [_future(ref) for ref in step.refs]
    together = futures[0] if len(futures) == 1 else asyncio.gather(*futures)
    try:
        values = await asyncio.wait_for(together, step.timeout)
    except asyncio.TimeoutError:
        raise GetTimeoutError(f"no answer within {step.timeout} s") from None
    return [values] if len(futures) == 1 else values


def _future(ref: Any) -> asyncio.Future[Any]:
    if isinstance(ref, asyncio.Future):
        return ref
    if isinstance(ref, concurrent.futures.Future):
        return asyncio.wrap_future(ref)
    return asyncio.wrap_future(ref.future())
